// scrollback.js, roomhistory.js and history.js: a room's message list
// growing upward by `history` pages, one request in flight per room, pages
// matched to the block that asked, no message twice, the first-message
// marker, and the block around a search hit with its way back to the live
// list. Lists record their lines instead of drawing them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { clientIds } from "../js/clientid.js";
import { createProtocol } from "../js/protocol.js";
import { HISTORY_ASK_MS } from "../js/roomhistory.js";
import { CONTEXT_AFTER, CONTEXT_LIMIT, MAX_BACK, PAGE, Scrollback } from "../js/scrollback.js";
import { Store } from "../js/store.js";

/** A message list that records lines where the page draws them. */
function recordingList() {
  const lines = [];
  return {
    lines,
    add: (line) => lines.push(line),
    removePending: (cid) => lines.splice(lines.findIndex((l) => l.cid === cid), 1),
    prepend: (more) => lines.unshift(...more),
    dropFirstDay: () => {
      const at = lines.findIndex((l) => l.type === "day");
      if (at >= 0) lines.splice(at, 1);
    },
  };
}

const DAY = 86_400_000;
/** Message `seq` of `room`; one a minute, on one day unless `ts` says otherwise. */
const msg = (seq, { room = "general", ts = Date.UTC(2025, 0, 1, 6, 0) + seq * 60_000, ...extra } = {}) => ({
  type: "message",
  room,
  id: `e1:${seq}`,
  seq,
  member_id: seq % 2 ? "bob-1" : "cy-1",
  username: seq % 2 ? "bob" : "cy",
  text: `message ${seq}`,
  client_id: "",
  ts,
  ...extra,
});
const range = (from, to, opts) => Array.from({ length: to - from + 1 }, (_, i) => msg(from + i, opts));
const joined = (room, from, to) => ({
  type: "joined",
  room,
  member_id: "me",
  epoch: "e1",
  last_seq: to,
  recovered: false,
  history: range(from, to, { room }),
  members: [],
  member_count: 1,
});
/** The gateway's answer to `{before_seq, limit}` in a room whose messages are 1..=`last`. */
const answer = (room, before, limit, last = 10_000) => {
  const top = Math.min(before > 0 ? before - 1 : last, last);
  const from = Math.max(1, top - limit + 1);
  return {
    type: "history",
    room,
    epoch: "e1",
    before_seq: before,
    messages: range(from, top, { room }),
    next_before_seq: from,
    reached_first: from === 1,
  };
};

/** Seqs of the message lines, top to bottom. */
const seqs = (list) => list.lines.filter((l) => l.type === "message").map((l) => l.ev.seq);
const kinds = (list) => list.lines.filter((l) => l.type === "notice").map((l) => l.kind);

/** The page without a screen; the view records what it was asked to do. */
function page() {
  const store = new Store();
  const sent = [];
  const state = { connected: true, nearTop: false, revealed: [], lists: new Map() };
  const view = {
    isSeen: () => true,
    membersVisible: () => false,
    showBanner: () => {},
    draft: () => "",
    withScroll: (_room, change) => change(),
    toBottom: () => state.revealed.push("bottom"),
    giveBack: () => false,
    messageList: () => recordingList(),
    keepPlace: (_room, change) => change(),
    nearTop: () => state.nearTop,
    reveal: (room, seq) => {
      const has = seqs(room.history.shown.list).includes(seq);
      if (has) state.revealed.push(seq);
      return has;
    },
    holds: (list, seq) => seqs(list).includes(seq),
  };
  const send = (frame) => state.connected && sent.push(frame) > 0;
  const protocol = createProtocol({ store, send, ids: clientIds("tab1"), view });
  protocol.onWelcome({ type: "welcome", limits: {} });
  return { store, protocol, state, take: () => sent.splice(0) };
}

/** A page in `general` (history 451..=500 of 500), on screen. */
function inGeneral() {
  const p = page();
  p.protocol.enter("general", "ada");
  p.protocol.onFrame(joined("general", 451, 500));
  p.take();
  return { ...p, room: p.store.get("general") };
}

describe("Scrollback", () => {
  it("asks for the page before the oldest message shown, and puts it above, oldest first", () => {
    const back = new Scrollback("general");
    back.noteDay("2025-0-1");
    back.saw(451);
    assert.ok(back.canAsk);
    assert.deepEqual(back.request(), { type: "history", room: "general", before_seq: 451, limit: PAGE });
    const { lines, dropTopDay } = back.page(answer("general", 451, PAGE), (ev, cont) => ({ type: "message", ev, cont }));
    assert.equal(lines[0].type, "day", "the page starts with its date line");
    assert.deepEqual(
      lines.filter((l) => l.type === "message").map((l) => l.ev.seq),
      range(401, 450).map((m) => m.seq),
    );
    assert.equal(dropTopDay, true, "the page ends on the day of the block's top date line: that line goes");
    assert.equal(back.oldestSeq, 401);
    assert.equal(back.request().before_seq, 401);
  });

  it("keeps only messages older than the block's top, and groups and dates them", () => {
    const back = new Scrollback("general");
    back.saw(5);
    const frame = answer("general", 8, 5); // 3..=7: 5, 6, 7 are shown already
    frame.messages[0].ts += 2 * DAY; // ...and 3 is from another day than 4
    frame.messages[1].member_id = frame.messages[2].member_id = "bob-1";
    frame.messages[2].ts = frame.messages[1].ts + 1000;
    const { lines } = back.page(frame, (ev, cont) => ({ type: "message", ev, cont }));
    assert.deepEqual(
      lines.filter((l) => l.type === "message").map((l) => [l.ev.seq, l.cont]),
      [
        [3, false],
        [4, false],
      ],
      "5..=7 not again; 4 starts a new day, so it does not group with 3",
    );
    assert.equal(lines.filter((l) => l.type === "day").length, 2);
  });

  it("reaching the first message marks the top and asks no more", () => {
    const back = new Scrollback("general");
    back.saw(30);
    const { lines } = back.page(answer("general", 30, PAGE), (ev) => ({ type: "message", ev }));
    assert.deepEqual(lines[0], {
      type: "notice",
      kind: "first",
      ts: null,
      text: "This is the first message of #general",
    });
    assert.equal(back.reachedFirst, true);
    assert.equal(back.canAsk, false);
  });

  it("a history that ends above seq 1 (no store) says the oldest kept message is the top", () => {
    const back = new Scrollback("general");
    back.saw(420);
    const frame = { ...answer("general", 420, PAGE), reached_first: true, next_before_seq: 0 };
    const { lines } = back.page(frame, (ev) => ({ type: "message", ev }));
    assert.equal(lines[0].text, "This is the oldest message #general keeps");
    assert.equal(back.canAsk, false);
  });

  it("a page that moves nothing stops the block rather than asking the same again", () => {
    const back = new Scrollback("general");
    back.saw(30);
    back.page({ type: "history", room: "general", before_seq: 30, messages: [], next_before_seq: 30 }, () => ({}));
    assert.equal(back.canAsk, false);
    assert.equal(back.reachedFirst, false);
  });

  it(`loads at most MAX_BACK (${MAX_BACK}) messages into one block, then says so`, () => {
    const back = new Scrollback("general");
    back.saw(20_000);
    let last;
    while (back.canAsk) last = back.page(answer("general", back.request().before_seq, 100, 20_000), (ev) => ({ ev }));
    assert.equal(back.loaded, MAX_BACK);
    assert.equal(last.lines[0].kind, "info");
    assert.match(last.lines[0].text, /search finds older ones/);
  });
});

describe("scroll-back in a room", () => {
  it("one request in flight per room; pages go on top, no message twice, until the first message", () => {
    const { protocol, room, take } = inGeneral();
    const list = room.history.shown.list;
    assert.equal(protocol.loadOlder(room), true);
    assert.equal(protocol.loadOlder(room), false, "a second request waits for the first answer");
    let [frame] = take();
    assert.deepEqual(frame, { type: "history", room: "general", before_seq: 451, limit: PAGE });
    // Live messages keep coming at the bottom meanwhile.
    protocol.onFrame(msg(501));
    for (;;) {
      protocol.onFrame(answer("general", frame.before_seq, frame.limit, 501));
      if (!protocol.loadOlder(room)) break;
      [frame] = take();
    }
    assert.deepEqual(seqs(list), range(1, 501).map((m) => m.seq), "every seq once, in order");
    assert.equal(kinds(list)[0], "first", "the marker is the top line");
    const at500 = list.lines.findIndex((l) => l.ev?.seq === 500);
    const days = list.lines.slice(0, at500).filter((l) => l.type === "day");
    assert.equal(days.length, 1, "one date line for the one day of 1..=500: each page's top one went");
  });

  it("an answer to no request in flight, or a repeated one, changes nothing", () => {
    const { protocol, room, take } = inGeneral();
    const list = room.history.shown.list;
    protocol.onFrame(answer("general", 451, PAGE));
    assert.deepEqual(seqs(list), range(451, 500).map((m) => m.seq), "nothing was asked");
    protocol.loadOlder(room);
    take();
    protocol.onFrame(answer("general", 451, PAGE));
    protocol.onFrame(answer("general", 451, PAGE));
    assert.equal(seqs(list).length, 100, "the second copy matched no request");
  });

  it("a page that comes after the reader switched rooms goes to its own room only", () => {
    const { protocol, store, room: general, take } = inGeneral();
    protocol.enter("dev", "ada");
    protocol.onFrame(joined("dev", 71, 120));
    const dev = store.get("dev");
    protocol.enter("general", "ada");
    protocol.loadOlder(general);
    protocol.enter("dev", "ada");
    protocol.loadOlder(dev);
    assert.deepEqual(
      take().filter((f) => f.type === "history"),
      [
        { type: "history", room: "general", before_seq: 451, limit: PAGE },
        { type: "history", room: "dev", before_seq: 71, limit: PAGE },
      ],
      "one request per room, both in flight",
    );
    protocol.onFrame(answer("general", 451, PAGE));
    assert.equal(seqs(general.list).length, 100, "general got its page while off screen");
    assert.deepEqual(seqs(dev.list), range(71, 120).map((m) => m.seq), "dev did not");
    protocol.onFrame(answer("dev", 71, PAGE));
    assert.deepEqual(seqs(dev.list), range(21, 120).map((m) => m.seq));
  });

  it("a short history goes on loading while the reader is still at the top", () => {
    const { protocol, room, state, take } = inGeneral();
    state.nearTop = true;
    protocol.loadOlder(room);
    protocol.onFrame(answer("general", take()[0].before_seq, PAGE));
    assert.deepEqual(take(), [{ type: "history", room: "general", before_seq: 401, limit: PAGE }]);
  });

  it("a request lost with the connection, or unanswered for long, may be asked again", () => {
    const { protocol, room, state, take } = inGeneral();
    protocol.loadOlder(room);
    take();
    assert.equal(room.history.canAsk(Date.now() + HISTORY_ASK_MS + 1), true, "given up after HISTORY_ASK_MS");
    protocol.onDown();
    state.connected = true;
    protocol.onWelcome({ type: "welcome", limits: {} });
    protocol.onFrame({ ...joined("general", 451, 500), recovered: true, history: [] });
    take();
    assert.equal(protocol.loadOlder(room), true);
  });

  it("over the rate limit, scroll-back asks again after the wait while the reader is still at the top", async () => {
    const { protocol, room, state, take } = inGeneral();
    protocol.loadOlder(room);
    take();
    state.nearTop = true;
    protocol.onFrame({ type: "error", room: "general", code: "rate_limited", message: "slow down", retry_after_ms: 5 });
    assert.deepEqual(room.list.lines.filter((l) => l.kind === "error"), [], "no note: nothing the reader must do");
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.deepEqual(take(), [{ type: "history", room: "general", before_seq: 451, limit: PAGE }]);
  });

  it("a rejoin into a room whose history started over (another epoch) stops scroll-back", () => {
    const { protocol, room, take } = inGeneral();
    protocol.onDown();
    protocol.onWelcome({ type: "welcome", limits: {} });
    protocol.onFrame({ ...joined("general", 300, 302), epoch: "e2" });
    take();
    assert.equal(protocol.loadOlder(room), false);
  });

  it("a refused cursor stops the block with a note; a busy room-service only forgets the request", () => {
    const { protocol, room, take } = inGeneral();
    protocol.loadOlder(room);
    take();
    protocol.onFrame({ type: "error", room: "general", code: "unavailable", message: "busy", retry_after_ms: 100 });
    assert.equal(protocol.loadOlder(room), true, "asked again");
    protocol.onFrame({ type: "error", room: "general", code: "bad_cursor", message: "no such cursor" });
    assert.equal(protocol.loadOlder(room), false);
    assert.equal(kinds(room.list).at(-1), "error");
  });
});

describe("jumping to a search hit", () => {
  it("a message the list shows is revealed where it is", () => {
    const { protocol, state, take } = inGeneral();
    protocol.jumpTo(470);
    assert.deepEqual(state.revealed, [470]);
    assert.deepEqual(take(), [], "nothing to ask for");
  });

  it("one it does not is shown in a block of its own, which scrolls back and goes back to the live list", () => {
    const { protocol, store, room, state, take } = inGeneral();
    protocol.jumpTo(120);
    const [frame] = take();
    assert.deepEqual(frame, {
      type: "history",
      room: "general",
      before_seq: 120 + 1 + CONTEXT_AFTER,
      limit: CONTEXT_LIMIT,
    });
    assert.equal(room.history.inContext, false, "the live list stays until the block's page comes");
    const changes = [];
    store.subscribe((c) => c.type === "room" && changes.push([...c.parts]));
    protocol.onFrame(answer("general", frame.before_seq, frame.limit));
    assert.equal(room.history.inContext, true);
    assert.ok(changes.some((parts) => parts.includes("list")), "the view is told to swap lists");
    const block = room.history.shown.list;
    assert.deepEqual(seqs(block), range(120 - (CONTEXT_LIMIT - CONTEXT_AFTER - 1), 130).map((m) => m.seq));
    assert.deepEqual(state.revealed, [120], "the hit is scrolled to and flashed");
    // Live messages still go to the live list, off screen.
    protocol.onFrame(msg(501));
    assert.equal(seqs(room.list).at(-1), 501);
    assert.ok(!seqs(block).includes(501));
    // Scroll-back in the block asks below its own top.
    protocol.loadOlder(room);
    assert.equal(take()[0].before_seq, 90);
    protocol.toLatest();
    assert.equal(room.history.inContext, false);
    assert.equal(state.revealed.at(-1), "bottom");
    // The block's answer, after it is gone, goes nowhere.
    protocol.onFrame(answer("general", 90, PAGE));
    assert.deepEqual(seqs(room.list), range(451, 501).map((m) => m.seq));
  });

  it("from a block, a hit the live list holds goes back to the live list", () => {
    const { protocol, room, state, take } = inGeneral();
    protocol.jumpTo(120);
    const [frame] = take();
    protocol.onFrame(answer("general", frame.before_seq, frame.limit));
    protocol.jumpTo(480);
    assert.equal(room.history.inContext, false);
    assert.deepEqual(state.revealed, [120, 480]);
  });
});
