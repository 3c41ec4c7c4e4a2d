// Moderation as the page sees it (docs/protocol.md, "Moderation",
// `moderate`, `moderation`, `left` with a reason), as plain data: the
// reader's role in a room, the `moderate` frames the member list's menu
// sends, how a `moderation` event reads as a notice line and what it does
// when the reader is its target (a mute until a time, a new role), and
// what the composer says when the reader may not write. No DOM:
// unit-tested in test/moderation.test.js.
//
//   `joined.role` ──▶ room.role: moderators get the member menu and delete on every message
//   member menu ── moderateFrame ──▶ {"type":"moderate"} ──▶ `moderation` event for everyone
//   `moderation` ──▶ applyModeration: a notice; a mute or role of the reader's own
//   `left` with reason kicked/banned ──▶ room.removed: the composer says so
//   `error` muted ──▶ room.mutedUntil: the composer is off until then

/** What a moderator may do to a member from the member list, in the menu's order. */
export const MODERATION_CHOICES = Object.freeze([
  { key: "mute-600", action: "mute", duration: 600, label: "Mute for 10 minutes", ask: "Mute {name} for 10 minutes?", ok: "Mute" },
  { key: "mute-3600", action: "mute", duration: 3600, label: "Mute for 1 hour", ask: "Mute {name} for 1 hour?", ok: "Mute" },
  { key: "kick", action: "kick", label: "Remove from the room", ask: "Remove {name} from the room? They may join again.", ok: "Remove" },
  { key: "ban", action: "ban", label: "Ban from the room", ask: "Ban {name} from the room? They can't join again until unbanned.", ok: "Ban" },
]);

/** Refusals of moderation, and of a muted member's sends. */
export const MODERATION_ERRORS = new Set(["not_moderator", "bad_moderation", "not_in_room", "muted"]);

/** Whether `role` (from `joined`, or a `role` event) may moderate the room. */
export const moderates = (role) => role === "owner" || role === "moderator";

/** The `moderate` frame for `choice` (one of MODERATION_CHOICES) against user `userId`. */
export function moderateFrame(room, choice, userId, reason = "") {
  const frame = { type: "moderate", room, action: choice.action, user_id: userId };
  if (choice.duration) frame.duration = choice.duration;
  if (reason) frame.reason = reason;
  return frame;
}

/** "10 minutes", "1 hour", "2 days": a duration in seconds as people say it. */
export function durationText(seconds) {
  const units = [
    [86_400, "day"],
    [3_600, "hour"],
    [60, "minute"],
  ];
  for (const [size, word] of units) {
    if (seconds >= size) {
      const n = Math.round(seconds / size);
      return `${n} ${word}${n === 1 ? "" : "s"}`;
    }
  }
  const n = Math.max(1, Math.round(seconds));
  return `${n} second${n === 1 ? "" : "s"}`;
}

/**
 * How a `moderation` event reads: "ada muted bob for 10 minutes: flooding".
 * `isMe(user)` says whether a `{user_id, name}` is the reader ("you").
 */
export function moderationText(ev, isMe = () => false) {
  const who = (u, fallback) => (u && isMe(u) ? "you" : u?.name || fallback);
  // A name is written as it is; only the words the page chose start the line capitalized.
  const actor = ev.actor?.user_id === "" ? "The operator" : ev.actor && isMe(ev.actor) ? "You" : ev.actor?.name || "A moderator";
  const target = who(ev.target, "someone");
  let what;
  switch (ev.action) {
    case "mute": {
      const secs = Number.isFinite(ev.until) && Number.isFinite(ev.ts) ? (ev.until - ev.ts) / 1000 : null;
      what = secs != null && secs > 0 ? `muted ${target} for ${durationText(secs)}` : `muted ${target}`;
      break;
    }
    case "unmute":
      what = `unmuted ${target}`;
      break;
    case "kick":
      what = `removed ${target} from the room`;
      break;
    case "ban":
      what = `banned ${target} from the room`;
      break;
    case "unban":
      what = `lifted the ban on ${target}`;
      break;
    case "role":
      what = ev.role === "moderator" ? `made ${target} a moderator` : `made ${target} a member`;
      break;
    default:
      what = `did "${ev.action}" to ${target}`;
  }
  return ev.reason ? `${actor} ${what}: ${ev.reason}` : `${actor} ${what}`;
}

/**
 * What a `moderation` event does to `room` (js/roomstate.js) when its
 * target is the reader (`isMe`): a mute holds the composer until `until`,
 * an unmute ends it, a role changes what the reader may do. Returns the
 * notice line for the room's list.
 */
export function applyModeration(room, ev, isMe) {
  if (ev.target && isMe(ev.target)) {
    if (ev.action === "mute" && Number.isFinite(ev.until)) room.mutedUntil = ev.until;
    if (ev.action === "unmute") room.mutedUntil = null;
    if (ev.action === "role" && typeof ev.role === "string") room.role = ev.role;
  }
  return { type: "notice", text: moderationText(ev, isMe), ts: ev.ts ?? Date.now(), kind: "moderation" };
}

/**
 * Why the reader may not write in `room` now, or null: removed by a
 * moderator (`room.removed`, from `left`), or muted (`room.mutedUntil`).
 * Returns {kind, text, rejoin, until}: `rejoin` when joining again may
 * help, `until` when the block ends by itself.
 */
export function composeBlock(room, now = Date.now()) {
  if (room.removed) {
    const by = room.removed.by ? ` by ${room.removed.by}` : "";
    const why = room.removed.message ? `: ${room.removed.message}` : "";
    if (room.removed.reason === "banned") {
      return { kind: "banned", text: `You were banned from this room${by}${why}.`, rejoin: false, until: null };
    }
    return { kind: "kicked", text: `You were removed from this room${by}${why}.`, rejoin: true, until: null };
  }
  if (Number.isFinite(room.mutedUntil) && room.mutedUntil > now) {
    const left = durationText(Math.max(1, (room.mutedUntil - now) / 1000));
    return { kind: "muted", text: `A moderator muted you here: you can write again in ${left}.`, rejoin: false, until: room.mutedUntil };
  }
  return null;
}
