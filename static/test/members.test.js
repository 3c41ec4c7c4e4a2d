// members.js: merging presence into the member map, and the notice wording.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { isPartial, mergePresence, namesText, presenceNotice, shownMembers } from "../js/members.js";

const m = (id, username, extra = {}) => ({ member_id: id, username, ...extra });

describe("mergePresence", () => {
  it("sets joins, deletes leaves, and says whether the frame listed everyone", () => {
    const members = new Map([["1", m("1", "ada")], ["2", m("2", "bob")]]);
    const partial = mergePresence(members, { joins: [m("3", "cy")], leaves: [m("1", "ada")], joined: 1, left: 1 });
    assert.equal(partial, false);
    assert.deepEqual([...members.keys()].sort(), ["2", "3"]);
  });
  it("is partial when it counts more than it lists", () => {
    assert.equal(isPartial({ joins: [], leaves: [m("1", "ada")], joined: 0, left: 40 }), true);
    assert.equal(isPartial({ joins: [m("1", "ada")], joined: 1 }), false);
  });
});

describe("namesText", () => {
  const cases = [
    [["ada"], 1, "ada"],
    [["ada", "bob"], 2, "ada and bob"],
    [["ada", "bob", "cy"], 3, "ada, bob and cy"],
    [["ada", "bob", "cy", "dee"], 4, "ada, bob and 2 others"],
    [["ada"], 2, "ada and 1 other"],
    [[], 1, "1 person"],
    [[], 7, "7 people"],
  ];
  for (const [names, total, text] of cases) {
    it(`${JSON.stringify(names)} of ${total}: ${text}`, () => assert.equal(namesText(names, total), text));
  }
});

describe("presenceNotice", () => {
  const own = new Set(["me"]);
  it("leaves out this tab's own join", () => {
    assert.equal(presenceNotice({ joins: [m("me", "ada")], joined: 1, left: 0 }, own), null);
  });
  it("says who joined and who left, in one line", () => {
    const n = presenceNotice({ joins: [m("2", "bob")], leaves: [m("3", "cy", { reason: "expired" })], joined: 1, left: 1 }, own);
    assert.deepEqual(n, { text: "bob joined; cy timed out", kind: "join leave" });
  });
  it("reads 'You' for this tab's own old member id leaving", () => {
    assert.equal(presenceNotice({ leaves: [m("me", "ada", { reason: "disconnected" })], left: 1 }, own).text, "You disconnected");
  });
  it("says when a moderator removed someone", () => {
    const n = presenceNotice({ leaves: [m("3", "cy", { reason: "kicked" })], joined: 0, left: 1 }, own);
    assert.equal(n.text, "cy left (removed by a moderator)");
  });
  it("says nothing for a frame that only restores presence", () => {
    assert.equal(presenceNotice({ joins: [], leaves: [], joined: 0, left: 0, member_count: 3 }, own), null);
  });
});

describe("shownMembers", () => {
  it("draws at most `max`, in name order, and counts the rest of the room", () => {
    const members = new Map(["cy", "ada", "bob"].map((n, i) => [String(i), m(String(i), n)]));
    const { shown, more } = shownMembers(members, 10, 2);
    assert.deepEqual(shown.map((x) => x.username), ["ada", "bob"]);
    assert.equal(more, 8);
  });
});
