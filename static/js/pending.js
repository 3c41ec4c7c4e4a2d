// Sends from this tab that the room has not echoed yet, as plain data: the
// client id, text, attachments (js/uploads.js: what the gateway answered
// each upload with) and the message it replies to of each, in the order they were typed. The room
// (js/roomstate.js) shows each at once, dimmed, at the bottom of its
// message list, until its echo (a `message` with its `client_id`) takes
// its place. Sends still waiting when the connection drops are sent again,
// with the same `client_id`, after the room's next `joined`: the
// room-service stores a client id once, so a message typed just before a
// drop, or while the page was offline, appears exactly once
// (docs/protocol.md, "Sessions and resuming"). No DOM: unit-tested in
// test/roomstate.test.js.

/**
 * Sends waiting per room, at most. Past it the composer keeps the text: a
 * page offline for long should not pile up more than a person can check.
 */
export const MAX_PENDING = 100;

export class Pending {
  constructor() {
    /** client_id → {text, attachments}, in the order they were typed (a Map keeps it). */
    this.byCid = new Map();
  }

  get size() {
    return this.byCid.size;
  }

  get full() {
    return this.byCid.size >= MAX_PENDING;
  }

  /** `replyTo` is the `reply_to` message's id, or null. */
  add(cid, text, attachments = [], replyTo = null) {
    this.byCid.set(cid, { text, attachments, replyTo });
  }

  /** The oldest waiting send, {cid, text, attachments, replyTo}, or null. */
  oldest() {
    for (const [cid, sent] of this.byCid) return { cid, ...sent };
    return null;
  }

  /** The echo of `cid` came: it waits no more. Returns whether it was waiting. */
  settle(cid) {
    return cid ? this.byCid.delete(cid) : false;
  }

  /** Take back the oldest waiting send (it was refused): {cid, text, attachments}, or null when none waits. */
  dropOldest() {
    for (const [cid, sent] of this.byCid) {
      this.byCid.delete(cid);
      return { cid, ...sent };
    }
    return null;
  }

  /** `send` frames for every waiting message of `room`, oldest first. */
  frames(room) {
    return [...this.byCid].map(([cid, { text, attachments, replyTo }]) => sendFrame(room, text, cid, attachments, replyTo));
  }
}

/**
 * A `send` frame; `attachments` (the ids) only when the message has files,
 * `reply_to` (a message id) only when it answers one.
 */
export function sendFrame(room, text, cid, attachments = [], replyTo = null) {
  const frame = { type: "send", room, text, client_id: cid };
  if (attachments.length > 0) frame.attachments = attachments.map((a) => a.id);
  if (replyTo) frame.reply_to = replyTo;
  return frame;
}
