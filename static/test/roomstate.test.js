// roomstate.js and pending.js: one room's state without the DOM — where a
// join resumes from, what its message list shows (recorded here instead of
// drawn), dedupe, events held while joining, echoes of pending sends,
// unread counts and the member list.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { MAX_PENDING, Pending } from "../js/pending.js";
import { MAX_EARLY, MAX_SEEN, RoomState } from "../js/roomstate.js";

/**
 * A message list that records lines in the order the page shows them:
 * pending lines at the bottom, every other line just above the first
 * pending one (as js/messagelist.js places elements).
 */
function recordingList() {
  const lines = [];
  return {
    lines,
    add(line) {
      const firstPending = lines.findIndex((l) => l.type === "pending");
      if (line.type === "pending" || firstPending < 0) lines.push(line);
      else lines.splice(firstPending, 0, line);
    },
    removePending(cid) {
      const at = lines.findIndex((l) => l.type === "pending" && l.cid === cid);
      assert.ok(at >= 0, `no pending line ${cid} to remove`);
      lines.splice(at, 1);
    },
    prepend(more) {
      lines.unshift(...more);
    },
    dropFirstDay() {
      const at = lines.findIndex((l) => l.type === "day");
      if (at >= 0) lines.splice(at, 1);
    },
  };
}

/** This tab's client ids start with "tab1-". */
const TAB = "tab1";
const isOwnClientId = (cid) => cid.startsWith(`${TAB}-`);

function room(name = "general") {
  const list = recordingList();
  return { room: new RoomState(name, "ada", isOwnClientId, list), list };
}

/** A stored message of the room: `seq` n, from bob unless `extra` says otherwise. */
const msg = (seq, extra = {}) => ({
  type: "message",
  room: "general",
  id: `${seq}-0`,
  seq,
  member_id: "bob-1",
  username: "bob",
  text: `message ${seq}`,
  ts: Date.UTC(2025, 0, 1, 12, 0, seq),
  ...extra,
});

/** `joined` for this tab's member `m`, with `history` messages at seqs `from..=to`. */
const joined = (m, { from = 1, to = 0, epoch = "e1", ...extra } = {}) => {
  const history = [];
  for (let s = from; s <= to; s += 1) history.push(msg(s));
  return { type: "joined", room: "general", member_id: m, epoch, last_seq: to, history, ...extra };
};

/** What the list shows, as short strings ("day" lines left out). */
const shown = (list) =>
  list.lines
    .filter((l) => l.type !== "day")
    .map((l) => (l.type === "message" ? `msg ${l.ev.text}` : l.type === "pending" ? `pending ${l.text}` : l.text));

/** A room joined once (history seqs 1..=`to`), then its connection dropped. */
function reconnected(to = 3) {
  const r = room();
  r.room.resumeFrom();
  r.room.applyJoined(joined("m1", { to }));
  r.room.goOffline();
  return r;
}

describe("RoomState resuming", () => {
  it("a join asks for no resume before the first `joined`, then for after_seq and epoch", () => {
    const { room: r } = room();
    assert.deepEqual(r.resumeFrom(), {}, "a first join has no position to resume from");
    r.applyJoined(joined("m1", { to: 3 }));
    assert.deepEqual(r.resumeFrom(), { after_seq: 3, epoch: "e1" });
    r.applyJoined(joined("m1", { from: 4, to: 4 }));
    r.applyLive(msg(5));
    assert.deepEqual(r.resumeFrom(), { after_seq: 5, epoch: "e1" }, "live messages move the position on");
  });

  it("a room with no messages yet resumes after seq 0, not from nothing", () => {
    const { room: r } = room();
    r.resumeFrom();
    r.applyJoined(joined("m1", { to: 0, epoch: "e7" }));
    assert.deepEqual(r.resumeFrom(), { after_seq: 0, epoch: "e7" });
  });

  it("a resume with recovered:false adds the 'may be missing' marker before what the join brings", () => {
    const { room: r, list } = reconnected(3);
    r.resumeFrom();
    r.applyJoined(joined("m2", { from: 50, to: 51, recovered: false, epoch: "e2" }));
    assert.deepEqual(shown(list).slice(-4), [
      "Earlier messages may be missing",
      "msg message 50",
      "msg message 51",
      "You rejoined",
    ]);
    assert.equal(list.lines.find((l) => l.text === "Earlier messages may be missing").kind, "gap");
    assert.deepEqual(r.resumeFrom(), { after_seq: 51, epoch: "e2" }, "the new epoch is where the next resume starts");
  });

  it("no marker when the resume recovered, or nothing was shown to miss, or no resume was asked", () => {
    const recovered = reconnected(3);
    recovered.room.resumeFrom();
    recovered.room.applyJoined(joined("m2", { from: 4, to: 4, recovered: true }));

    const empty = room();
    empty.room.resumeFrom();
    empty.room.applyJoined(joined("m1", { to: 0 }));
    empty.room.goOffline();
    empty.room.resumeFrom();
    empty.room.applyJoined(joined("m2", { to: 0, recovered: false }));

    const first = room();
    first.room.resumeFrom();
    first.room.applyJoined(joined("m1", { to: 3, recovered: false }));

    for (const [what, { list }] of Object.entries({ recovered, empty, first })) {
      assert.ok(!shown(list).includes("Earlier messages may be missing"), `${what}: ${shown(list)}`);
    }
  });
});

describe("RoomState messages", () => {
  it("shows re-sent history once: a rejoin that could not resume sends the last messages again", () => {
    const { room: r, list } = reconnected(3);
    r.resumeFrom();
    const fresh = r.applyJoined(joined("m2", { from: 2, to: 5, recovered: false }));
    assert.equal(fresh, 2, "only messages 4 and 5 were new");
    const texts = shown(list).filter((t) => t.startsWith("msg"));
    assert.deepEqual(texts, [1, 2, 3, 4, 5].map((s) => `msg message ${s}`));
    assert.deepEqual(r.applyLive(msg(5)), { added: false }, "a live message already shown is dropped");
  });

  it("holds live events while a join is under way and merges them after its history, without duplicates", () => {
    const { room: r, list } = room();
    r.resumeFrom();
    r.status = "joining";
    // The gateway streams the room before `joined` comes; its history overlaps.
    r.holdEarly(msg(3));
    r.holdEarly({ type: "presence", room: "general", joins: [{ member_id: "cy-1", username: "cy" }], joined: 1 });
    r.holdEarly(msg(4));
    assert.deepEqual(shown(list), [], "nothing is shown before `joined`");
    r.applyJoined(joined("m1", { to: 3, members: [{ member_id: "bob-1", username: "bob" }] }));
    assert.deepEqual(shown(list), [
      "This is the first message of #general",
      "msg message 1",
      "msg message 2",
      "msg message 3",
      "You joined",
      "cy joined",
      "msg message 4",
    ]);
    assert.deepEqual(r.early, []);
    assert.deepEqual(r.resumeFrom(), { after_seq: 4, epoch: "e1" });
    assert.deepEqual([...r.members.keys()].sort(), ["bob-1", "cy-1"], "the held presence was applied");
  });

  it("holds at most MAX_EARLY events; the rest are dropped (a rejoin's history brings them back)", () => {
    const { room: r, list } = room();
    r.status = "joining";
    for (let s = 1; s <= MAX_EARLY + 10; s += 1) r.holdEarly(msg(s));
    assert.equal(r.early.length, MAX_EARLY);
    r.applyJoined(joined("m1", { to: 0 }));
    assert.equal(shown(list).filter((t) => t.startsWith("msg")).length, MAX_EARLY);
    assert.equal(r.lastSeq, MAX_EARLY);
  });

  it("going offline drops what was held for a join that never finished", () => {
    const { room: r } = room();
    r.status = "joining";
    r.holdEarly(msg(1));
    r.goOffline();
    assert.deepEqual(r.early, []);
    assert.equal(r.status, "offline");
  });

  it("remembers at most MAX_SEEN ids, forgetting the oldest", () => {
    const { room: r } = room();
    for (let i = 0; i <= MAX_SEEN; i += 1) r.remember(`id-${i}`);
    assert.equal(r.seen.size, MAX_SEEN);
    assert.ok(!r.seen.has("id-0") && r.seen.has(`id-${MAX_SEEN}`));
  });

  it("groups one author's messages close together, and starts a day with a date line", () => {
    const { room: r, list } = room();
    r.applyJoined(joined("m1", { to: 2 }));
    const [marker, day, first, second] = list.lines;
    assert.equal(marker.kind, "first", "seq 1 is the room's first message: a marker above it");
    assert.equal(day.type, "day");
    assert.equal(first.cont, false);
    assert.equal(second.cont, true, "the same author a second later shares the author line");
  });
});

describe("RoomState pending sends", () => {
  const own = (seq, cid) => msg(seq, { member_id: "m1", username: "ada", client_id: cid, text: `mine ${seq}` });

  it("the echo takes the place of its pending line, matched by client id; the others stay at the bottom", () => {
    const { room: r, list } = room();
    r.applyJoined(joined("m1", { to: 0 }));
    r.addPending(`${TAB}-a`, "mine 1");
    r.addPending(`${TAB}-b`, "mine 2");
    r.applyLive(msg(1, { client_id: "other-tab-a" }));
    assert.equal(r.pending.size, 2, "another tab's client id settles nothing");
    const echo = r.applyLive(own(2, `${TAB}-a`));
    assert.deepEqual(echo, { added: true, message: true, own: true });
    assert.deepEqual(shown(list), [
      "This is the first message of #general",
      "You joined",
      "msg message 1",
      "msg mine 2",
      "pending mine 2",
    ]);
    assert.deepEqual(r.pending.frames("general"), [
      { type: "send", room: "general", text: "mine 2", client_id: `${TAB}-b` },
    ]);
  });

  it("a repeated echo after a resume shows once and brings back no pending line", () => {
    const { room: r, list } = room();
    r.applyJoined(joined("m1", { to: 0 }));
    r.addPending(`${TAB}-a`, "mine 1");
    r.applyLive(own(1, `${TAB}-a`));
    r.goOffline();
    r.resumeFrom();
    // The rejoin could not resume: its history holds the echo again.
    r.applyJoined({ ...joined("m2", { to: 0 }), last_seq: 1, history: [own(1, `${TAB}-a`)], recovered: false });
    assert.deepEqual(shown(list).filter((t) => t.includes("mine")), ["msg mine 1"]);
    assert.equal(r.pending.size, 0);
  });

  it("after a reconnect, sends whose echo the history holds are settled; the rest are sent again with their ids", () => {
    const { room: r, list } = reconnected(0);
    r.addPending(`${TAB}-a`, "mine 1"); // lost with the old connection: stored, echo not seen
    r.addPending(`${TAB}-b`, "mine 2"); // typed offline: never sent
    r.resumeFrom();
    r.applyJoined(joined("m2", { to: 0, last_seq: 1, history: [own(1, `${TAB}-a`)], recovered: true }));
    assert.deepEqual(r.pending.frames("general"), [
      { type: "send", room: "general", text: "mine 2", client_id: `${TAB}-b` },
    ]);
    assert.equal(shown(list).at(-1), "pending mine 2", "a waiting send stays at the bottom, under 'You rejoined'");
  });

  it("a refused send is taken back, oldest first, with its line", () => {
    const { room: r, list } = room();
    r.addPending(`${TAB}-a`, "first");
    r.addPending(`${TAB}-b`, "second");
    assert.equal(r.takeBackOldest(), "first");
    assert.deepEqual(shown(list), ["pending second"]);
    assert.equal(r.takeBackOldest(), "second");
    assert.equal(r.takeBackOldest(), null);
  });

  it("Pending is full at MAX_PENDING", () => {
    const p = new Pending();
    for (let i = 0; i < MAX_PENDING; i += 1) p.add(`c-${i}`, "x");
    assert.equal(p.full, true);
    assert.equal(p.settle(undefined), false, "a message without a client id settles nothing");
    assert.equal(p.settle("c-0"), true);
    assert.equal(p.full, false);
  });
});

describe("RoomState unread count", () => {
  it("the first history is context; live messages from others count while the room is not read", () => {
    const { room: r } = room();
    r.applyJoined(joined("m1", { to: 5 }));
    assert.equal(r.unread, 0, "the first `joined`'s history is not news");
    r.applyLive(msg(6));
    r.applyLive(msg(6)); // the same again: not counted twice
    r.applyLive(msg(7, { member_id: "m1", username: "ada", client_id: `${TAB}-x` })); // this tab's own
    r.applyLive(msg(8), { seen: true }); // read as it came
    r.applyLive({ type: "presence", room: "general", joined: 1, joins: [{ member_id: "cy-1", username: "cy" }] });
    assert.equal(r.unread, 1);
  });

  it("after a reconnect, others' messages missed meanwhile count, the history's and the held ones", () => {
    const { room: r } = reconnected(3);
    r.resumeFrom();
    r.status = "joining";
    r.holdEarly(msg(6));
    r.holdEarly(msg(7, { member_id: "m2", username: "ada", client_id: `${TAB}-y` }));
    r.applyJoined(joined("m2", { from: 4, to: 6, recovered: true }));
    assert.equal(r.unread, 3, "4, 5 and 6 are others' and new; 7 is this tab's own");

    const read = reconnected(3);
    read.room.resumeFrom();
    read.room.applyJoined(joined("m2", { from: 4, to: 6, recovered: true }), { seen: true });
    assert.equal(read.room.unread, 0, "a room on screen has nothing unread");
  });
});

describe("RoomState members", () => {
  const m = (id, username) => ({ member_id: id, username });

  it("merges presence into the first page, counts the room's true size, and refetches after a partial frame", () => {
    const { room: r, list } = room();
    r.applyJoined(
      joined("m1", { to: 0, members: [m("m1", "ada"), m("bob-1", "bob")], member_count: 150, members_next: "bob" }),
    );
    assert.equal(r.memberCount, 150);
    const partial = r.applyPresence({ joins: [m("cy-1", "cy")], leaves: [], joined: 1, left: 40, member_count: 111 });
    assert.deepEqual(partial, { added: true, partial: true });
    assert.equal(r.membersStale, true);
    assert.equal(r.memberCount, 111);
    assert.equal(shown(list).at(-1), "cy joined; 40 people left");
    assert.deepEqual(r.askMembers("first", 1_000), { type: "members", room: "general", after: "" });
    assert.equal(r.membersStale, false);
    assert.equal(r.canAskMembers(1_001), false, "one request at a time");
    r.applyMembers({ members: [m("m1", "ada"), m("dee-1", "dee")], member_count: 111, next: "dee" });
    assert.deepEqual([...r.members.keys()], ["m1", "dee-1"], "a first page replaces the held list");
    assert.deepEqual(r.askMembers("more", 2_000), { type: "members", room: "general", after: "dee" });
    r.applyMembers({ members: [m("eve-1", "eve")], member_count: 111, next: null });
    assert.deepEqual([...r.members.keys()], ["m1", "dee-1", "eve-1"], "a next page adds to it");
    assert.equal(r.membersNext, null);
  });

  it("marks members whose names read alike, and this tab's own", () => {
    const { room: r } = room();
    r.applyJoined(joined("m1", { to: 0, members: [m("m1", "Ada"), m("m9", "ada"), m("bob-1", "bob")] }));
    const { rows, more } = r.memberRows();
    assert.equal(more, 0);
    const by = Object.fromEntries(rows.map((row) => [row.member.member_id, row]));
    assert.equal(by.m1.own, true);
    assert.equal(by.m9.own, false);
    assert.match(by.m1.tag, /^#\w{4}$/);
    assert.notEqual(by.m1.tag, by.m9.tag);
    assert.equal(by["bob-1"].tag, "");
    assert.equal(r.tagFor("m9", "ADA"), by.m9.tag, "a message from a look-alike carries the same mark");
  });
});
