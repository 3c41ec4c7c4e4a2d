// One block of a room's messages growing upward, as plain data: the live
// list (joined history, then live messages at the bottom) or the context
// block around a search hit (js/roomstate.js holds both). It knows the
// oldest seq the block shows, where the next `history` request starts
// (`before_seq`), whether the room's first message has been reached, and
// turns a `history` answer into the lines to put above the block's top,
// oldest first (docs/protocol.md, `history`).
//
// Data flow: the reader scrolls near the top → js/protocol.js asks the
// room for a request (one in flight per room, js/roomstate.js) → the
// gateway answers with a page, oldest first → `page` keeps only messages
// older than the block's top (a message is never shown twice), groups
// them and dates them, and says whether the block's top date line goes
// (the page ends on the same day) → the room's list draws them above
// (js/messagelist.js `prepend`) while js/render.js keeps the reader's place.
//
// No DOM: unit-tested in test/scrollback.test.js.

import { dayKey } from "./format.js";
import { isDirect } from "./inbox.js";

/** Messages per scroll-back request. */
export const PAGE = 50;
/** Messages around a search hit: this many after it, the rest before it. */
export const CONTEXT_AFTER = 10;
export const CONTEXT_LIMIT = 41;
/**
 * Messages scroll-back loads into one block, at most; past it the block
 * says so and asks no more (search still finds older ones). A bound on
 * what a tab keeps in its page for one room.
 */
export const MAX_BACK = 5_000;
/** Messages from one person closer together than this share one author line (as js/roomstate.js). */
const GROUP_MS = 5 * 60_000;

export class Scrollback {
  /** @param {string} room the room's name, for the request and the marker */
  constructor(room) {
    this.room = room;
    /** Seq of the oldest message the block shows; null while it shows none. */
    this.oldestSeq = null;
    /** Where the next request starts: messages below this seq. */
    this.cursor = null;
    /** The block starts at the room's first message: nothing older to ask for. */
    this.reachedFirst = false;
    /** Messages scroll-back added (MAX_BACK bounds it). */
    this.loaded = 0;
    /** Stopped: a page made no progress, or the bound was reached. */
    this.stopped = false;
    /** Day key of the block's top date line; null before it has one. */
    this.topDay = null;
  }

  /** The block's first date line (drawn at the bottom while it had none) is its top one. */
  noteDay(key) {
    if (this.topDay == null) this.topDay = key;
  }

  /**
   * A message the block now shows (at its bottom, or its first fill).
   * Returns the marker line when it is the room's first message.
   */
  saw(seq) {
    if (!Number.isFinite(seq)) return null;
    if (this.oldestSeq == null || seq < this.oldestSeq) this.oldestSeq = seq;
    if (this.cursor == null || seq < this.cursor) this.cursor = seq;
    if (seq === 1 && !this.reachedFirst) {
      this.reachedFirst = true;
      return this.firstMarker();
    }
    return null;
  }

  /** Whether an older page may be asked for: the block shows something, and more is before it. */
  get canAsk() {
    return !this.reachedFirst && !this.stopped && this.cursor != null && this.cursor > 1;
  }

  /** The `history` request for the page before the block's top. */
  request() {
    return { type: "history", room: this.room, before_seq: this.cursor, limit: PAGE };
  }

  /**
   * A `history` answer for this block: `{lines, dropTopDay}`. `lines` go
   * above the block's top, oldest first; `dropTopDay` says the block's top
   * date line is for the day the page ends on, so it goes. `line(ev, prev)`
   * makes a message's line (js/roomstate.js: own, tag), given the line
   * of the message before it in the page (or null) for `cont`.
   */
  page(frame, line) {
    const all = Array.isArray(frame.messages) ? frame.messages : [];
    // Only what is older than the block's top: a page asked before a
    // message arrived, or a cursor the gateway moved, never shows one twice.
    const fresh = all.filter(
      (ev) => ev?.type === "message" && Number.isFinite(ev.seq) && (this.oldestSeq == null || ev.seq < this.oldestSeq),
    );
    fresh.sort((a, b) => a.seq - b.seq);
    const lines = [];
    let day = null;
    let prev = null;
    for (const ev of fresh) {
      const key = dayKey(ev.ts);
      if (key !== day) {
        lines.push({ type: "day", ts: ev.ts });
        day = key;
        prev = null;
      }
      const cont =
        prev != null && Boolean(ev.member_id) && prev.member_id === ev.member_id && ev.ts - prev.ts < GROUP_MS;
      lines.push(line(ev, cont));
      prev = ev;
    }
    const dropTopDay = day != null && day === this.topDay;
    if (fresh.length > 0) {
      this.topDay = dayKey(fresh[0].ts);
      this.oldestSeq = fresh[0].seq;
      this.loaded += fresh.length;
    }
    const before = this.cursor;
    const next = Number.isFinite(frame.next_before_seq) ? frame.next_before_seq : this.oldestSeq;
    const cursor = Math.min(...[this.oldestSeq, next, this.cursor].filter((n) => Number.isFinite(n) && n > 0));
    this.cursor = Number.isFinite(cursor) ? cursor : null;
    const progressed = this.cursor != null && (before == null || this.cursor < before);
    if (frame.reached_first === true || this.oldestSeq === 1) {
      this.reachedFirst = true;
      lines.unshift(this.firstMarker());
    } else if (this.loaded >= MAX_BACK) {
      this.stopped = true;
      lines.unshift({
        type: "notice",
        kind: "info",
        ts: fresh[0]?.ts ?? Date.now(),
        text: `Scrolled back ${this.loaded.toLocaleString()} messages, as far as this page goes; search finds older ones`,
      });
    } else if (!progressed) {
      // No progress: asking again would get the same answer.
      this.stopped = true;
    }
    return { lines, dropTopDay };
  }

  /** Ask no more (the gateway refused this block's request, or its history was reset). */
  stop() {
    this.stopped = true;
  }

  /**
   * The top line once nothing is older: the room's first message, or
   * (history without a store ends where Redis does) the oldest one kept.
   */
  firstMarker() {
    // A DM's name is a hash of its members' ids: no name to show.
    const where = isDirect(this.room) ? "this conversation" : `#${this.room}`;
    const text =
      this.oldestSeq == null || this.oldestSeq <= 1
        ? `This is the first message of ${where}`
        : `This is the oldest message ${where} keeps`;
    return { type: "notice", kind: "first", ts: null, text };
  }
}

/** The `history` request that brings the messages around `seq` (a search hit). */
export function contextRequest(room, seq) {
  return { type: "history", room, before_seq: seq + 1 + CONTEXT_AFTER, limit: CONTEXT_LIMIT };
}
