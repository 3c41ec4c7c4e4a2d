// Pure helpers: time and name formatting, error wording. No DOM, no state.
// Limits are the gateway's (from `welcome`, held by js/store.js), passed in.

import { FIRST_LIMITS } from "./limits.js";

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: "long", month: "long", day: "numeric" });

/** "14:05" in the reader's own time zone; `ts` is ms since the epoch. */
export const clock = (ts) => timeFmt.format(new Date(ts));
export const fullDate = (ts) => fullFmt.format(new Date(ts));

/** A key that changes when the local calendar day changes. */
export function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** "Today", "Yesterday" or "Friday, November 21". */
export function dayLabel(ts) {
  const now = Date.now();
  if (dayKey(ts) === dayKey(now)) return "Today";
  if (dayKey(ts) === dayKey(now - 86_400_000)) return "Yesterday";
  return dayFmt.format(new Date(ts));
}

/** A stable hue per name, so a person keeps their colour on every tab. */
export function hueFor(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 360;
}

export function initial(name) {
  const first = [...name.trim()][0] ?? "?";
  return first.toUpperCase();
}

const encoder = new TextEncoder();
export const byteLength = (s) => encoder.encode(s).length;

export const ROOM_RE = /^[A-Za-z0-9_.-]{1,64}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

/** Mirrors the gateway's rules (docs/protocol.md) so most mistakes are caught before sending. */
export function checkName(raw, maxChars = FIRST_LIMITS.max_username_chars) {
  const name = raw.trim();
  if (!name) return { error: "Pick a name first." };
  if ([...name].length > maxChars) return { error: `Names are at most ${maxChars} characters.` };
  if (CONTROL_RE.test(name)) return { error: "Names can't contain control characters." };
  return { name };
}

export function checkRoom(raw) {
  const room = raw.trim().replace(/^#/, "");
  if (!room) return { error: "Type a room name, e.g. general." };
  if (!ROOM_RE.test(room)) {
    return { error: "Room names are 1–64 letters, digits, '.', '_' or '-' (no spaces)." };
  }
  return { room };
}

/** "bob is typing…", "bob and cy are typing…", "bob, cy and 2 others are typing…" */
export function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  const rest = names.length - 2;
  return `${names[0]}, ${names[1]} and ${rest} other${rest > 1 ? "s" : ""} are typing…`;
}

/** A letter, digit or underscore: what may not follow a mention for it to be one. */
const WORD_CHAR = /[\p{L}\p{N}_]/u;

/**
 * Whether `text` mentions `name`: `@name`, any case, followed by the end,
 * a space or punctuation (so "@ada" mentions ada, "@adam" does not), the
 * rule the room-service counts mentions by.
 */
export function mentionsName(text, name) {
  if (typeof text !== "string" || !name || !text.includes("@")) return false;
  const hay = text.toLowerCase();
  const needle = `@${name.toLowerCase()}`;
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1)) {
    const next = hay.slice(at + needle.length).match(/^./su)?.[0];
    if (next == null || !WORD_CHAR.test(next)) return true;
  }
  return false;
}

/** What an `error` frame means, in words a person can act on. `detail` is the gateway's own text. */
export function describeError(frame, limits = FIRST_LIMITS) {
  const room = frame.room ? `#${frame.room}` : "that room";
  const max = limits.max_text_bytes;
  const words = {
    bad_json: "The server could not read a frame from this page. Reloading the page usually fixes it.",
    unknown_type: "The server did not understand a request from this page. Reloading the page usually fixes it.",
    binary_frame: "The server only accepts text frames.",
    bad_room: "That room name isn't allowed: use 1–64 letters, digits, '.', '_' or '-'.",
    bad_username: `That name isn't allowed: use 1–${limits.max_username_chars} characters, no control characters.`,
    empty_text: "Empty messages are not sent.",
    text_too_long: `That message is too long: the limit is ${max.toLocaleString()} bytes.`,
    bad_client_id: "The server refused this page's message id. Reloading the page usually fixes it.",
    not_joined: `You are not in ${room} any more; rejoining it.`,
    already_joined: `You are already in ${room}.`,
    too_many_rooms: `You are in the most rooms one connection may be in (${limits.max_rooms}). Leave one to join another.`,
    unavailable: "The chat service can't be reached right now. Trying again shortly.",
    internal: "The chat service had a problem with that request.",
    bad_cursor: "The server could not page from where this page asked. Reloading the page usually fixes it.",
    bad_limit: "The server refused how many messages this page asked for. Reloading the page usually fixes it.",
    bad_query: "That search can't be run: use 1–256 bytes with at least one letter or digit.",
    search_unavailable: "Search needs the server's message store",
    bad_direct: "That conversation can't be opened: pick someone else (up to 8 people, not only yourself).",
    forbidden: `${room.startsWith("#dm-") ? "That conversation" : room} is not open to you.`,
    bad_message: "That message is not there any more: it was deleted, or is not one of this room's.",
    not_yours: "Only its author can do that to a message (a moderator may delete one).",
    edit_window: frame.message || "That message is too old to edit now.",
    bad_emoji: "That reaction isn't one emoji.",
    too_many_reactions: "That message has as many kinds of reaction as it can take: add to one of them.",
    not_moderator: "Only a moderator of this room can do that.",
    bad_moderation: "That can't be done to that person (nobody acts on themselves or on the room's owner).",
    not_in_room: "That person is not in this room any more.",
    muted: "A moderator muted you in this room; nothing was sent.",
    banned: "You are banned from this room.",
    bad_attachment: "The files of that message could not be posted: an upload expired, or belongs to another room. Attach them again.",
  };
  if (frame.code === "unavailable" && Number.isFinite(frame.retry_after_ms)) {
    words.unavailable = "The chat service is busy right now. Trying again in a moment.";
  }
  return { text: words[frame.code] ?? (frame.message || `Error: ${frame.code}`), detail: frame.message ?? "" };
}

/** A file size as people read it: "812 bytes", "14 KB", "2.4 MB" (1 KB = 1024 bytes, as file managers count). */
export function humanSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return "";
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? "byte" : "bytes"}`;
  const units = ["KB", "MB", "GB", "TB"];
  let n = bytes / 1024;
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit += 1;
  }
  // One decimal below 10 ("2.4 MB"), none above ("14 KB"); never "1024 KB".
  const shown = n < 10 ? Math.round(n * 10) / 10 : Math.round(n);
  if (shown >= 1024 && unit < units.length - 1) return `1 ${units[unit + 1]}`;
  return `${shown} ${units[unit]}`;
}
