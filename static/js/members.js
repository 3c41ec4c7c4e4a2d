// Who is in a room, as `joined`, `members` and `presence` frames tell it
// (docs/protocol.md): merging them into the member map this tab holds,
// wording the join/leave notice of a presence frame, and the slice of the
// list that is drawn. Pure functions, no DOM: unit-testable as they are.

/** How a leave's `reason` reads in a notice. */
export const LEFT_WORDS = {
  left: "left",
  disconnected: "disconnected",
  expired: "timed out",
  // A moderator's doing (a `moderation` notice says who and why).
  kicked: "left (removed by a moderator)",
  banned: "left (banned by a moderator)",
};

/**
 * Member list items drawn at most; the rest is summed up as "and N more".
 * Thousands of list items would make every presence frame a visible stall.
 */
export const MAX_SHOWN = 300;

/**
 * Applies a presence frame to `members` (a Map member_id → member): joins
 * are set, leaves deleted. A member is never in both lists (the gateway
 * lists the last change), so the order does not matter. Returns whether
 * the frame was partial: it counted more changes than it listed, so the
 * map may now miss some joins or hold some who left.
 */
export function mergePresence(members, frame) {
  const joins = frame.joins ?? [];
  const leaves = frame.leaves ?? [];
  for (const m of joins) members.set(m.member_id, m);
  for (const m of leaves) members.delete(m.member_id);
  return isPartial(frame);
}

/** Whether a presence frame lists fewer members than it counts. */
export const isPartial = (frame) =>
  (frame.joined ?? 0) > (frame.joins ?? []).length || (frame.left ?? 0) > (frame.leaves ?? []).length;

/**
 * "ada", "ada and bob", "ada, bob and cy", "ada, bob and 5 others",
 * "ada and 1 other", "7 people": `names` are those listed, `total` how many
 * there were (at least as many as listed).
 */
export function namesText(names, total) {
  const n = Math.max(total, names.length);
  if (names.length === 0) return n === 1 ? "1 person" : `${n} people`;
  if (n === names.length && n <= 3) {
    if (n === 1) return names[0];
    return `${names.slice(0, -1).join(", ")} and ${names[n - 1]}`;
  }
  const shown = names.slice(0, 2);
  const rest = n - shown.length;
  return `${shown.join(", ")} and ${rest} other${rest === 1 ? "" : "s"}`;
}

/**
 * The one notice line for a presence frame, or null when there is nothing
 * to say. This tab's own joins are left out (the page says "You joined"
 * when its `joined` arrives); its own old member ids leaving read "You".
 * `ownIds` is a Set of this tab's member ids in the room. A frame with
 * `joined` 0 and `left` 0 (presence restored after Redis lost it: nobody
 * came or went) says nothing: only its `member_count` is used.
 * Returns {text, kind}: kind "join", "leave", or "join leave" for both.
 */
export function presenceNotice(frame, ownIds) {
  const joins = frame.joins ?? [];
  const leaves = frame.leaves ?? [];
  const ownJoins = joins.filter((m) => ownIds.has(m.member_id)).length;
  const joinNames = joins.filter((m) => !ownIds.has(m.member_id)).map((m) => m.username);
  const joinTotal = Math.max(0, (frame.joined ?? joins.length) - ownJoins);

  const ownLeft = leaves.some((m) => ownIds.has(m.member_id));
  const leaveNames = leaves.filter((m) => !ownIds.has(m.member_id)).map((m) => m.username);
  if (ownLeft) leaveNames.unshift("You");
  const leaveTotal = Math.max(frame.left ?? 0, leaves.length) - leaves.length + leaveNames.length;

  const parts = [];
  const kinds = [];
  if (joinTotal > 0) {
    parts.push(`${namesText(joinNames, joinTotal)} joined`);
    kinds.push("join");
  }
  if (leaveTotal > 0) {
    const reasons = new Set(leaves.map((m) => m.reason));
    // One word when every listed leave had the same reason; "left" covers a mix.
    const word = reasons.size === 1 ? LEFT_WORDS[[...reasons][0]] ?? "left" : "left";
    parts.push(`${namesText(leaveNames, leaveTotal)} ${word}`);
    kinds.push("leave");
  }
  if (parts.length === 0) return null;
  return { text: parts.join("; "), kind: kinds.join(" ") };
}

// One collator for every comparison: far cheaper than localeCompare per pair
// when thousands of members are sorted.
const collator = new Intl.Collator();

/** List order: by name, then by member id (one name can be in a room twice). */
export const byName = (a, b) => collator.compare(a.username, b.username) || collator.compare(a.member_id, b.member_id);

/**
 * What the member list draws: the first MAX_SHOWN held members in name
 * order, and how many members of the room (`count`, its true size) that
 * leaves out, whether this tab holds them or not.
 */
export function shownMembers(members, count, max = MAX_SHOWN) {
  const all = [...members.values()].sort(byName);
  const shown = all.length > max ? all.slice(0, max) : all;
  return { shown, more: Math.max(0, Math.max(count ?? 0, all.length) - shown.length) };
}

/** A name as it reads: compatibility forms folded, case ignored. */
export function foldName(name) {
  return name.normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
}

/** Four characters that tell two member ids apart (a hash of the whole id). */
export function shortId(memberId) {
  let h = 2166136261;
  for (const c of memberId) h = Math.imul(h ^ c.codePointAt(0), 16777619) >>> 0;
  return h.toString(36).slice(-4).padStart(4, "0");
}
