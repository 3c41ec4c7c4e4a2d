// inbox.js: the user's rooms from `rooms` snapshots and `inbox` updates,
// merged in whatever order they come, and the sidebar's rows.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { Inbox, MAX_ENTRIES, directName, listRows, mergeEntry, readEntry } from "../js/inbox.js";

const ADA = "u-ada";
const BOB = "u-bob";
const DM = "dm-0123456789abcdef0123456789abcdef01234567";

/** An entry as the gateway sends it. */
const entry = (room, last_seq, read_seq, extra = {}) => ({
  room,
  kind: room.startsWith("dm-") ? "direct" : "room",
  members: [],
  last_seq,
  read_seq,
  unread: last_seq - read_seq,
  mentions: 0,
  last: last_seq > 0 ? { seq: last_seq, id: `e1:${last_seq}`, username: "bob", member_id: "m-bob", text: `hi ${last_seq}`, ts: 1_000 + last_seq } : null,
  activity: 1_000 + last_seq,
  epoch: "e1",
  ...extra,
});
const update = (reason, room) => ({ type: "inbox", reason, room });
const counts = (inbox, room) => {
  const e = inbox.get(room);
  return e && { last_seq: e.last_seq, read_seq: e.read_seq, unread: e.unread, mentions: e.mentions };
};

describe("Inbox merges", () => {
  it("a snapshot gives each room its unread count, newest activity first, and the total", () => {
    const inbox = new Inbox();
    inbox.applySnapshot([entry("general", 10, 7), entry(DM, 3, 0, { activity: 5_000 }), entry("dev", 2, 2)]);
    assert.deepEqual(
      inbox.ordered().map((e) => [e.room, e.unread]),
      [
        [DM, 3],
        ["general", 3],
        ["dev", 0],
      ],
    );
    assert.equal(inbox.totalUnread(), 6);
  });

  it("updates keep the larger last_seq and the larger read marker, in any order", () => {
    const inbox = new Inbox();
    inbox.applySnapshot([entry(DM, 1, 0)]);
    // A read on another device (marker 3) overtakes the message updates for 2 and 3.
    inbox.applyUpdate(update("read", entry(DM, 3, 3)));
    inbox.applyUpdate(update("message", entry(DM, 2, 0)));
    assert.deepEqual(counts(inbox, DM), { last_seq: 3, read_seq: 3, unread: 0, mentions: 0 });
    inbox.applyUpdate(update("message", entry(DM, 5, 3)));
    inbox.applyUpdate(update("message", entry(DM, 4, 3)));
    assert.deepEqual(counts(inbox, DM), { last_seq: 5, read_seq: 3, unread: 2, mentions: 0 });
    assert.equal(inbox.get(DM).last.text, "hi 5", "the preview is the newest message's");
  });

  it("a snapshot taken before an update it arrives after does not undo the update", () => {
    const inbox = new Inbox();
    inbox.applyUpdate(update("read", entry("general", 20, 20)));
    inbox.applySnapshot([entry("general", 18, 12), entry("dev", 4, 1)]);
    assert.deepEqual(counts(inbox, "general"), { last_seq: 20, read_seq: 20, unread: 0, mentions: 0 });
    assert.deepEqual(counts(inbox, "dev"), { last_seq: 4, read_seq: 1, unread: 3, mentions: 0 });
    assert.equal(inbox.totalUnread(), 3);
  });

  it("a snapshot drops rooms it does not list; a left update drops one", () => {
    const inbox = new Inbox();
    inbox.applySnapshot([entry("general", 1, 0), entry("dev", 1, 0)]);
    inbox.applySnapshot([entry("general", 1, 0)]);
    assert.equal(inbox.get("dev"), null);
    assert.equal(inbox.applyUpdate(update("left", entry("general", 1, 0))).changed, true);
    assert.equal(inbox.size, 0);
  });

  it("mentions are exact from the view with both the newest seq and marker, bounded by unread otherwise", () => {
    const inbox = new Inbox();
    inbox.applyUpdate(update("mention", entry("general", 10, 5, { mentions: 2 })));
    assert.deepEqual(counts(inbox, "general"), { last_seq: 10, read_seq: 5, unread: 5, mentions: 2 });
    // Read up to 9 elsewhere: that view knows nothing of 10; at most 1 mention can be left.
    inbox.applyUpdate(update("read", entry("general", 9, 9)));
    assert.deepEqual(counts(inbox, "general"), { last_seq: 10, read_seq: 9, unread: 1, mentions: 1 });
    inbox.applyUpdate(update("read", entry("general", 10, 10)));
    assert.deepEqual(counts(inbox, "general"), { last_seq: 10, read_seq: 10, unread: 0, mentions: 0 });
  });

  it("a new epoch (history started over) replaces the entry", () => {
    const merged = mergeEntry(readEntry(entry("general", 50, 40)), readEntry(entry("general", 2, 0, { epoch: "e2" })));
    assert.equal(merged.last_seq, 2);
    assert.equal(merged.unread, 2);
  });

  it("malformed entries are skipped, not thrown", () => {
    const inbox = new Inbox();
    inbox.applySnapshot([null, { room: "" }, { room: "x", last_seq: -1 }, { room: "y", last_seq: "3" }, entry("ok", 1, 0)]);
    assert.deepEqual([...inbox.entries.keys()], ["ok"]);
    assert.deepEqual(inbox.applyUpdate({ type: "inbox", reason: "message" }), { changed: false, notify: null });
    assert.equal(readEntry({ room: "z", last_seq: 1, read_seq: 5 }).unread, 0, "a marker past the end reads as all read");
  });

  it("holds at most MAX_ENTRIES, dropping the least recently active", () => {
    const inbox = new Inbox();
    inbox.applySnapshot(Array.from({ length: MAX_ENTRIES + 3 }, (_, i) => entry(`r${i}`, i + 1, 0)));
    assert.equal(inbox.size, MAX_ENTRIES);
    assert.equal(inbox.get("r0"), null);
    assert.ok(inbox.get(`r${MAX_ENTRIES + 2}`));
  });
});

describe("Inbox and the page", () => {
  it("live messages move a room on; reading moves its marker at once, never back", () => {
    const inbox = new Inbox();
    inbox.applySnapshot([entry("general", 3, 3)]);
    assert.equal(inbox.sawMessage("general", { seq: 4, id: "e1:4", username: "cy", text: "hey", ts: 9_000 }), true);
    assert.deepEqual(counts(inbox, "general"), { last_seq: 4, read_seq: 3, unread: 1, mentions: 0 });
    assert.equal(inbox.ordered()[0].activity, 9_000);
    assert.equal(inbox.sawMessage("general", { seq: 4, id: "e1:4" }), false, "a message seen twice counts once");
    assert.equal(inbox.sawMessage("other", { seq: 1 }), false, "a room that is not the user's is left alone");
    assert.equal(inbox.sawMessage("general", { seq: 5, text: "on screen", ts: 9_100 }, { read: true }), true);
    assert.deepEqual(counts(inbox, "general"), { last_seq: 5, read_seq: 5, unread: 0, mentions: 0 });
    assert.equal(inbox.markRead("general", 2), false, "a marker never moves back");
    assert.equal(inbox.get("general").server_read, 3, "what the server holds is kept apart");
  });

  it("a DM message or a mention not read is worth a notification; a read, a repeat or one's own is not", () => {
    const inbox = new Inbox();
    const first = inbox.applyUpdate(update("direct", entry(DM, 0, 0)));
    assert.equal(first.notify, null, "opening a DM is not a message");
    const msg = inbox.applyUpdate(update("message", entry(DM, 1, 0)));
    assert.deepEqual(msg.notify, { room: DM, reason: "message", last: inbox.get(DM).last });
    assert.equal(inbox.applyUpdate(update("message", entry(DM, 1, 0))).notify, null, "the same update again");
    // The sender's own message: the room-service moved their marker with it.
    assert.equal(inbox.applyUpdate(update("message", entry(DM, 2, 2))).notify, null);
    assert.equal(inbox.applyUpdate(update("read", entry(DM, 3, 0))).notify, null, "not a reason to tell");
    const mention = inbox.applyUpdate(update("mention", entry("general", 8, 7, { mentions: 1 })));
    assert.equal(mention.notify?.reason, "mention");
  });

  it("a dm reply lists the conversation before its update comes; the update merges in", () => {
    const inbox = new Inbox();
    const members = [
      { user_id: ADA, name: "ada" },
      { user_id: BOB, name: "bob" },
    ];
    inbox.noteDirect(DM, members, 7_000);
    assert.deepEqual(counts(inbox, DM), { last_seq: 0, read_seq: 0, unread: 0, mentions: 0 });
    inbox.applyUpdate(update("message", entry(DM, 1, 0, { members: [] })));
    assert.equal(inbox.get(DM).unread, 1);
    assert.deepEqual(inbox.get(DM).members, members, "members known are kept when an update names none");
    assert.equal(directName(inbox.get(DM), ADA), "bob");
    assert.equal(directName(inbox.get(DM), BOB), "ada");
    assert.equal(directName(null, ADA), "Direct conversation");
  });

  it("forgets a public room left, never a DM", () => {
    const inbox = new Inbox();
    inbox.applySnapshot([entry("general", 1, 0), entry(DM, 1, 0)]);
    assert.equal(inbox.forget("general"), true);
    assert.equal(inbox.forget(DM), false);
    assert.deepEqual([...inbox.entries.keys()], [DM]);
  });
});

describe("listRows", () => {
  const tabRoom = (name, status, unread = 0, members = []) => ({
    name,
    status,
    unread,
    members: new Map(members.map((m) => [m.member_id, m])),
  });

  it("joins the tab's rooms with the user's others, newest first, and says who is online", () => {
    const inbox = new Inbox();
    inbox.applySnapshot([
      entry("general", 5, 2, { activity: 100 }),
      entry(DM, 1, 0, {
        activity: 300,
        members: [
          { user_id: ADA, name: "ada" },
          { user_id: BOB, name: "bob" },
        ],
      }),
    ]);
    const general = tabRoom("general", "joined", 9, [{ member_id: "m1", username: "bob", user_id: BOB }]);
    const old = tabRoom("legacy", "joined", 4);
    const rows = listRows(inbox, [old, general], { me: ADA, active: "general" });
    assert.deepEqual(
      rows.map((r) => [r.room, r.kind, r.label, r.status, r.unread, r.online, r.active]),
      [
        [DM, "direct", "bob", "out", 1, true, false],
        ["general", "room", "general", "joined", 3, null, true],
        ["legacy", "room", "legacy", "joined", 4, null, false],
      ],
    );
    general.status = "offline";
    assert.equal(listRows(inbox, [old, general], { me: ADA })[0].online, false, "nobody seen: offline");
  });

  it("without an inbox (a gateway before people) the tab's rooms keep their order and counts", () => {
    const rows = listRows(new Inbox(), [tabRoom("b", "joined", 2), tabRoom("a", "joining")]);
    assert.deepEqual(
      rows.map((r) => [r.room, r.unread, r.status]),
      [
        ["b", 2, "joined"],
        ["a", 0, "joining"],
      ],
    );
  });
});

describe("Inbox on a join", () => {
  it("a room joined in this tab is listed, read up to the join, and later messages count", () => {
    const inbox = new Inbox();
    assert.equal(inbox.noteJoined("general", 40, "e1", 1000), true);
    const general = inbox.get("general");
    assert.equal(general.last_seq, 40);
    assert.equal(general.read_seq, 40);
    assert.equal(general.server_read, 40, "the room-service set the marker at the join: no read is owed for it");
    assert.equal(general.unread, 0);
    inbox.sawMessage("general", { type: "message", seq: 41, username: "bob", text: "hi", ts: 1001 });
    assert.equal(inbox.get("general").unread, 1);
  });

  it("a room already listed keeps its entry and marker", () => {
    const inbox = new Inbox();
    inbox.applySnapshot([entry("general", 50, 30)]);
    assert.equal(inbox.noteJoined("general", 50, "e1", 1000), false);
    assert.equal(inbox.get("general").read_seq, 30, "joining again does not read what was unread");
    assert.equal(inbox.get("general").unread, 20);
  });
});
