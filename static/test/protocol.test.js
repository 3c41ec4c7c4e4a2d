// protocol.js: what frames from the gateway do to the rooms in the store,
// and the frames the page sends back, across a connection that drops and
// comes back. The screen is a stand-in that records what it was asked.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { clientIds } from "../js/clientid.js";
import { createProtocol } from "../js/protocol.js";
import { Store } from "../js/store.js";

/** A message list that keeps its lines, in the order they were added. */
const recordingList = () => {
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
};

/** The page without a screen: frames sent while `connected`, and the rooms' lists. */
function page({ read = false } = {}) {
  const store = new Store();
  const sent = [];
  const state = { connected: true, draft: "" };
  const view = {
    isSeen: () => read,
    membersVisible: () => false,
    showBanner: () => {},
    draft: () => state.draft,
    withScroll: (_room, change) => change(),
    toBottom: () => {},
    giveBack: () => false,
    messageList: recordingList,
    keepPlace: (_room, change) => change(),
    nearTop: () => state.nearTop ?? false,
    reveal: () => false,
    holds: () => false,
  };
  const send = (frame) => state.connected && sent.push(frame) > 0;
  const protocol = createProtocol({ store, send, ids: clientIds("tab1"), view });
  return {
    store,
    protocol,
    state,
    /** Frames sent since the last call. */
    take: () => sent.splice(0),
  };
}

const WELCOME = { type: "welcome", limits: {} };
const msg = (seq, extra = {}) => ({
  type: "message",
  room: "general",
  id: `${seq}-0`,
  seq,
  member_id: "bob-1",
  username: "bob",
  text: `message ${seq}`,
  ts: 1_700_000_000_000 + seq,
  ...extra,
});
const joined = (member, to, extra = {}) => ({
  type: "joined",
  room: "general",
  member_id: member,
  epoch: "e1",
  last_seq: to,
  history: Array.from({ length: to }, (_, i) => msg(i + 1)),
  recovered: true,
  ...extra,
});

describe("protocol across a reconnect", () => {
  it("a first join asks for no position; the join after a reconnect resumes after the last seq seen", () => {
    const p = page();
    p.protocol.addRoom("general", "ada");
    p.protocol.onWelcome(WELCOME);
    assert.deepEqual(p.take(), [{ type: "join", room: "general", username: "ada" }]);
    p.protocol.onFrame(joined("m1", 3));
    p.protocol.onFrame(msg(4));
    p.protocol.onDown();
    assert.equal(p.store.get("general").status, "offline");
    p.protocol.onWelcome(WELCOME);
    assert.deepEqual(p.take(), [{ type: "join", room: "general", username: "ada", after_seq: 4, epoch: "e1" }]);
  });

  it("pending sends go again after the next `joined`, with their client ids; those echoed in its history do not", () => {
    const p = page();
    p.protocol.addRoom("general", "ada");
    p.protocol.onWelcome(WELCOME);
    p.protocol.onFrame(joined("m1", 0));
    p.take();
    const room = p.store.get("general");
    p.protocol.say(room, "lost with the connection");
    p.protocol.say(room, "stored, echo lost");
    const [lost, stored] = p.take();
    assert.equal(lost.type, "send");
    p.protocol.onDown();
    p.state.connected = false;
    p.protocol.say(room, "typed offline");
    p.state.connected = true;
    p.protocol.onWelcome(WELCOME);
    p.take();
    const echo = msg(1, { member_id: "m1", username: "ada", client_id: stored.client_id, text: stored.text });
    p.protocol.onFrame(joined("m2", 1, { history: [echo] }));
    const again = p.take();
    assert.deepEqual(
      again.map((f) => [f.type, f.text]),
      [
        ["send", "lost with the connection"],
        ["send", "typed offline"],
      ],
    );
    assert.equal(again[0].client_id, lost.client_id, "the same client id, so the room stores it once");
    assert.equal(room.pending.size, 2);
    assert.equal(room.unread, 0, "this tab's own message is not unread");
  });

  it("live messages during a join are held, then shown after its history once each, and counted unread", () => {
    const p = page();
    p.protocol.addRoom("general", "ada");
    p.protocol.onWelcome(WELCOME);
    p.protocol.onFrame(joined("m1", 2));
    p.protocol.onDown();
    p.protocol.onWelcome(WELCOME);
    p.protocol.onFrame(msg(4));
    p.protocol.onFrame(msg(5));
    const room = p.store.get("general");
    assert.equal(room.status, "joining");
    assert.equal(room.early.length, 2);
    p.protocol.onFrame(joined("m2", 4, { history: [msg(3), msg(4)] }));
    const texts = room.list.lines.filter((l) => l.type === "message").map((l) => l.ev.text);
    assert.deepEqual(texts, [1, 2, 3, 4, 5].map((s) => `message ${s}`));
    assert.equal(room.unread, 3, "3, 4 and 5 came while the tab was away");
  });

  it("a room being read counts nothing unread", () => {
    const p = page({ read: true });
    p.protocol.addRoom("general", "ada");
    p.protocol.onWelcome(WELCOME);
    p.protocol.onFrame(joined("m1", 0));
    p.protocol.onFrame(msg(1));
    assert.equal(p.store.get("general").unread, 0);
  });

  it("a refused send takes the oldest waiting one back, with a note", () => {
    const p = page();
    p.protocol.addRoom("general", "ada");
    p.protocol.onWelcome(WELCOME);
    p.protocol.onFrame(joined("m1", 0));
    const room = p.store.get("general");
    p.protocol.say(room, "too long");
    p.protocol.onFrame({ type: "error", room: "general", code: "text_too_long", message: "too long" });
    assert.equal(room.pending.size, 0);
    assert.deepEqual(
      room.list.lines.filter((l) => l.type !== "day").map((l) => [l.type, l.kind ?? ""]),
      [
        ["notice", "join"],
        ["notice", "error"],
      ],
      "the pending line went and an error note came",
    );
  });
});

describe("protocol attachments", () => {
  const file = (n) => ({ id: `at-${String(n).padStart(32, "0")}`, name: `photo ${n}.jpg`, type: "image/jpeg", size: 10, url: `/files/${n}` });

  it("a send with files names their ids, text may be empty; one without files has no `attachments`", () => {
    const p = page();
    p.protocol.addRoom("general", "ada");
    p.protocol.onWelcome(WELCOME);
    p.protocol.onFrame(joined("m1", 0));
    p.take();
    const room = p.store.get("general");
    p.protocol.say(room, "", [file(1), file(2)]);
    p.protocol.say(room, "just text");
    const [withFiles, plain] = p.take();
    assert.deepEqual(withFiles.attachments, [file(1).id, file(2).id]);
    assert.equal(withFiles.text, "");
    assert.equal("attachments" in plain, false);
    const pending = room.list.lines.find((l) => l.type === "pending");
    assert.deepEqual(pending.attachments, [file(1), file(2)], "the waiting line shows the files by name");
  });

  it("a send with files typed offline goes after the next `joined` with the same files and client id", () => {
    const p = page();
    p.protocol.addRoom("general", "ada");
    p.protocol.onWelcome(WELCOME);
    p.protocol.onFrame(joined("m1", 0));
    p.protocol.onDown();
    p.state.connected = false;
    const room = p.store.get("general");
    p.protocol.say(room, "look", [file(7)]);
    p.state.connected = true;
    p.protocol.onWelcome(WELCOME);
    p.take();
    p.protocol.onFrame(joined("m2", 0));
    const [again] = p.take();
    assert.deepEqual([again.type, again.text, again.attachments], ["send", "look", [file(7).id]]);
  });

  it("a message's attachments reach its line; a refused send with files is taken back with a note", () => {
    const p = page();
    p.protocol.addRoom("general", "ada");
    p.protocol.onWelcome(WELCOME);
    p.protocol.onFrame(joined("m1", 0));
    const room = p.store.get("general");
    p.protocol.onFrame(msg(1, { text: "", attachments: [file(3)] }));
    const line = room.list.lines.find((l) => l.type === "message");
    assert.deepEqual(line.ev.attachments, [file(3)]);
    p.protocol.say(room, "", [file(4)]);
    p.protocol.onFrame({ type: "error", room: "general", code: "bad_attachment", message: "attachment at-… was posted already" });
    assert.equal(room.pending.size, 0);
    const note = room.list.lines.at(-1);
    assert.equal(note.kind, "error");
    assert.match(note.text, /^Message not sent: The files of that message could not be posted/);
  });
});

describe("protocol typing", () => {
  it("the first keystroke after a send is told at once (issue 12), the next ones at the gateway's pace", () => {
    const p = page();
    p.protocol.addRoom("general", "ada");
    p.protocol.enter("general", "ada");
    p.protocol.onWelcome(WELCOME);
    p.protocol.onFrame(joined("m1", 0));
    p.take();
    const room = p.store.get("general");
    p.state.draft = "First";
    p.protocol.typed();
    p.protocol.say(room, "First message");
    p.state.draft = "a";
    p.protocol.typed();
    p.protocol.typed();
    assert.deepEqual(
      p.take().map((f) => f.type),
      ["typing", "send", "typing"],
      "one notice for each message; the second keystroke waits",
    );
    p.protocol.removeRoom("general"); // drops the held notice's timer
  });
});
