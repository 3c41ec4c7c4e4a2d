// The messages a room shows (its live list's, and a block's around a
// search hit), by id, as the objects their lines were drawn from, so a
// message's later life can reach them: a `change` frame applied to the
// one it names (and a delete to the quotes of it), a message sent again
// by a rejoin that could not resume taking its state now. Each returns the
// messages whose lines are to be drawn again; js/roomstate.js has its
// lists do that. No DOM: unit-tested through test/changes.test.js.

import { applyChange, quoteDeleted } from "./lifecycle.js";

/**
 * Messages kept per room (id → message): the live list's and a context
 * block's, up to their scroll-back bound. A change to a message past it
 * is ignored, like one to a message not shown.
 */
export const MAX_TRACKED = 10_000;

/** The fields of a message its later life changes (docs/protocol.md, `message`). */
const LATER_LIFE = ["text", "attachments", "reply_to", "edited", "deleted", "deleted_by", "reactions"];

export class ShownMessages {
  constructor() {
    /** id → message, oldest tracked first (a Map keeps the order). */
    this.byId = new Map();
  }

  get(id) {
    return this.byId.get(id) ?? null;
  }

  has(id) {
    return this.byId.has(id);
  }

  values() {
    return this.byId.values();
  }

  /** Keeps `ev` (its line is being drawn); the oldest kept goes past MAX_TRACKED. */
  track(ev) {
    if (!ev.id) return;
    this.byId.delete(ev.id); // re-inserted: the newest to go last
    this.byId.set(ev.id, ev);
    if (this.byId.size > MAX_TRACKED) this.byId.delete(this.byId.keys().next().value);
  }

  /**
   * Applies a `change` frame (`mine`: the reader made it) to the message it
   * names. Returns the messages changed: it, and for a delete the replies
   * quoting it; none when it is not shown.
   */
  apply(change, mine) {
    const message = this.byId.get(change.target_id);
    if (!message || !applyChange(message, change, mine)) return [];
    const changed = [message];
    if (change.action === "delete") {
      for (const reply of this.byId.values()) if (quoteDeleted(reply, message.id)) changed.push(reply);
    }
    return changed;
  }

  /**
   * `ev` is a message shown before, sent again as it stands now: the shown
   * one takes its text, edit, deletion, quote and reactions. Returns it
   * when that changed anything, else null.
   */
  refresh(ev) {
    const shown = this.byId.get(ev.id);
    if (!shown || !LATER_LIFE.some((key) => JSON.stringify(shown[key]) !== JSON.stringify(ev[key]))) return null;
    for (const key of LATER_LIFE) {
      if (ev[key] === undefined) delete shown[key];
      else shown[key] = ev[key];
    }
    return shown;
  }
}
