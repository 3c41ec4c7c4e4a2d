// people.js through protocol.js: who the user is, their rooms and DMs, opening
// a DM, and the `read` frames the page sends (never for a room the gateway
// did not list, at most one per READ_EVERY_MS). The screen is a stand-in
// and the clock is the test's own.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { clientIds } from "../js/clientid.js";
import { READ_EVERY_MS } from "../js/people.js";
import { createProtocol } from "../js/protocol.js";
import { Store } from "../js/store.js";

const DM = "dm-0123456789abcdef0123456789abcdef01234567";

/** A clock whose timers run when the test moves it on. */
function testClock() {
  const timers = [];
  const clock = {
    t: 1_000_000,
    now: () => clock.t,
    setTimeout: (f, ms) => {
      const timer = { at: clock.t + ms, f };
      timers.push(timer);
      return timer;
    },
    clearTimeout: (timer) => timers.splice(timers.indexOf(timer) >>> 0, 1),
    advance(ms) {
      clock.t += ms;
      for (const timer of timers.filter((x) => x.at <= clock.t)) {
        timers.splice(timers.indexOf(timer), 1);
        timer.f();
      }
    },
  };
  return clock;
}

const list = () => ({ add: () => {}, removePending: () => {}, prepend: () => {}, dropFirstDay: () => {} });

/** The page without a screen; `state.visible` is whether the tab is. */
function page({ savedName = "ada" } = {}) {
  const store = new Store();
  const sent = [];
  const banners = [];
  const notified = [];
  const state = { visible: true };
  const clock = testClock();
  const view = {
    isSeen: (room) => room != null && room === store.active && state.visible,
    membersVisible: () => false,
    showBanner: (text) => banners.push(text),
    draft: () => "",
    withScroll: (_room, change) => change(),
    toBottom: () => {},
    giveBack: () => false,
    messageList: list,
    keepPlace: (_room, change) => change(),
    nearTop: () => false,
    reveal: () => false,
    holds: () => false,
  };
  const protocol = createProtocol({
    store,
    send: (frame) => sent.push(frame) > 0,
    ids: clientIds("tab1"),
    view,
    name: () => savedName,
    notify: (n) => notified.push(n),
    clock,
  });
  return { store, protocol, state, clock, banners, notified, take: () => sent.splice(0) };
}

const welcome = (extra = {}) => ({ type: "welcome", limits: {}, user_id: "u-ada", name: null, ...extra });
const entry = (room, last_seq, read_seq, extra = {}) => ({
  room,
  kind: room.startsWith("dm-") ? "direct" : "room",
  members: [],
  last_seq,
  read_seq,
  unread: last_seq - read_seq,
  mentions: 0,
  last: null,
  activity: 1_000 + last_seq,
  epoch: "e1",
  ...extra,
});
const msg = (room, seq, extra = {}) => ({
  type: "message",
  room,
  id: `e1:${seq}`,
  seq,
  member_id: "m-bob",
  username: "bob",
  text: `message ${seq}`,
  client_id: "",
  ts: 1_700_000_000_000 + seq,
  ...extra,
});
const joined = (room, last_seq) => ({
  type: "joined",
  room,
  member_id: "m-ada",
  epoch: "e1",
  last_seq,
  recovered: true,
  history: Array.from({ length: last_seq }, (_, i) => msg(room, i + 1)),
  members: [],
  member_count: 1,
});
const reads = (frames) => frames.filter((f) => f.type === "read");

describe("read markers", () => {
  it("the room on screen of a visible tab is read up to its newest seq, once", () => {
    const p = page();
    p.protocol.enter("general", "ada");
    p.protocol.onWelcome(welcome());
    p.protocol.onFrame({ type: "rooms", rooms: [entry("general", 5, 2)] });
    p.protocol.onFrame(joined("general", 5));
    assert.deepEqual(reads(p.take()), [{ type: "read", room: "general", seq: 5 }]);
    assert.equal(p.store.inbox.get("general").unread, 0, "the badge clears at once");
    p.clock.advance(READ_EVERY_MS);
    p.protocol.onFrame({ type: "rooms", rooms: [entry("general", 5, 2)] });
    p.clock.advance(READ_EVERY_MS);
    assert.deepEqual(reads(p.take()), [], "told once: a late snapshot is not a reason to tell again");
  });

  it("a hidden tab reads nothing until it becomes visible", () => {
    const p = page();
    p.state.visible = false;
    p.protocol.enter("general", "ada");
    p.protocol.onWelcome(welcome());
    p.protocol.onFrame({ type: "rooms", rooms: [entry("general", 0, 0)] });
    p.protocol.onFrame(joined("general", 0));
    p.protocol.onFrame(msg("general", 1));
    p.protocol.onFrame(msg("general", 2));
    assert.deepEqual(reads(p.take()), []);
    assert.equal(p.store.inbox.get("general").unread, 2);
    p.state.visible = true;
    p.protocol.readNow();
    assert.deepEqual(reads(p.take()), [{ type: "read", room: "general", seq: 2 }]);
  });

  it("a busy room sends at most one read per window, the last one with the newest seq", () => {
    const p = page();
    p.protocol.enter("general", "ada");
    p.protocol.onWelcome(welcome());
    p.protocol.onFrame({ type: "rooms", rooms: [entry("general", 0, 0)] });
    p.protocol.onFrame(joined("general", 0));
    for (let seq = 1; seq <= 10; seq++) p.protocol.onFrame(msg("general", seq));
    assert.deepEqual(reads(p.take()), [{ type: "read", room: "general", seq: 1 }]);
    p.clock.advance(READ_EVERY_MS - 1);
    assert.deepEqual(reads(p.take()), []);
    p.clock.advance(1);
    assert.deepEqual(reads(p.take()), [{ type: "read", room: "general", seq: 10 }]);
    assert.equal(p.store.inbox.totalUnread(), 0);
  });

  it("no read for a room the gateway did not list as the user's, nor from a gateway that sent no rooms", () => {
    const p = page();
    p.protocol.enter("general", "ada");
    p.protocol.onWelcome({ type: "welcome", limits: {} });
    p.protocol.onFrame(joined("general", 3));
    p.protocol.onFrame(msg("general", 4));
    p.clock.advance(READ_EVERY_MS * 2);
    assert.deepEqual(reads(p.take()), []);
  });

  it("a refused read is no banner and no note", () => {
    const p = page();
    p.protocol.enter("general", "ada");
    p.protocol.onWelcome(welcome());
    p.protocol.onFrame(joined("general", 1));
    p.protocol.onFrame({ type: "error", code: "bad_read", room: "general", message: "general is not one of your rooms" });
    assert.deepEqual(p.banners, []);
  });
});

describe("the user's rooms and DMs", () => {
  it("welcome says who the user is; an inbox update lists a DM not joined, counted unread", () => {
    const p = page();
    p.protocol.onWelcome(welcome({ name: "Ada" }));
    assert.deepEqual(p.store.me, { user_id: "u-ada", name: "Ada" });
    p.protocol.onFrame({ type: "rooms", rooms: [] });
    const members = [
      { user_id: "u-ada", name: "Ada" },
      { user_id: "u-bob", name: "bob" },
    ];
    p.protocol.onFrame({ type: "inbox", reason: "direct", room: entry(DM, 0, 0, { members }) });
    p.protocol.onFrame({
      type: "inbox",
      reason: "message",
      room: entry(DM, 1, 0, { members, last: { seq: 1, id: "e1:1", username: "bob", member_id: "m-bob", text: "hi", ts: 5 } }),
    });
    assert.equal(p.store.inbox.get(DM).unread, 1);
    assert.deepEqual(
      p.notified.map((n) => [n.room, n.reason, n.last.text]),
      [[DM, "message", "hi"]],
    );
    assert.equal(p.store.get(DM), null, "listed, not joined");
  });

  it("Message → open_dm; its dm reply joins the conversation and puts it on screen", () => {
    const p = page();
    p.protocol.onWelcome(welcome({ name: "Ada" }));
    assert.equal(p.protocol.openDm(["u-bob"]), true);
    assert.deepEqual(p.take(), [{ type: "open_dm", users: ["u-bob"] }]);
    const members = [
      { user_id: "u-ada", name: "Ada" },
      { user_id: "u-bob", name: "bob" },
    ];
    p.protocol.onFrame({ type: "dm", room: DM, members, created: true });
    assert.deepEqual(p.take(), [{ type: "join", room: DM, username: "Ada" }], "the token's name, when there is one");
    assert.equal(p.store.active?.name, DM);
    assert.deepEqual(p.store.inbox.get(DM).members, members);
  });

  it("opening a listed room the tab is not in joins it under the saved name; without a name it waits", () => {
    const p = page();
    p.protocol.onWelcome(welcome());
    p.protocol.onFrame({ type: "rooms", rooms: [entry("dev", 4, 1)] });
    assert.equal(p.protocol.open("dev"), true);
    assert.deepEqual(p.take(), [{ type: "join", room: "dev", username: "ada" }]);
    const nameless = page({ savedName: "" });
    nameless.protocol.onWelcome(welcome());
    assert.equal(nameless.protocol.open("dev"), false);
    assert.deepEqual(nameless.take(), []);
  });

  it("leaving a public room drops it from the user's rooms; a DM stays", () => {
    const p = page();
    p.protocol.enter("general", "ada");
    p.protocol.enter(DM, "ada");
    p.protocol.onWelcome(welcome());
    p.protocol.onFrame({ type: "rooms", rooms: [entry("general", 1, 1), entry(DM, 1, 1)] });
    p.protocol.removeRoom("general");
    p.protocol.removeRoom(DM);
    assert.deepEqual([...p.store.inbox.entries.keys()], [DM]);
  });
});
