// search.js and its frames through protocol.js: the query checked before
// it goes, answers kept only for the request in flight, "More" until the
// last page, the found words cut out for <mark>, the errors a search gets,
// and a search closed when another room comes on screen.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { clientIds } from "../js/clientid.js";
import { createProtocol } from "../js/protocol.js";
import { MAX_QUERY_BYTES, SEARCH_PAGE, Search, UNAVAILABLE, markedParts } from "../js/search.js";
import { Store } from "../js/store.js";

const hit = (seq, text = `the word ${seq}`, highlights = [[4, 8]]) => ({
  message: { type: "message", room: "general", id: `e1:${seq}`, seq, username: "bob", member_id: "b", text, ts: 1 },
  highlights,
});
const results = (before, seqs, next, query = "word") => ({
  type: "search_results",
  room: "general",
  query,
  before_seq: before,
  hits: seqs.map((s) => hit(s)),
  next_before_seq: next,
});

describe("markedParts", () => {
  it("cuts a text at its highlights, in UTF-16 offsets as JavaScript slices", () => {
    assert.deepEqual(markedParts("say héllo 👋 world", [[4, 9], [13, 18]]), [
      { text: "say ", marked: false },
      { text: "héllo", marked: true },
      { text: " 👋 ", marked: false },
      { text: "world", marked: true },
    ]);
  });

  it("merges overlapping and touching ranges, sorts them, clips and drops bad ones", () => {
    const cases = [
      ["overlapping", [[0, 3], [2, 5]], [{ text: "abcde", marked: true }, { text: "fgh", marked: false }]],
      ["touching", [[0, 2], [2, 4]], [{ text: "abcd", marked: true }, { text: "efgh", marked: false }]],
      ["out of order", [[6, 8], [0, 1]], [
        { text: "a", marked: true },
        { text: "bcdef", marked: false },
        { text: "gh", marked: true },
      ]],
      ["past the end", [[6, 99]], [{ text: "abcdef", marked: false }, { text: "gh", marked: true }]],
      ["empty, reversed, not numbers", [[3, 3], [5, 2], ["a", 2], [1]], [{ text: "abcdefgh", marked: false }]],
      ["none", undefined, [{ text: "abcdefgh", marked: false }]],
    ];
    for (const [name, ranges, want] of cases) assert.deepEqual(markedParts("abcdefgh", ranges), want, name);
  });

  it("an empty text is one empty part", () => {
    assert.deepEqual(markedParts("", [[0, 1]]), [{ text: "", marked: false }]);
  });
});

describe("Search", () => {
  it("checks the query before it goes", () => {
    const s = new Search();
    assert.equal(s.start("general", "   "), null);
    assert.equal(s.problem, "Type a word to search for.");
    assert.equal(s.start("general", "?!"), null, "no letter or digit");
    assert.equal(s.start("general", "é".repeat(MAX_QUERY_BYTES / 2 + 1)), null);
    assert.match(s.problem, /too long/);
    assert.deepEqual(s.start("general", "  word "), { type: "search", room: "general", query: "word", limit: SEARCH_PAGE });
    assert.equal(s.status(), "Searching…");
  });

  it("keeps answers to the request in flight only, and pages with More until next_before_seq is 0", () => {
    const s = new Search();
    s.start("general", "word");
    assert.equal(s.apply(results(0, [9], 0, "old query")), false, "an answer to an older query");
    assert.equal(s.apply({ ...results(0, [9], 0), room: "dev" }), false, "another room's");
    assert.equal(s.apply(results(0, [90, 80], 80)), true);
    assert.equal(s.apply(results(0, [90, 80], 80)), false, "the same answer twice");
    assert.equal(s.status(), "2+ messages in #general");
    assert.ok(s.canAskMore());
    assert.deepEqual(s.more(), { type: "search", room: "general", query: "word", before_seq: 80, limit: SEARCH_PAGE });
    assert.equal(s.canAskMore(), false, "one request at a time");
    assert.equal(s.apply(results(80, [80, 7], 0)), true);
    assert.deepEqual(
      s.hits.map((h) => h.message.seq),
      [90, 80, 7],
      "newest first; a hit already listed is not listed again",
    );
    assert.equal(s.canAskMore(), false, "the last page");
    assert.equal(s.status(), "3 messages in #general");
  });

  it("a next page that would not move down ends the paging", () => {
    const s = new Search();
    s.start("general", "word");
    s.apply(results(0, [90], 80));
    s.more();
    s.apply(results(80, [70], 80));
    assert.equal(s.next, 0);
  });

  it("says when nothing matches", () => {
    const s = new Search();
    s.start("general", "word");
    s.apply(results(0, [], 0));
    assert.equal(s.status(), "Nothing in #general matches “word”.");
  });
});

/** The page without a screen, in `general` and `dev`, `general` on screen. */
function page() {
  const store = new Store();
  const sent = [];
  const view = {
    isSeen: () => true,
    membersVisible: () => false,
    showBanner: () => {},
    draft: () => "",
    withScroll: (_room, change) => change(),
    toBottom: () => {},
    giveBack: () => false,
    messageList: () => ({ add() {}, removePending() {}, prepend() {}, dropFirstDay() {} }),
    keepPlace: (_room, change) => change(),
    nearTop: () => false,
    reveal: () => false,
    holds: () => false,
  };
  const protocol = createProtocol({ store, send: (f) => sent.push(f) > 0, ids: clientIds("tab1"), view });
  protocol.onWelcome({ type: "welcome", limits: {} });
  for (const room of ["dev", "general"]) {
    protocol.enter(room, "ada");
    protocol.onFrame({ type: "joined", room, member_id: "me", epoch: "e1", last_seq: 0, history: [], members: [] });
  }
  sent.splice(0);
  const changes = [];
  store.subscribe((c) => c.type === "search" && changes.push(c));
  return { store, protocol, search: store.search, changes, take: () => sent.splice(0) };
}

describe("search through the protocol", () => {
  it("searches the room on screen; its results are drawn; another room closes it", () => {
    const { store, protocol, search, changes, take } = page();
    protocol.openSearch();
    assert.ok(search.isOpenFor("general"));
    protocol.searchFor("word");
    assert.deepEqual(take(), [{ type: "search", room: "general", query: "word", limit: SEARCH_PAGE }]);
    protocol.onFrame(results(0, [9, 8], 8));
    assert.equal(search.hits.length, 2);
    protocol.moreResults();
    assert.deepEqual(take(), [{ type: "search", room: "general", query: "word", before_seq: 8, limit: SEARCH_PAGE }]);
    assert.ok(changes.length >= 4, "every step redraws the search");
    protocol.enter("dev", "ada");
    assert.equal(store.active.name, "dev");
    assert.equal(search.open, false, "a search is of the room on screen only");
    protocol.onFrame(results(8, [7], 0));
    assert.equal(search.hits.length, 0, "the closed search's late answer is dropped");
  });

  it("search_unavailable disables search with its message, for every room", () => {
    const { protocol, search, take } = page();
    protocol.searchFor("word");
    take();
    protocol.onFrame({ type: "error", room: "general", code: "search_unavailable", message: "no store" });
    assert.equal(search.problem, UNAVAILABLE);
    assert.equal(search.unavailable, true);
    protocol.searchFor("other");
    assert.deepEqual(take(), [], "nothing is sent while the server has no store");
    assert.equal(search.status(), "Search needs the server's message store");
  });

  it("a refused query says why, as the search's problem, not as a note in the room", () => {
    const { store, protocol, search, take } = page();
    protocol.searchFor("word");
    take();
    protocol.onFrame({ type: "error", room: "general", code: "bad_query", message: "no words" });
    assert.match(search.problem, /can't be run/);
    assert.equal(search.asking, null);
    assert.equal(store.get("general").status, "joined");
  });
});
