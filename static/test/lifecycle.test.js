// lifecycle.js: a message's edits, deletion, reactions and reply quote as
// data — what a `change` frame does to the message the page shows, the
// `react` frame a click asks for, and how quotes read.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  applyChange,
  cut,
  deletedText,
  MAX_REACTIONS,
  quoteDeleted,
  quoteOf,
  react,
  reactFrame,
  replyTarget,
  userOf,
} from "../js/lifecycle.js";

const message = (extra = {}) => ({
  type: "message",
  room: "general",
  id: "e1:43",
  seq: 43,
  username: "ada",
  member_id: "m-ada",
  text: "hello",
  ts: 1000,
  ...extra,
});

const change = (action, extra = {}) => ({
  type: "change",
  room: "general",
  id: "e1:50",
  seq: 50,
  ts: 5000,
  action,
  target_id: "e1:43",
  target_seq: 43,
  member_id: "m-bob",
  username: "bob",
  ...extra,
});

describe("applying a change frame", () => {
  it("an edit replaces the text and marks the message edited at the change's time", () => {
    const m = message();
    assert.equal(applyChange(m, change("edit", { text: "hello, world" })), true);
    assert.equal(m.text, "hello, world");
    assert.equal(m.edited, 5000);
  });

  it("a delete empties the message, drops its files, reactions and quote", () => {
    const m = message({
      attachments: [{ id: "a1" }],
      reactions: [{ emoji: "👍", count: 1, mine: false }],
      reply_to: { id: "e1:40", seq: 40, username: "bob", quote: "earlier" },
    });
    assert.equal(applyChange(m, change("delete", { member_id: "m-ada", username: "ada" })), true);
    assert.equal(m.text, "");
    assert.equal(m.deleted, 5000);
    assert.equal(m.attachments, undefined);
    assert.equal(m.reactions, undefined);
    assert.equal(m.reply_to.quote, undefined);
    assert.equal(m.deleted_by, undefined, "deleted by its own sender: no moderator named");
    assert.equal(deletedText(m), "message deleted");
  });

  it("a moderator's delete names the moderator", () => {
    const m = message();
    applyChange(m, change("delete", { by_moderator: true, username: "mo" }));
    assert.equal(m.deleted_by, "mo");
    assert.equal(deletedText(m), "message deleted by a moderator (mo)");
  });

  it("an edit read back after the delete changes nothing", () => {
    const m = message();
    applyChange(m, change("delete"));
    assert.equal(applyChange(m, change("edit", { text: "" })), false);
    assert.equal(m.edited, undefined);
  });

  it("a change for another message, or an unknown action, changes nothing", () => {
    const m = message();
    assert.equal(applyChange(m, change("edit", { target_id: "e1:44", text: "no" })), false);
    assert.equal(applyChange(m, change("pin")), false);
    assert.equal(m.text, "hello");
  });

  it("reactions: counts set from the frame, new emoji last, 0 removes the chip", () => {
    const m = message();
    applyChange(m, change("react", { emoji: "👍", added: true, count: 1 }));
    applyChange(m, change("react", { emoji: "🎉", added: true, count: 1 }));
    applyChange(m, change("react", { emoji: "👍", added: true, count: 2 }));
    assert.deepEqual(m.reactions, [
      { emoji: "👍", count: 2, mine: false },
      { emoji: "🎉", count: 1, mine: false },
    ]);
    applyChange(m, change("react", { emoji: "👍", added: false, count: 0 }));
    assert.deepEqual(m.reactions, [{ emoji: "🎉", count: 1, mine: false }]);
    assert.equal(applyChange(m, change("react", { emoji: "😮", added: false, count: 0 })), false, "no chip to remove");
  });

  it("mine follows the reader's own changes and survives others'", () => {
    const m = message({ reactions: [{ emoji: "👍", count: 1, mine: false }] });
    applyChange(m, change("react", { emoji: "👍", added: true, count: 2 }), true);
    assert.equal(m.reactions[0].mine, true, "the reader added theirs");
    applyChange(m, change("react", { emoji: "👍", added: true, count: 3 }), false);
    assert.equal(m.reactions[0].mine, true, "someone else's reaction leaves the reader's");
    applyChange(m, change("react", { emoji: "👍", added: false, count: 2 }), true);
    assert.equal(m.reactions[0].mine, false, "the reader took theirs away");
    assert.equal(m.reactions[0].count, 2);
  });

  it("react ignores a frame without an emoji or a count", () => {
    const m = message();
    assert.equal(react(m, "", 1), false);
    assert.equal(react(m, "👍", Number.NaN), false);
  });
});

describe("a reaction chip clicked", () => {
  it("adds the reader's when it is not there, takes it away when it is", () => {
    const m = message({ reactions: [{ emoji: "👍", count: 2, mine: true }, { emoji: "🎉", count: 1, mine: false }] });
    assert.deepEqual(reactFrame("general", m, "👍"), { type: "react", room: "general", id: "e1:43", emoji: "👍", add: false });
    assert.deepEqual(reactFrame("general", m, "🎉"), { type: "react", room: "general", id: "e1:43", emoji: "🎉", add: true });
    assert.deepEqual(reactFrame("general", m, "👀"), { type: "react", room: "general", id: "e1:43", emoji: "👀", add: true });
  });

  it("a 21st kind of reaction is not asked for; one more of an existing kind is", () => {
    const reactions = Array.from({ length: MAX_REACTIONS }, (_, i) => ({ emoji: `e${i}`, count: 1, mine: false }));
    const m = message({ reactions });
    assert.equal(reactFrame("general", m, "👍"), null);
    assert.equal(reactFrame("general", m, "e3").add, true);
  });
});

describe("quotes", () => {
  it("read as the author and the quote; a deleted original as 'deleted message'", () => {
    assert.deepEqual(quoteOf({ id: "e1:43", username: "ada", quote: "hello" }), { name: "ada", text: "hello", deleted: false });
    assert.deepEqual(quoteOf({ id: "e1:43", username: "ada", deleted: true }), {
      name: "ada",
      text: "deleted message",
      deleted: true,
    });
    assert.equal(quoteOf(null), null);
  });

  it("a delete marks the replies quoting it, once", () => {
    const reply = message({ id: "e1:44", reply_to: { id: "e1:43", seq: 43, username: "ada", quote: "hello" } });
    assert.equal(quoteDeleted(reply, "e1:42"), false, "another message's delete");
    assert.equal(quoteDeleted(reply, "e1:43"), true);
    assert.equal(reply.reply_to.deleted, true);
    assert.equal(reply.reply_to.quote, undefined);
    assert.equal(quoteDeleted(reply, "e1:43"), false, "already marked");
  });

  it("the reply bar's quote is cut to 100 characters on one line, emoji counted as one", () => {
    assert.equal(cut("a\n  b"), "a b");
    const long = "😀".repeat(150);
    const q = cut(long);
    assert.equal([...q].length, 100);
    assert.ok(q.endsWith("…"));
    assert.deepEqual(replyTarget(message({ text: "x".repeat(120) })), {
      id: "e1:43",
      seq: 43,
      username: "ada",
      quote: `${"x".repeat(99)}…`,
    });
  });
});

it("whose a message is: its user_id, else its member_id", () => {
  assert.equal(userOf({ member_id: "m1" }), "m1");
  assert.equal(userOf({ member_id: "m1", user_id: "u-ada" }), "u-ada");
  assert.equal(userOf({ member_id: "m1", user_id: "" }), "m1");
});
