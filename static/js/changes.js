// The page's half of a message's later life (docs/protocol.md, `edit`,
// `delete`, `react`, a `send`'s `reply_to`): the frames the person's
// actions send, the reply waiting above the composer, and what a refusal of
// one of them says. The `change` frames that come back are applied by the
// room (js/roomstate.js `addEvent`), like messages, in the room's order;
// nothing here is optimistic: a message shows an edit once the room has
// stored it, so every tab shows the same thing.
//
//   toolbar "Reply"  ── startReply ──▶ room.replyingTo (the bar above the composer)
//   composer send    ── js/protocol.js say: the frame carries reply_to, the bar goes
//   inline editor    ── edit ──▶ {"type":"edit"}     ──▶ `change` action edit
//   "Delete", agreed ── remove ──▶ {"type":"delete"} ──▶ `change` action delete
//   picker or chip   ── react ──▶ {"type":"react"}   ──▶ `change` action react
//
// No DOM: unit-tested in test/changes.test.js.

import { byteLength } from "./format.js";
import { reactFrame, replyTarget } from "./lifecycle.js";

/** Refusals only these requests get (a `bad_message` may also be a reply's `reply_to`). */
export const CHANGE_ERRORS = new Set(["bad_message", "not_yours", "edit_window", "bad_emoji", "too_many_reactions"]);

/**
 * @param {object} deps
 * @param {import("./store.js").Store} deps.store
 * @param {(frame: object) => boolean} deps.send sends a frame; false when not connected
 */
export function createChanges({ store, send }) {
  /** Sends `frame` for `room`; says so in the room when it could not go. Returns whether it went. */
  function request(room, frame) {
    if (room.status === "joined" && send(frame)) return true;
    room.note("Not connected: that was not done. Try again once the page is back online.", "error");
    store.changed(room, "item");
    return false;
  }

  /** The message `id` of `room` as this tab shows it, or null. */
  const shown = (room, id) => room?.messages.get(id) ?? null;

  /** The bar above `room`'s composer now quotes message `id`. Returns whether it does. */
  function startReply(room, id) {
    const message = shown(room, id);
    if (!message || message.deleted) return false;
    room.replyingTo = replyTarget(message);
    store.changed(room, "compose");
    return true;
  }

  /** No reply any more: the bar goes. */
  function cancelReply(room) {
    if (!room?.replyingTo) return;
    room.replyingTo = null;
    store.changed(room, "compose");
  }

  /**
   * Replaces the text of message `id` (the reader's own). An unchanged text
   * sends nothing. Returns null when it went (or had nothing to do), else
   * why it cannot go, in words for the editor.
   */
  function edit(room, id, text) {
    const message = shown(room, id);
    if (!message || !room.mayEdit(message)) return "This message can't be edited.";
    if (text === message.text) return null;
    if (!text.trim()) return "An edit can't be empty: delete the message instead.";
    const max = store.limits.max_text_bytes;
    if (byteLength(text) > max) return `That is over the limit of ${max.toLocaleString()} bytes.`;
    request(room, { type: "edit", room: room.name, id, text });
    return null;
  }

  /** Deletes message `id` (the reader's own; a moderator anyone's). The person agreed first (js/actions.js). */
  function remove(room, id) {
    const message = shown(room, id);
    if (!message || message.deleted) return false;
    return request(room, { type: "delete", room: room.name, id });
  }

  /** Puts `emoji` on message `id`, or takes the reader's away when it is there. */
  function react(room, id, emoji) {
    const message = shown(room, id);
    if (!message || message.deleted) return false;
    const frame = reactFrame(room.name, message, emoji);
    if (!frame) {
      room.note("That message has as many kinds of reaction as it can take: add to one of them.", "error");
      store.changed(room, "item");
      return false;
    }
    return request(room, frame);
  }

  /** The reader's newest message in `room` that they may edit (ArrowUp in an empty composer), or null. */
  function lastEditable(room) {
    const all = [...(room?.messages.values() ?? [])];
    let best = null;
    for (const m of all) if (room.mayEdit(m) && (best == null || m.seq > best.seq)) best = m;
    return best;
  }

  return { startReply, cancelReply, edit, remove, react, lastEditable };
}
