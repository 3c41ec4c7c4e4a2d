// Searching the room on screen, as plain data: the query, the hits found so
// far (newest first), where the next page starts, the request in flight,
// and what went wrong. The page holds one search (js/store.js `search`);
// it belongs to one room and is closed when another room comes on screen.
//
// Data flow: the reader submits the search box → `start` gives the
// `search` frame (js/protocol.js sends it) → `search_results` comes back
// and `apply` keeps its hits if it answers the request in flight (same
// room, query and `before_seq`; an answer to an older query is dropped) →
// js/render.js draws the hits, each text cut by `markedParts` into plain
// and found pieces (drawn as <mark>, as text) → "More" asks for the page
// after (`more`), until `next_before_seq` is 0. A hit clicked jumps to the
// message (js/protocol.js `jumpTo`). docs/protocol.md, `search`.
//
// No DOM: unit-tested in test/search.test.js.

import { byteLength } from "./format.js";

/** Hits per page. */
export const SEARCH_PAGE = 20;
/** The longest query the server takes, in bytes of UTF-8. */
export const MAX_QUERY_BYTES = 256;
/** Hits kept, at most: past it "More" is gone (a narrower query finds the rest). */
export const MAX_HITS = 500;
/** A search not answered in this long is given up. */
const SEARCH_ASK_MS = 10_000;
/** What the page says when the server keeps no durable store. */
export const UNAVAILABLE = "Search needs the server's message store";

export class Search {
  constructor() {
    /** The server said it keeps no store: the search box stays disabled. */
    this.unavailable = false;
    this.reset(null);
  }

  /** An empty search for `room` (null: none), closed. */
  reset(room) {
    this.room = room;
    this.open = false;
    this.query = "";
    /** [{message, highlights}], newest first. */
    this.hits = [];
    /** `before_seq` of the next page; 0 when there is none. */
    this.next = 0;
    /** The request in flight: {before_seq, at}, or null. */
    this.asking = null;
    /** Something to tell the reader about the search ("" when nothing). */
    this.problem = "";
    /** A page has come for this query. */
    this.answered = false;
  }

  /** Whether this search is open for `room`. */
  isOpenFor(room) {
    return this.open && this.room === room;
  }

  /**
   * The `search` frame for `query` in `room`, or null when there is none to
   * send (`problem` then says why: an empty or too long query, no store).
   */
  start(room, query, now = Date.now()) {
    const q = query.trim();
    this.reset(room);
    this.open = true;
    this.query = q;
    if (this.unavailable) {
      this.problem = UNAVAILABLE;
      return null;
    }
    if (!/[\p{L}\p{N}]/u.test(q)) {
      this.problem = "Type a word to search for.";
      return null;
    }
    if (byteLength(q) > MAX_QUERY_BYTES) {
      this.problem = `That search is too long: at most ${MAX_QUERY_BYTES} bytes.`;
      return null;
    }
    this.asking = { before_seq: 0, at: now };
    return { type: "search", room, query: q, limit: SEARCH_PAGE };
  }

  /** Whether "More" can ask for the next page now. */
  canAskMore(now = Date.now()) {
    const idle = this.asking == null || now - this.asking.at > SEARCH_ASK_MS;
    return this.open && this.next > 0 && idle && this.hits.length < MAX_HITS;
  }

  /** The frame for the next page of hits (check `canAskMore` first). */
  more(now = Date.now()) {
    this.asking = { before_seq: this.next, at: now };
    return { type: "search", room: this.room, query: this.query, before_seq: this.next, limit: SEARCH_PAGE };
  }

  /** A `search_results` frame: kept when it answers the request in flight; returns whether it did. */
  apply(frame) {
    const asked = this.asking;
    if (!asked || frame.room !== this.room || frame.query !== this.query) return false;
    if ((frame.before_seq ?? 0) !== asked.before_seq) return false;
    this.asking = null;
    this.answered = true;
    const have = new Set(this.hits.map((h) => h.message.seq));
    for (const hit of Array.isArray(frame.hits) ? frame.hits : []) {
      const m = hit?.message;
      if (!m || !Number.isFinite(m.seq) || typeof m.text !== "string" || have.has(m.seq)) continue;
      have.add(m.seq);
      this.hits.push({ message: m, highlights: Array.isArray(hit.highlights) ? hit.highlights : [] });
    }
    const next = Number.isFinite(frame.next_before_seq) ? frame.next_before_seq : 0;
    // A next page must start below this one: anything else would ask for the same hits again.
    this.next = next > 0 && (asked.before_seq === 0 || next < asked.before_seq) ? next : 0;
    return true;
  }

  /**
   * An `error` frame for this room while a search was in flight (`code`,
   * and the words js/format.js gives it). Returns whether it was taken as
   * the search's.
   */
  refused(code, text) {
    if (code === "search_unavailable") {
      this.unavailable = true;
      this.asking = null;
      this.problem = UNAVAILABLE;
      return true;
    }
    if (!this.asking) return false;
    this.asking = null;
    this.problem = text;
    return true;
  }

  /** The connection went away: the request in flight will not be answered. */
  offline() {
    this.asking = null;
  }

  /** The reader closed the search (Escape, the close button, another room). */
  close() {
    this.reset(null);
  }

  /** What the status line under the box says. */
  status() {
    if (this.problem) return this.problem;
    if (this.asking && !this.answered) return "Searching…";
    if (!this.answered) return "";
    const n = this.hits.length;
    if (n === 0) return `Nothing in #${this.room} matches “${this.query}”.`;
    const more = this.next > 0 ? "+" : "";
    return `${n}${more} ${n === 1 && !more ? "message" : "messages"} in #${this.room}`;
  }
}

/**
 * `text` cut at the `highlights` ([start, end) in UTF-16 code units, as
 * JavaScript strings index): [{text, marked}] in order, covering all of
 * `text`. Ranges out of bounds are clipped, empty ones dropped, and
 * overlapping or touching ones merged, so a bad range never throws or
 * repeats text.
 */
export function markedParts(text, highlights) {
  const ranges = [];
  for (const r of Array.isArray(highlights) ? highlights : []) {
    if (!Array.isArray(r) || r.length !== 2) continue;
    let [start, end] = r.map(Number);
    if (!Number.isInteger(start) || !Number.isInteger(end)) continue;
    start = Math.max(0, Math.min(start, text.length));
    end = Math.max(0, Math.min(end, text.length));
    if (end > start) ranges.push([start, end]);
  }
  ranges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged = [];
  for (const r of ranges) {
    const last = merged.at(-1);
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([...r]);
  }
  const parts = [];
  let at = 0;
  for (const [start, end] of merged) {
    if (start > at) parts.push({ text: text.slice(at, start), marked: false });
    parts.push({ text: text.slice(start, end), marked: true });
    at = end;
  }
  if (at < text.length || parts.length === 0) parts.push({ text: text.slice(at), marked: false });
  return parts;
}
