// A room's scroll-back and its jumps to search hits, as plain data. A
// room (js/roomstate.js) shows one of two blocks of messages:
//   the live list    its joined history and live messages, growing at the
//                    bottom as they come and at the top as the reader
//                    scrolls back (js/scrollback.js)
//   a context block  the messages around a search hit that the live list
//                    did not hold, in a list of its own: between it and the
//                    newest messages there may be a gap, so it is shown
//                    instead of the live list (which keeps taking live
//                    messages, off screen) until "Jump to latest"
// Both grow upward by `history` requests, one in flight per room: an answer
// is matched to its request by `before_seq`, so a page asked for the live
// list and answered after a jump (or after the room went off screen) goes
// to the block that asked, or nowhere once that block is gone.
//
// No DOM: unit-tested in test/roomhistory.test.js.

import { contextRequest, Scrollback } from "./scrollback.js";

/** A `history` request not answered in this long is given up (its answer or error got lost). */
export const HISTORY_ASK_MS = 10_000;

export class RoomHistory {
  /**
   * @param {import("./roomstate.js").RoomState} room whose live list
   *   (`room.list`) and message lines (`room.lineFor`) this uses
   */
  constructor(room) {
    this.room = room;
    this.live = new Scrollback(room.name);
    /** The block around a search hit: {list, back, seq, ready}; null in the live view. */
    this.context = null;
    /** The `history` request in flight, {target: "live"|"context", before_seq, at}, or null. */
    this.ask = null;
  }

  /** Whether the context block is what the room shows (its page came). */
  get inContext() {
    return this.context?.ready === true;
  }

  /** The block on screen: {list, back}. */
  get shown() {
    return this.inContext ? this.context : { list: this.room.list, back: this.live };
  }

  /** Whether the block on screen may ask for an older page now. */
  canAsk(now = Date.now()) {
    const idle = this.ask == null || now - this.ask.at > HISTORY_ASK_MS;
    return this.room.status === "joined" && idle && this.shown.back.canAsk;
  }

  /** The request for the page before the top of the block on screen (check `canAsk` first). */
  askOlder(now = Date.now()) {
    const frame = this.shown.back.request();
    this.ask = { target: this.inContext ? "context" : "live", before_seq: frame.before_seq, at: now };
    return frame;
  }

  /**
   * Start a context block around `seq` in `list` (a new, empty message
   * list); returns its request. It replaces any context block, and a
   * request still in flight is forgotten: its answer will match nothing.
   */
  openContext(seq, list, now = Date.now()) {
    const frame = contextRequest(this.room.name, seq);
    this.context = { list, back: new Scrollback(this.room.name), seq, ready: false };
    this.ask = { target: "context", before_seq: frame.before_seq, at: now };
    return frame;
  }

  /** Back to the live list; an answer for the context block will match nothing. */
  closeContext() {
    if (this.ask?.target === "context") this.ask = null;
    this.context = null;
  }

  /**
   * A `history` answer. Returns null when it answers no request in flight
   * (the block that asked is gone), else `{target, opened, seq}`: which
   * block grew, and whether it was a context block's first page (`seq`,
   * the hit, is then to be shown).
   */
  apply(frame) {
    if (this.ask == null || frame.before_seq !== this.ask.before_seq) return null;
    const { target } = this.ask;
    this.ask = null;
    if (target === "context" && !this.context) return null;
    const block = target === "context" ? this.context : { list: this.room.list, back: this.live };
    if (typeof frame.epoch === "string" && this.room.epoch != null && frame.epoch !== this.room.epoch) {
      // The room's history was started over: its seqs are not the ones shown.
      block.back.stop();
      block.list.prepend([
        { type: "notice", kind: "gap", ts: Date.now(), text: "The room's history was reset; older messages can't be shown" },
      ]);
      return { target, opened: false, seq: null };
    }
    const { lines, dropTopDay } = block.back.page(frame, (ev, cont) => {
      if (target === "live") this.room.remember(ev.id);
      return this.room.lineFor(ev, cont);
    });
    if (dropTopDay) block.list.dropFirstDay();
    if (lines.length > 0) block.list.prepend(lines);
    const opened = target === "context" && !this.context.ready;
    if (opened) this.context.ready = true;
    return { target, opened, seq: opened ? this.context.seq : null };
  }

  /**
   * A refused `history` request: forgotten, so it can be asked again, or
   * with `stop` (the gateway refused the request itself, e.g. its cursor)
   * its block asks no more. Returns whether one was in flight.
   */
  refused({ stop = false } = {}) {
    const ask = this.ask;
    this.ask = null;
    if (!ask) return false;
    if (ask.target === "context" && !this.context?.ready) this.context = null;
    else if (stop) (ask.target === "context" ? this.context?.back : this.live)?.stop();
    return true;
  }

  /** The connection went away: its request will never be answered. */
  offline() {
    if (this.ask?.target === "context" && !this.context?.ready) this.context = null;
    this.ask = null;
  }
}
