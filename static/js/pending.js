// Sends from this tab that the room has not echoed yet. Each shows at once,
// dimmed, at the bottom of the room's list (view.js `pendingEl`), until its
// echo (a `message` with its `client_id`) takes its place. Sends still
// waiting when the connection drops are sent again, with the same
// `client_id`, after the room's next `joined`: the room-service stores a
// client id once, so a message typed just before a drop, or while the page
// was offline, appears exactly once (docs/protocol.md, "Sessions and
// resuming").

/**
 * Sends waiting per room, at most. Past it the composer keeps the text: a
 * page offline for long should not pile up more than a person can check.
 */
export const MAX_PENDING = 100;

export class Pending {
  constructor() {
    /** client_id → {text, el}, in the order they were typed (a Map keeps it). */
    this.byCid = new Map();
  }

  get size() {
    return this.byCid.size;
  }

  get full() {
    return this.byCid.size >= MAX_PENDING;
  }

  add(cid, text, el) {
    this.byCid.set(cid, { text, el });
  }

  /** The echo of `cid` came: its line goes, the stored message takes its place. */
  settle(cid) {
    const p = cid ? this.byCid.get(cid) : null;
    if (!p) return false;
    p.el.remove();
    this.byCid.delete(cid);
    return true;
  }

  /** The first waiting line: stored messages go in before it, so waiting ones stay at the bottom. */
  firstEl() {
    for (const p of this.byCid.values()) return p.el;
    return null;
  }

  /** Take back the oldest waiting send (it was refused); its text, or null. */
  dropOldest() {
    for (const [cid, p] of this.byCid) {
      p.el.remove();
      this.byCid.delete(cid);
      return p.text;
    }
    return null;
  }

  /** `send` frames for every waiting message of `room`, oldest first. */
  frames(room) {
    return [...this.byCid].map(([cid, p]) => ({ type: "send", room, text: p.text, client_id: cid }));
  }
}
