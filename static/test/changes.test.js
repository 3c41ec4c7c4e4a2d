// A message's later life through protocol.js, changes.js and roomstate.js:
// the frames replies, edits, deletes and reactions send; `change` frames
// applied live, in `joined.history` on resume and while joining, once
// each; changes to messages not shown ignored; refusals; moderation
// events and a mute. The screen is a stand-in that records what it was asked.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { clientIds } from "../js/clientid.js";
import { createProtocol } from "../js/protocol.js";
import { Store } from "../js/store.js";

/** A message list that keeps its lines and the messages it was asked to draw again. */
const recordingList = () => {
  const lines = [];
  const updated = [];
  return {
    lines,
    updated,
    add: (line) => lines.push(line),
    removePending: (cid) => lines.splice(lines.findIndex((l) => l.cid === cid), 1),
    prepend: (more) => lines.unshift(...more),
    dropFirstDay: () => {},
    update: (ev) => updated.push(ev.id),
  };
};

function page({ userId = "m1" } = {}) {
  const store = new Store();
  const sent = [];
  const state = { connected: true, draft: "", givenBack: [] };
  const view = {
    isSeen: () => true,
    membersVisible: () => false,
    showBanner: () => {},
    draft: () => state.draft,
    withScroll: (_room, change) => change(),
    toBottom: () => {},
    giveBack: (_room, text) => state.givenBack.push(text) > 0,
    messageList: recordingList,
    keepPlace: (_room, change) => change(),
    nearTop: () => false,
    reveal: () => false,
    holds: () => false,
  };
  const send = (frame) => state.connected && sent.push(frame) > 0;
  const protocol = createProtocol({ store, send, ids: clientIds("tab1"), view });
  protocol.addRoom("general", "ada");
  protocol.onWelcome({ type: "welcome", limits: {}, user_id: userId });
  sent.splice(0);
  return { store, protocol, state, room: () => store.get("general"), take: () => sent.splice(0) };
}

const msg = (seq, extra = {}) => ({
  type: "message",
  room: "general",
  id: `e1:${seq}`,
  seq,
  member_id: "bob-1",
  username: "bob",
  text: `message ${seq}`,
  ts: 1_700_000_000_000 + seq,
  ...extra,
});
const change = (seq, action, target, extra = {}) => ({
  type: "change",
  room: "general",
  id: `e1:${seq}`,
  seq,
  ts: 1_700_000_100_000 + seq,
  action,
  target_id: `e1:${target}`,
  target_seq: target,
  member_id: "bob-1",
  username: "bob",
  ...extra,
});
const joined = (history, extra = {}) => ({
  type: "joined",
  room: "general",
  member_id: "m1",
  epoch: "e1",
  last_seq: history.at(-1)?.seq ?? 0,
  history,
  recovered: true,
  ...extra,
});
const shownText = (room, id) => room.messages.get(id)?.text;

describe("what the reader's actions send", () => {
  it("a reply carries reply_to, its pending line the quote, and the bar goes", () => {
    const p = page();
    p.protocol.onFrame(joined([msg(1)]));
    const room = p.room();
    assert.equal(p.protocol.startReply(room, "e1:1"), true);
    assert.deepEqual(room.replyingTo, { id: "e1:1", seq: 1, username: "bob", quote: "message 1" });
    p.protocol.say(room, "yes, Thursday");
    const [frame] = p.take();
    assert.equal(frame.reply_to, "e1:1");
    assert.equal(room.replyingTo, null, "the bar goes with the send");
    assert.equal(room.list.lines.at(-1).reply.username, "bob");
    p.protocol.say(room, "not a reply");
    assert.equal(p.take()[0].reply_to, undefined);
  });

  it("a reply typed offline goes again after the next joined with its reply_to", () => {
    const p = page();
    p.protocol.onFrame(joined([msg(1)]));
    const room = p.room();
    p.protocol.startReply(room, "e1:1");
    p.protocol.onDown();
    p.state.connected = false;
    p.protocol.say(room, "offline reply");
    p.state.connected = true;
    p.protocol.onWelcome({ type: "welcome", limits: {}, user_id: "m1" });
    p.take();
    p.protocol.onFrame(joined([msg(1)], { member_id: "m2" }));
    assert.deepEqual(
      p.take().map((f) => [f.type, f.text, f.reply_to]),
      [["send", "offline reply", "e1:1"]],
    );
  });

  it("edit, delete and react frames; the reader's own message only for edit; nothing for an unchanged edit", () => {
    const p = page();
    p.protocol.onFrame(joined([msg(1), msg(2, { member_id: "m1", username: "ada" })]));
    const room = p.room();
    assert.match(p.protocol.edit(room, "e1:1", "not mine"), /can't be edited/);
    assert.equal(p.protocol.edit(room, "e1:2", "message 2"), null);
    assert.deepEqual(p.take(), [], "unchanged: nothing sent");
    assert.match(p.protocol.edit(room, "e1:2", "  "), /empty/);
    assert.equal(p.protocol.edit(room, "e1:2", "better"), null);
    p.protocol.remove(room, "e1:2");
    p.protocol.react(room, "e1:1", "👍");
    assert.deepEqual(p.take(), [
      { type: "edit", room: "general", id: "e1:2", text: "better" },
      { type: "delete", room: "general", id: "e1:2" },
      { type: "react", room: "general", id: "e1:1", emoji: "👍", add: true },
    ]);
    assert.equal(shownText(room, "e1:2"), "message 2", "nothing is shown before the room stores it");
    assert.equal(p.protocol.lastEditable(room).id, "e1:2");
  });

  it("with tokens, a message of the reader's user from another tab is theirs to edit", () => {
    const p = page({ userId: "u-ada" });
    p.protocol.onFrame(joined([msg(1, { member_id: "other-tab", user_id: "u-ada", username: "ada" })]));
    assert.equal(p.protocol.edit(p.room(), "e1:1", "from here"), null);
    assert.equal(p.take()[0].type, "edit");
  });

  it("an action with no connection says so in the room and sends nothing", () => {
    const p = page();
    p.protocol.onFrame(joined([msg(1)]));
    p.state.connected = false;
    assert.equal(p.protocol.react(p.room(), "e1:1", "👍"), false);
    assert.match(p.room().list.lines.at(-1).text, /Not connected/);
  });
});

describe("change frames", () => {
  it("live: applied to the message shown, drawn again, the resume position moved; once each", () => {
    const p = page();
    p.protocol.onFrame(joined([msg(1), msg(2, { member_id: "m1", username: "ada" })]));
    const room = p.room();
    p.protocol.onFrame(change(3, "edit", 2, { member_id: "m1", text: "edited" }));
    p.protocol.onFrame(change(4, "react", 1, { member_id: "m1", emoji: "👍", added: true, count: 1 }));
    p.protocol.onFrame(change(5, "react", 1, { emoji: "👍", added: true, count: 2 }));
    p.protocol.onFrame(change(5, "react", 1, { emoji: "👍", added: true, count: 2 }));
    assert.equal(shownText(room, "e1:2"), "edited");
    assert.deepEqual(room.messages.get("e1:1").reactions, [{ emoji: "👍", count: 2, mine: true }]);
    assert.deepEqual(room.list.updated, ["e1:2", "e1:1", "e1:1"], "the repeated change is dropped");
    assert.equal(room.lastSeq, 5);
    assert.equal(room.unread, 0, "a change is not a new message");
  });

  it("a delete marks the message and the quotes of it", () => {
    const p = page();
    const reply = msg(2, { reply_to: { id: "e1:1", seq: 1, username: "bob", quote: "message 1" } });
    p.protocol.onFrame(joined([msg(1), reply]));
    const room = p.room();
    p.protocol.onFrame(change(3, "delete", 1, { by_moderator: true, username: "mo" }));
    assert.equal(room.messages.get("e1:1").deleted_by, "mo");
    assert.equal(room.messages.get("e1:2").reply_to.deleted, true);
    assert.deepEqual(room.list.updated, ["e1:1", "e1:2"]);
  });

  it("in joined.history on resume and while joining, in order; changes to messages not shown ignored", () => {
    const p = page();
    p.protocol.onFrame(joined([msg(1)]));
    const room = p.room();
    p.protocol.onDown();
    p.protocol.onWelcome({ type: "welcome", limits: {}, user_id: "m1" });
    assert.equal(p.take()[0].after_seq, 1);
    p.protocol.onFrame(change(4, "edit", 1, { text: "held while joining" }));
    p.protocol.onFrame(
      joined([change(2, "edit", 1, { text: "edited away" }), change(3, "react", 99, { emoji: "👍", count: 1 })], {
        member_id: "m2",
      }),
    );
    assert.equal(shownText(room, "e1:1"), "held while joining");
    assert.equal(room.lastSeq, 4, "changes move the resume position");
    assert.equal(room.messages.has("e1:99"), false);
  });

  it("a rejoin that could not resume sends shown messages again: they take their state now", () => {
    const p = page();
    p.protocol.onFrame(joined([msg(1), msg(2)]));
    const room = p.room();
    p.protocol.onDown();
    p.protocol.onWelcome({ type: "welcome", limits: {}, user_id: "m1" });
    const now1 = msg(1, { text: "changed while away", edited: 5, reactions: [{ emoji: "👍", count: 1, mine: true }] });
    p.protocol.onFrame(joined([now1, msg(2)], { member_id: "m2", recovered: false }));
    assert.equal(shownText(room, "e1:1"), "changed while away");
    assert.deepEqual(room.messages.get("e1:1").reactions, [{ emoji: "👍", count: 1, mine: true }]);
    assert.deepEqual(room.list.updated, ["e1:1"], "the unchanged one is not drawn again");
  });

  it("a reply refused with bad_message comes back to the box; a refused reaction is a note", () => {
    const p = page();
    p.protocol.onFrame(joined([msg(1)]));
    const room = p.room();
    p.protocol.react(room, "e1:1", "👍");
    p.protocol.onFrame({ type: "error", room: "general", code: "bad_emoji", message: "not one emoji" });
    assert.equal(room.list.lines.at(-1).kind, "error");
    p.protocol.startReply(room, "e1:1");
    p.protocol.say(room, "answer");
    p.protocol.onFrame({ type: "error", room: "general", code: "bad_message", message: "deleted" });
    assert.deepEqual(p.state.givenBack, ["answer"]);
    assert.equal(room.pending.size, 0);
  });
});

describe("moderation", () => {
  it("the owner moderates; moderation events are notices; a mute of the reader holds the composer", () => {
    const p = page();
    p.protocol.onFrame(joined([msg(1)], { role: "owner" }));
    const room = p.room();
    assert.equal(room.moderator, true);
    const bob = { member_id: "bob-1", user_id: "bob-1", username: "bob" };
    const choice = { key: "kick", action: "kick" };
    assert.equal(p.protocol.moderate(room, choice, bob), true);
    assert.deepEqual(p.take(), [{ type: "moderate", room: "general", action: "kick", user_id: "bob-1" }]);
    p.protocol.onFrame({
      type: "moderation",
      room: "general",
      seq: 2,
      id: "e1:2",
      ts: 1000,
      action: "mute",
      actor: { user_id: "x", name: "mo" },
      target: { user_id: "m1", name: "ada" },
      until: 601_000,
    });
    assert.equal(room.list.lines.at(-1).text, "mo muted you for 10 minutes");
    assert.equal(room.mutedUntil, 601_000);
    assert.equal(room.lastSeq, 2);
  });

  it("a send refused as muted comes back to the box; left with a reason keeps the room, out", () => {
    const p = page();
    p.protocol.onFrame(joined([msg(1)]));
    const room = p.room();
    assert.equal(room.moderator, false);
    p.protocol.say(room, "hello?");
    p.protocol.onFrame({ type: "error", room: "general", code: "muted", message: "muted", until: 9e12, retry_after_ms: 5 });
    assert.deepEqual(p.state.givenBack, ["hello?"]);
    assert.equal(room.mutedUntil, 9e12);
    p.take();
    p.protocol.onFrame({ type: "left", room: "general", reason: "kicked", by: { user_id: "x", name: "mo" }, message: "calm down" });
    assert.deepEqual(room.removed, { reason: "kicked", by: "mo", message: "calm down" });
    assert.equal(room.status, "offline");
    p.protocol.onDown();
    p.protocol.onWelcome({ type: "welcome", limits: {}, user_id: "m1" });
    assert.deepEqual(p.take(), [], "a removed room is not joined again by itself");
    p.protocol.rejoin(room);
    assert.equal(p.take()[0].type, "join");
  });
});
