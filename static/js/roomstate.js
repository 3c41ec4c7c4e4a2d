// One room as this tab sees it, as plain data: membership state, members,
// where to resume from, the messages already shown (by id), live events
// held while a join is under way, sends waiting for their echo
// (js/pending.js), who is typing (js/typing.js) and the unread count.
//
// No DOM. It decides what the room's message list shows and hands each
// line, in order, to `list` (js/messagelist.js draws them in the page;
// test/roomstate.test.js records them). The list has two methods:
//   add(line)          line is one of
//                        {type: "day", ts}                       a date separator
//                        {type: "message", ev, own, mine, cont, tag}  a stored message
//                                                                (own: this tab's; mine: the reader's, any tab)
//                        {type: "notice", text, ts, kind, detail} a join/leave notice or a local note
//                        {type: "pending", cid, username, text, attachments, reply}  a send waiting for its echo
//                      pending lines go at the bottom, every other line just
//                      above the first pending one, so waiting sends stay last
//   removePending(cid) the pending line of `cid` goes (its echo came, or it was refused)
//   prepend(lines)     lines (of the same kinds, not pending) go above the top, in order
//   dropFirstDay()     the topmost date line goes (a page prepended above ends on its day)
//   update(message)    (optional) the message of that id is drawn again: a `change`
//                      edited, deleted or reacted to it, or deleted what it quotes
//
// Older messages come by scroll-back, and a search hit the list does not
// hold comes in a context block of its own (js/roomhistory.js, `history`).
//
// Messages are deduplicated by their `id`, because a (re)join may send
// again messages already shown (the last 50 after a resume that could not
// recover, or live messages held while joining). Join/leave notices come
// from `presence` frames, which have no id and are never sent twice: they
// are local lines.
//
// Resuming: the room keeps its `epoch` and the last `seq` it saw, so a join
// after a reconnect asks for exactly what it missed (docs/protocol.md,
// "Sessions and resuming"); when the room cannot give that back, a marker
// line says messages may be missing.
//
// Members: the tab holds the first page `joined` sent, the pages "Show more"
// fetched, and what presence frames changed since; `memberCount` is the
// room's true size, which may be more than it holds.

import { dayKey } from "./format.js";
import { userOf } from "./lifecycle.js";
import { applyModeration, moderates } from "./moderation.js";
import { foldName, mergePresence, presenceNotice, shortId, shownMembers } from "./members.js";
import { Pending } from "./pending.js";
import { RoomHistory } from "./roomhistory.js";
import { ShownMessages } from "./shownmessages.js";
import { Typists } from "./typing.js";

/** Messages from one person closer together than this share one author line. */
const GROUP_MS = 5 * 60_000;
/** Live events held while a join is under way; past this they are dropped (a rejoin's history brings them back). */
export const MAX_EARLY = 1_000;
/** Seen ids kept per room; far more than the history a join sends back. */
export const MAX_SEEN = 5_000;

/** The events of a room's order (each with a `seq` and `id`): messages, and what changes or moderates them. */
const STORED = new Set(["message", "change", "moderation"]);

/** A `members` request not answered in this long is given up (its reply or error got lost). */
const MEMBERS_ASK_MS = 10_000;

export class RoomState {
  /**
   * @param {string} name the room
   * @param {string} username this tab's name in it
   * @param {(cid: string) => boolean} isOwnClientId whether a client id is this tab's (js/clientid.js)
   * @param {{add(line: object): void, removePending(cid: string): void}} list where the lines go
   */
  constructor(name, username, isOwnClientId, list) {
    this.name = name;
    this.username = username;
    this.isOwnClientId = isOwnClientId;
    this.list = list;
    /** offline (waiting for a connection) | joining | joined */
    this.status = "offline";
    this.memberId = null;
    /** Every member id this tab has had in the room, so old own messages stay "own". */
    this.ownIds = new Set();
    this.members = new Map();
    /** The room's size from the last `joined` / `members` / `presence`. */
    this.memberCount = 0;
    /** Cursor of the next page of members, null when the tab has the last page. */
    this.membersNext = null;
    /** A partial presence frame came: the held list may miss joins or hold some who left. */
    this.membersStale = false;
    /** The `members` request in flight, {kind: "first"|"more", at}; one at a time. */
    this.membersAsk = null;
    this.lastMembersFetch = 0;
    this.membersTimer = null;
    this.seen = new Set();
    /** The messages its lines show, by id, for their later life to reach (js/shownmessages.js). */
    this.messages = new ShownMessages();
    /** The reader's user id (js/store.js `me`); set by js/protocol.js, null until a welcome says. */
    this.userId = () => null;
    /** The reader's role here (`joined.role`, js/moderation.js): owner, moderator or member. */
    this.role = "member";
    /** Until when (ms) a moderator muted the reader here; null when not. */
    this.mutedUntil = null;
    /** A moderator removed this tab from the room (`left` with a reason): {reason, by, message}; null else. */
    this.removed = null;
    /** Who is typing here (js/typing.js). */
    this.typing = new Typists();
    this.pending = new Pending();
    /** The room's epoch (from `joined`) and the last `seq` seen in it: where a resume starts. */
    this.epoch = null;
    this.lastSeq = null;
    /** The `after_seq`/`epoch` the join under way asked to resume from, or null for a first join. */
    this.resumeAsked = null;
    this.early = [];
    /** Others' messages that came while the room was not being read. */
    this.unread = 0;
    this.joinedOnce = false;
    /** Joins refused in a row (busy or unreachable room-service); 0 once joined. */
    this.joinRefusals = 0;
    this.draft = "";
    /** The message the next send answers (js/lifecycle.js `replyTarget`), shown above the composer; or null. */
    this.replyingTo = null;
    this.scrollTop = null;
    this.last = null; // {memberId, ts} of the last message line, for grouping
    this.lastDay = null;
    /** Scroll-back and the context block around a search hit (js/roomhistory.js). */
    this.history = new RoomHistory(this);
  }

  /**
   * The fields a join adds to resume where the tab left off: none before
   * the first `joined`, else `after_seq` and `epoch` (both, as the protocol
   * asks). Remembered, so `joined` can tell a failed resume.
   */
  resumeFrom() {
    this.resumeAsked = this.epoch != null && this.lastSeq != null ? { after_seq: this.lastSeq, epoch: this.epoch } : null;
    return this.resumeAsked ?? {};
  }

  /**
   * Apply `joined`: a marker when a resume could not recover everything
   * missed, its history, then "You joined" (or "You rejoined" after a
   * reconnect), then the live events held while joining. Others' messages
   * in all that which were new to this tab count as unread, unless this is
   * the first `joined` (its history is context, not news) or the room is
   * being read (`seen`). Returns how many such messages there were.
   */
  applyJoined(frame, { seen = false } = {}) {
    const firstTime = !this.joinedOnce;
    this.status = "joined";
    this.memberId = frame.member_id;
    this.ownIds.add(frame.member_id);
    this.role = typeof frame.role === "string" ? frame.role : "member";
    this.removed = null;
    this.members = new Map((frame.members ?? []).map((m) => [m.member_id, m]));
    this.memberCount = frame.member_count ?? this.members.size;
    this.membersNext = frame.members_next ?? null;
    this.membersStale = false;
    this.membersAsk = null;
    this.typing.clear();
    // Only a tab that saw messages here can have missed some.
    if (this.resumeAsked && frame.recovered !== true && this.seen.size > 0) {
      this.append({ type: "notice", text: "Earlier messages may be missing", ts: Date.now(), kind: "gap" });
      this.last = null;
    }
    this.resumeAsked = null;
    // The room's position now; history and live messages move it on.
    if (typeof frame.epoch === "string") {
      // History started over: the seqs above the shown ones are not its seqs, so scroll-back stops.
      if (this.epoch != null && frame.epoch !== this.epoch) this.history.live.stop();
      this.epoch = frame.epoch;
    }
    this.lastSeq = Number.isFinite(frame.last_seq) ? frame.last_seq : null;
    let fresh = 0;
    for (const ev of frame.history ?? []) {
      const r = this.addEvent(ev);
      if (r.message && !r.own) fresh += 1;
    }
    const now = Date.now();
    this.append({ type: "notice", text: this.joinedOnce ? "You rejoined" : "You joined", ts: now, kind: "join" });
    this.last = null;
    this.joinedOnce = true;
    fresh += this.releaseEarly();
    if (!firstTime && !seen) this.unread += fresh;
    return fresh;
  }

  /**
   * A live `message` in a joined room: shown unless it was already, and
   * counted as unread when it is someone else's and the room is not being
   * read (`seen`). Returns {added, message, own}.
   */
  applyLive(ev, { seen = false } = {}) {
    const r = this.addEvent(ev);
    if (r.message && !r.own && !seen) this.unread += 1;
    return r;
  }

  /**
   * Apply a `presence` frame: the member map and count, and one notice line.
   * Returns {added, partial}; partial means the held list may be stale.
   */
  applyPresence(frame) {
    const partial = mergePresence(this.members, frame);
    for (const m of frame.leaves ?? []) this.typing.delete(m.member_id);
    if (Number.isFinite(frame.member_count)) this.memberCount = frame.member_count;
    if (partial) this.membersStale = true;
    const notice = presenceNotice(frame, this.ownIds);
    if (!notice) return { added: false, partial };
    this.append({ type: "notice", text: notice.text, ts: Date.now(), kind: notice.kind });
    this.last = null;
    return { added: true, partial };
  }

  /** Whether a `members` request may be sent now (none is in flight). */
  canAskMembers(now = Date.now()) {
    return this.status === "joined" && (this.membersAsk == null || now - this.membersAsk.at > MEMBERS_ASK_MS);
  }

  /**
   * The frame asking for members: the first page again ("first", which
   * replaces the held list and clears the stale mark) or the page after
   * the held ones ("more").
   */
  askMembers(kind, now = Date.now()) {
    this.membersAsk = { kind, at: now };
    if (kind === "first") {
      this.membersStale = false;
      this.lastMembersFetch = now;
      return { type: "members", room: this.name, after: "" };
    }
    return { type: "members", room: this.name, after: this.membersNext ?? "" };
  }

  /** Apply a `members` reply to the request in flight. */
  applyMembers(frame) {
    const kind = this.membersAsk?.kind ?? "more";
    this.membersAsk = null;
    if (kind === "first") this.members = new Map();
    for (const m of frame.members ?? []) this.members.set(m.member_id, m);
    if (Number.isFinite(frame.member_count)) this.memberCount = frame.member_count;
    this.membersNext = frame.next ?? null;
  }

  /** A refused `members` request: a refetch is still due. Returns whether one was in flight. */
  membersRefused() {
    if (!this.membersAsk) return false;
    if (this.membersAsk.kind === "first") this.membersStale = true;
    this.membersAsk = null;
    return true;
  }

  /** The connection went away: membership is gone until the next `joined`. */
  goOffline() {
    this.status = "offline";
    this.memberId = null;
    this.typing.clear();
    this.early = [];
    this.membersAsk = null;
    this.history.offline();
  }

  /**
   * A live frame (message or presence) that came before our `joined` (the
   * gateway may already be streaming the room): kept until `joined`, then
   * applied after its history, where the id check drops messages the
   * history already had.
   */
  holdEarly(ev) {
    if (this.early.length < MAX_EARLY) this.early.push(ev);
  }

  /** Apply the held events; returns how many were others' new messages. */
  releaseEarly() {
    let fresh = 0;
    for (const ev of this.early.splice(0)) {
      if (ev.type === "presence") {
        this.applyPresence(ev);
        continue;
      }
      const r = this.addEvent(ev);
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
   * Add a stored event (from history or live) unless it was seen already:
   * a message is drawn, a `change` applied to the message it names, a
   * `moderation` event drawn as a notice. Returns {added, message, own}.
   */
  addEvent(ev) {
    if (!STORED.has(ev.type) || !ev.id) return { added: false };
    if (this.seen.has(ev.id)) {
      // A message shown before, sent again (a rejoin that could not resume): as it stands now.
      if (ev.type === "message") this.refresh(ev);
      return { added: false };
    }
    this.remember(ev.id);
    // A change has a seq of its own in the room's order: a resume starts after it too.
    if (Number.isFinite(ev.seq) && (this.lastSeq == null || ev.seq > this.lastSeq)) this.lastSeq = ev.seq;
    if (ev.type === "change") return { added: false, changed: this.applyChange(ev) };
    if (ev.type === "moderation") {
      this.append(applyModeration(this, ev, (user) => this.isMe({ user_id: user.user_id, member_id: user.user_id })));
      this.last = null;
      return { added: true };
    }
    return this.addMessage(ev);
  }

  /** Whether the reader moderates the room: the delete of anyone's message, the member menu. */
  get moderator() {
    return moderates(this.role);
  }

  /**
   * Applies a `change` frame (edit, delete or react) to the message it
   * names, if this tab shows it, and has every list showing it draw it
   * again; a delete also marks the quotes of it in replies. Returns
   * whether anything shown changed. (Use `addEvent`: it drops a change
   * seen before and moves the resume position.)
   */
  applyChange(change) {
    const changed = this.messages.apply(change, this.isMe(change));
    for (const message of changed) this.redraw(message);
    return changed.length > 0;
  }

  /** A message shown already came again (a rejoin that could not resume): it shows its state now. */
  refresh(ev) {
    const shown = this.messages.refresh(ev);
    if (shown) this.redraw(shown);
  }

  /** Every list of the room showing `message` draws it again. */
  redraw(message) {
    this.list.update?.(message);
    this.history.context?.list.update?.(message);
  }

  /** Whether a message or change is the reader's: this tab's member, or the reader's user. */
  isMe(ev) {
    if (this.ownIds.has(ev.member_id)) return true;
    const me = this.userId();
    return me != null && me !== "" && userOf(ev) === me;
  }

  /** Whether the reader may edit `message` (their own, from any of their tabs); deleting also a moderator's right. */
  mayEdit(message) {
    return !message.deleted && Boolean(message.member_id) && (this.isOwn(message) || this.isMe(message));
  }

  addMessage(ev) {
    const own = this.isOwn(ev);
    // Its echo: the stored message takes the waiting line's place.
    if (this.pending.settle(ev.client_id)) this.list.removePending(ev.client_id);
    this.typing.delete(ev.member_id);
    const cont =
      this.last != null &&
      ev.member_id &&
      this.last.memberId === ev.member_id &&
      ev.ts - this.last.ts < GROUP_MS &&
      dayKey(ev.ts) === this.lastDay;
    this.append({ ...this.lineFor(ev, cont), own }, ev.ts);
    this.last = { memberId: ev.member_id, ts: ev.ts };
    // The room's first message: nothing older to scroll back to, and a marker says so.
    const first = this.history.live.saw(ev.seq);
    if (first) this.list.prepend([first]);
    return { added: true, message: true, own };
  }

  /** The line of a stored message; `cont` when it shares the author line of the one before. */
  lineFor(ev, cont) {
    this.messages.track(ev);
    const own = this.isOwn(ev);
    return {
      type: "message",
      ev,
      own,
      mine: own || (Boolean(ev.member_id) && this.isMe(ev)),
      cont: Boolean(cont),
      tag: this.tagFor(ev.member_id, ev.username),
    };
  }

  /** Add a stored line (above any pending ones), after a date separator when its day is new. */
  append(line, ts = line.ts) {
    const key = dayKey(ts);
    if (key !== this.lastDay) {
      this.lastDay = key;
      this.list.add({ type: "day", ts });
      this.history.live.noteDay(key);
      this.last = null;
    }
    this.list.add(line);
  }

  /** A local note (errors, hints): not an event, no id. */
  note(text, kind = "info", detail = "") {
    this.list.add({ type: "notice", text, ts: Date.now(), kind, detail });
    this.last = null;
  }

  /**
   * A send shown at once, at the bottom, until its echo comes (js/pending.js);
   * `attachments` are its files, `reply` what it answers (js/lifecycle.js `replyTarget`) or null.
   */
  addPending(cid, text, attachments = [], reply = null) {
    this.pending.add(cid, text, attachments, reply?.id ?? null);
    this.list.add({ type: "pending", cid, username: this.username, text, attachments, reply });
  }

  /**
   * Take back the oldest waiting send (the room refused it); its text, or
   * null when none waits. With `replyOnly`, only if it is a reply (a
   * `bad_message` may answer an edit or reaction as well as a reply's `reply_to`).
   */
  takeBackOldest({ replyOnly = false } = {}) {
    if (replyOnly && !this.pending.oldest()?.replyTo) return null;
    const p = this.pending.dropOldest();
    if (!p) return null;
    this.list.removePending(p.cid);
    return p.text;
  }

  remember(id) {
    this.seen.add(id);
    if (this.seen.size > MAX_SEEN) this.seen.delete(this.seen.values().next().value);
  }

  /** Someone else is typing; ignored for this tab's own member. */
  sawTyping(frame) {
    if (this.ownIds.has(frame.member_id)) return;
    this.typing.saw(frame.member_id, frame.username);
  }

  /** Names typing right now, expired ones dropped. */
  typingNames(now = Date.now()) {
    return this.typing.names(now);
  }

  /**
   * The member list to draw (a bounded slice), each as {member, own, tag},
   * and how many members that leaves out.
   */
  memberRows() {
    const { shown, more } = shownMembers(this.members, this.memberCount);
    // Names that read alike get a mark each; counted once, not per item.
    const alike = new Map();
    for (const m of this.members.values()) {
      const key = foldName(m.username ?? "");
      alike.set(key, (alike.get(key) ?? 0) + 1);
    }
    const tag = (m) => (alike.get(foldName(m.username ?? "")) > 1 ? `#${shortId(m.member_id)}` : "");
    return { rows: shown.map((m) => ({ member: m, own: m.member_id === this.memberId, tag: tag(m) })), more };
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
