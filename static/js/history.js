// The page's half of scroll-back and search (docs/protocol.md, `history`
// and `search`): the frames it sends for them and what their answers do.
// js/protocol.js hands it the `history` and `search_results` frames and
// the errors they may cause; the state it drives is each room's
// (js/roomhistory.js) and the page's one search (js/search.js, in the
// store). What it needs of the screen comes in as `view` (js/render.js):
// keep the reader's place while a page goes in above, whether the reader
// is near the top, show (scroll to and flash) a message, whether a list
// holds one. No DOM here: unit-tested in test/history.test.js.
//
//   reader near the top ── loadOlder ──▶ {"type":"history", before_seq: oldest shown}
//   `history` ◀── onHistory: prepended, the reader's place kept; still near the top: the next page
//   search box ── searchFor ──▶ {"type":"search"}   "More" ── moreResults ──▶ the next page
//   `search_results` ◀── onSearchResults: hits kept, drawn
//   a hit clicked ── jumpTo: shown already? scroll to it : a context block around it
//   "Jump to latest" ── toLatest: the live list again, at its bottom

import { UNAVAILABLE } from "./search.js";

/** Errors that only a history or search request gets. */
const PAGING_ERRORS = new Set(["bad_cursor", "bad_limit"]);
/** Errors of the room-service that may answer any request to it. */
const SERVICE_ERRORS = new Set(["unavailable", "internal"]);

/**
 * @param {object} deps
 * @param {import("./store.js").Store} deps.store
 * @param {(frame: object) => boolean} deps.send sends a frame; false when not connected
 * @param {object} deps.view what js/render.js `follow` returns
 */
export function createHistory({ store, send, view }) {
  const { search } = store;

  /** Asks for the page before the top of `room`'s block on screen, when it may. Returns whether it asked. */
  function loadOlder(room) {
    if (!room || !room.history.canAsk()) return false;
    if (send(room.history.askOlder())) return true;
    room.history.refused(); // not connected: asked again once joined and scrolled
    return false;
  }

  function onHistory(room, frame) {
    const r = view.keepPlace(room, () => room.history.apply(frame));
    if (!r) return; // the block that asked is gone (a jump, "Jump to latest")
    if (r.opened) {
      store.changed(room, "list");
      view.reveal(room, r.seq);
    }
    // Pages shorter than the screen leave the reader at the top: the next one.
    if (view.nearTop(room)) loadOlder(room);
  }

  function onSearchResults(frame) {
    if (search.apply(frame)) store.searchChanged();
  }

  /**
   * An `error` frame for joined `room` that may answer a history or search
   * request (`text`: its words, js/format.js). Returns whether it was
   * theirs, and so handled here.
   */
  function refused(room, frame, text) {
    const { code } = frame;
    const ours = search.room === room.name;
    if (code === "search_unavailable" || code === "bad_query") {
      if (ours || code === "search_unavailable") search.refused(code, text);
      store.searchChanged();
      return true;
    }
    if (PAGING_ERRORS.has(code)) {
      // Asking again would be refused again: the block that asked stops.
      if (room.history.refused({ stop: true })) {
        room.note(`Older messages can't be loaded: ${text}`, "error", frame.message ?? "");
        return true;
      }
      if (ours && search.refused(code, text)) {
        store.searchChanged();
        return true;
      }
      return false;
    }
    if (code === "not_joined" && ours) search.offline(); // the rejoin's search goes again by hand
    // Over the connection's history/search rate: scroll-back goes on after the wait by itself.
    if (code === "rate_limited" && room.pending.size === 0) {
      if (room.history.refused()) {
        const wait = Number.isFinite(frame.retry_after_ms) ? frame.retry_after_ms : 1_000;
        setTimeout(() => store.get(room.name) === room && view.nearTop(room) && loadOlder(room), wait);
        return true;
      }
      if (ours && search.refused(code, text)) {
        store.searchChanged();
        return true;
      }
    }
    // A busy or failed room-service: a send's, when one waits; else ours.
    if (SERVICE_ERRORS.has(code) && room.pending.size === 0) {
      if (room.history.refused()) return true; // scrolling asks again
      if (ours && search.refused(code, text)) {
        store.searchChanged();
        return true;
      }
    }
    return false;
  }

  /**
   * Shows message `seq` of the room on screen: scrolled to and flashed if
   * a list of the room holds it, else the messages around it are asked for
   * and shown, as a block of their own, when they come.
   */
  function jumpTo(seq) {
    const room = store.active;
    if (!room || !Number.isFinite(seq)) return;
    if (view.reveal(room, seq)) return;
    if (room.history.inContext && view.holds(room.list, seq)) {
      room.history.closeContext();
      store.changed(room, "list");
      view.reveal(room, seq);
      return;
    }
    if (room.status !== "joined") return; // no request can go; the hit stays listed
    const frame = room.history.openContext(seq, view.messageList(room.name));
    if (!send(frame)) room.history.closeContext();
  }

  /** Back from a block around a search hit to the live list, at its newest message. */
  function toLatest() {
    const room = store.active;
    if (!room?.history.context) return;
    room.history.closeContext();
    store.changed(room, "list");
    view.toBottom(room);
  }

  /** The search box of the room on screen opens (empty, or as it was). */
  function openSearch() {
    const room = store.active;
    if (!room) return;
    if (!search.isOpenFor(room.name)) {
      search.reset(room.name);
      search.open = true;
      if (search.unavailable) search.problem = UNAVAILABLE;
    }
    store.searchChanged();
  }

  /** Searches the room on screen for `query`. */
  function searchFor(query) {
    const room = store.active;
    if (!room) return;
    const frame = search.start(room.name, query);
    if (frame && !send(frame)) {
      search.offline();
      search.problem = "Not connected: search again once the page is back online.";
    }
    store.searchChanged();
  }

  function moreResults() {
    if (!search.canAskMore()) return;
    if (!send(search.more())) search.offline();
    store.searchChanged();
  }

  function closeSearch() {
    search.close();
    store.searchChanged();
  }

  /** The connection went away: a search in flight will not be answered (rooms forget their own requests). */
  function onDown() {
    if (!search.asking) return;
    search.offline();
    store.searchChanged();
  }

  // A search is of the room on screen: another room closes it.
  store.subscribe((change) => {
    if (change.type === "active" && search.open && search.room !== store.active?.name) closeSearch();
  });

  return {
    loadOlder,
    onHistory,
    onSearchResults,
    refused,
    jumpTo,
    toLatest,
    openSearch,
    searchFor,
    moreResults,
    closeSearch,
    onDown,
  };
}
