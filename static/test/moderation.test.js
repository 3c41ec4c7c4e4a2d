// moderation.js: how a moderator's action reads, what the composer says
// when the reader may not write, and the frames the member menu sends.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { composeBlock, durationText, MODERATION_CHOICES, moderateFrame, moderates, moderationText } from "../js/moderation.js";

const ev = (action, extra = {}) => ({
  type: "moderation",
  action,
  ts: 1_000_000,
  actor: { user_id: "u-mo", name: "mo" },
  target: { user_id: "u-bob", name: "bob" },
  reason: "",
  ...extra,
});

describe("moderation notices", () => {
  it("say who did what to whom, and why", () => {
    assert.equal(moderationText(ev("mute", { until: 1_000_000 + 3_600_000, reason: "flooding" })), "mo muted bob for 1 hour: flooding");
    assert.equal(moderationText(ev("kick")), "mo removed bob from the room");
    assert.equal(moderationText(ev("ban", { actor: { user_id: "", name: "operator" } })), "The operator banned bob from the room");
    assert.equal(moderationText(ev("role", { role: "moderator" })), "mo made bob a moderator");
    assert.equal(moderationText(ev("unban")), "mo lifted the ban on bob");
  });

  it("the reader reads as 'you'", () => {
    const isMe = (u) => u.user_id === "u-bob";
    assert.equal(moderationText(ev("unmute"), isMe), "mo unmuted you");
  });

  it("durations read as people say them", () => {
    assert.deepEqual([30, 600, 3600, 7200, 86_400].map(durationText), ["30 seconds", "10 minutes", "1 hour", "2 hours", "1 day"]);
  });
});

describe("the composer's state", () => {
  it("muted until a time, then free again", () => {
    const room = { mutedUntil: 10 * 60_000, removed: null };
    const block = composeBlock(room, 60_000);
    assert.equal(block.kind, "muted");
    assert.match(block.text, /9 minutes/);
    assert.equal(block.until, 10 * 60_000);
    assert.equal(composeBlock(room, 10 * 60_000), null);
  });

  it("removed: a kick may join again, a ban may not", () => {
    const kicked = composeBlock({ removed: { reason: "kicked", by: "mo", message: "calm down" } });
    assert.deepEqual([kicked.kind, kicked.rejoin, kicked.text], ["kicked", true, "You were removed from this room by mo: calm down."]);
    const banned = composeBlock({ removed: { reason: "banned", by: "", message: "" } });
    assert.deepEqual([banned.kind, banned.rejoin, banned.text], ["banned", false, "You were banned from this room."]);
  });
});

it("roles and the member menu's frames", () => {
  assert.deepEqual(["owner", "moderator", "member", undefined].map(moderates), [true, true, false, false]);
  const [mute10, , kick] = MODERATION_CHOICES;
  assert.deepEqual(moderateFrame("general", mute10, "u-bob"), { type: "moderate", room: "general", action: "mute", user_id: "u-bob", duration: 600 });
  assert.deepEqual(moderateFrame("general", kick, "u-bob", "spam"), { type: "moderate", room: "general", action: "kick", user_id: "u-bob", reason: "spam" });
});
