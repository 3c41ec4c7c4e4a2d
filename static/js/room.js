// One room as this tab sees it: membership state, members, the message list
// (a detached element swapped into #messages when the room is shown), typing
// people and messages waiting to be echoed.
//
// Events are deduplicated by their `id`, because every (re)join sends the
// room's recent history again.

import { dayKey } from "./format.js";
import { dayEl, el, memberEl, messageEl, noticeEl, pendingEl } from "./view.js";

/** Messages from one person closer together than this share one author line. */
const GROUP_MS = 5 * 60_000;
/** How long "x is typing…" stays after their last typing frame. */
export const TYPING_SHOW_MS = 5_000;
/** Live events held while a join is under way; past this they are dropped (a rejoin's history brings them back). */
const MAX_EARLY = 1_000;
/** Seen ids kept per room; far more than the history a join sends back. */
const MAX_SEEN = 5_000;

const LEFT_WORDS = {
  left: "left",
  disconnected: "disconnected",
  expired: "timed out",
};

export class Room {
  constructor(name, username, isOwnClientId) {
    this.name = name;
    this.username = username;
    this.isOwnClientId = isOwnClientId;
    /** offline (waiting for a connection) | joining | joined */
    this.status = "offline";
    this.memberId = null;
    /** Every member id this tab has had in the room, so old own messages stay "own". */
    this.ownIds = new Set();
    this.members = new Map();
    this.seen = new Set();
    this.typing = new Map();
    this.pending = new Map();
    this.early = [];
    this.unread = 0;
    this.joinedOnce = false;
    this.lastTypingSent = 0;
    this.draft = "";
    this.scrollTop = null;
    this.last = null; // {memberId, ts} of the last message line, for grouping
    this.lastDay = null;
    this.list = el("div", "message-list");
    this.list.dataset.room = name;
  }

  /** Apply `joined`. Returns how many others' messages in its history were new to this tab. */
  applyJoined(frame) {
    this.status = "joined";
    this.memberId = frame.member_id;
    this.ownIds.add(frame.member_id);
    this.members = new Map((frame.members ?? []).map((m) => [m.member_id, m]));
    this.typing.clear();
    let fresh = 0;
    for (const ev of frame.history ?? []) {
      const r = this.addEvent(ev, { live: false });
      if (r.message && !r.own) fresh += 1;
    }
    this.joinedOnce = true;
    return fresh;
  }

  /** The connection went away: membership is gone until the next `joined`. */
  goOffline() {
    this.status = "offline";
    this.memberId = null;
    this.typing.clear();
    this.early = [];
  }

  /**
   * A live event that came before our `joined` (the gateway may already be
   * streaming the room): kept until `joined`, then applied after its
   * history, where the id check drops what the history already had.
   */
  holdEarly(ev) {
    if (this.early.length < MAX_EARLY) this.early.push(ev);
  }

  /** Apply the held events; returns how many were others' new messages. */
  releaseEarly() {
    let fresh = 0;
    for (const ev of this.early.splice(0)) {
      const r = this.addEvent(ev, { live: true });
      if (r.message && !r.own) fresh += 1;
    }
    return fresh;
  }

  /**
   * This page always sends a client_id with its tab's prefix, so that decides
   * when there is one: a member id alone can be reused (a restarted gateway
   * counts its connections from 1 again), a tab's random prefix is not.
   */
  isOwn(ev) {
    if (ev.client_id) return this.isOwnClientId(ev.client_id);
    return this.ownIds.has(ev.member_id);
  }

  /**
   * Add a stored event (message / member_joined / member_left) unless it was
   * shown already. `live` events also update the member list; history does
   * not, since `joined.members` is the current truth.
   * Returns {added, message, own}.
   */
  addEvent(ev, { live }) {
    if (!ev.id || this.seen.has(ev.id)) return { added: false };
    this.remember(ev.id);
    if (ev.type === "message") return this.addMessage(ev);
    const m = ev.member ?? {};
    const mine = this.ownIds.has(m.member_id);
    const who = mine ? "You" : m.username ?? "someone";
    if (ev.type === "member_joined") {
      if (live) this.members.set(m.member_id, m);
      const how = mine && this.joinedOnce ? "rejoined" : "joined";
      this.append(noticeEl(`${who} ${how}`, { id: ev.id, ts: ev.ts, kind: "join" }), ev.ts);
    } else if (ev.type === "member_left") {
      if (live) this.members.delete(m.member_id);
      this.typing.delete(m.member_id);
      const how = LEFT_WORDS[ev.reason] ?? "left";
      this.append(noticeEl(`${who} ${how}`, { id: ev.id, ts: ev.ts, kind: "leave" }), ev.ts);
    } else {
      return { added: false };
    }
    this.last = null;
    return { added: true };
  }

  addMessage(ev) {
    const own = this.isOwn(ev);
    if (ev.client_id && this.pending.has(ev.client_id)) {
      this.pending.get(ev.client_id).el.remove();
      this.pending.delete(ev.client_id);
    }
    this.typing.delete(ev.member_id);
    const cont =
      this.last != null &&
      ev.member_id &&
      this.last.memberId === ev.member_id &&
      ev.ts - this.last.ts < GROUP_MS &&
      dayKey(ev.ts) === this.lastDay;
    this.append(messageEl(ev, { own, cont, tag: this.tagFor(ev.member_id, ev.username) }), ev.ts);
    this.last = { memberId: ev.member_id, ts: ev.ts };
    return { added: true, message: true, own };
  }

  /** Append before any pending messages, which always stay at the bottom. */
  append(node, ts) {
    const key = dayKey(ts);
    const before = this.firstPending();
    if (key !== this.lastDay) {
      this.lastDay = key;
      this.list.insertBefore(dayEl(ts), before);
      this.last = null;
    }
    this.list.insertBefore(node, before);
  }

  /** A local note (errors, hints): not an event, no id. */
  note(text, kind = "info", detail = "") {
    const line = noticeEl(text, { ts: Date.now(), kind });
    if (detail) line.title = detail;
    this.list.insertBefore(line, this.firstPending());
    this.last = null;
  }

  firstPending() {
    for (const p of this.pending.values()) return p.el;
    return null;
  }

  addPending(cid, text) {
    const node = pendingEl(cid, this.username, text);
    this.pending.set(cid, { text, el: node });
    this.list.append(node);
  }

  /** Take back the oldest message still waiting (it was refused). */
  dropOldestPending() {
    for (const [cid, p] of this.pending) {
      p.el.remove();
      this.pending.delete(cid);
      return p.text;
    }
    return null;
  }

  remember(id) {
    this.seen.add(id);
    if (this.seen.size > MAX_SEEN) this.seen.delete(this.seen.values().next().value);
  }

  /** Someone else is typing; ignored for this tab's own member. */
  sawTyping(frame) {
    if (this.ownIds.has(frame.member_id)) return;
    this.typing.set(frame.member_id, { username: frame.username, until: Date.now() + TYPING_SHOW_MS });
  }

  /** Names typing right now, expired ones dropped. */
  typingNames(now = Date.now()) {
    const names = [];
    for (const [id, t] of this.typing) {
      if (t.until <= now) this.typing.delete(id);
      else names.push(t.username);
    }
    return names;
  }

  memberEls() {
    return [...this.members.values()]
      .sort((a, b) => a.username.localeCompare(b.username) || a.member_id.localeCompare(b.member_id))
      .map((m) => memberEl(m, m.member_id === this.memberId, this.tagFor(m.member_id, m.username)));
  }

  /**
   * A short mark from the member id when another present member's name
   * reads the same (case and compatibility forms folded), so nobody can
   * pass for someone else unnoticed; "" when the name is unique here.
   */
  tagFor(memberId, username) {
    if (!memberId) return "";
    const key = foldName(username ?? "");
    for (const m of this.members.values()) {
      if (m.member_id !== memberId && foldName(m.username) === key) return `#${shortId(memberId)}`;
    }
    return "";
  }
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
