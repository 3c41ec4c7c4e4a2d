// The user's rooms as the gateway tells them (docs/protocol.md, `rooms` and
// `inbox`): every room and direct conversation (DM) of the user, with its
// last seq, the user's read marker, unread and mention counts, the last
// message and when it last saw activity. No DOM, so it runs under Node's
// test runner (test/inbox.test.js).
//
// Data flow: a `rooms` snapshot (after each welcome, after the gateway's
// inbox feed re-subscribed, or asked for) replaces the set of entries; an
// `inbox` update (another device read, a DM message, a mention, a room
// joined or left) carries one whole entry. Both may arrive late or out of
// order (a snapshot computed before an update that overtook it; updates
// from two room-services), so every entry merges instead of replacing:
// the larger last_seq and the larger read marker win, and unread is their
// difference. Live messages of a room this tab is in move its entry on too
// (`sawMessage`): the room-service sends no inbox update for a message in a
// public room, the stream of the room itself says it.
//
// The marker the server holds (`server_read`) is kept apart from the one
// shown (`read_seq`, which the page moves on at once when it reads): the
// page tells the server only what the server does not have yet.
//
// What the sidebar draws (`listRows`) joins these entries with the rooms
// this tab is in (js/roomstate.js), which without a people-aware gateway
// are all there is: their own unread counts are used then.

/** Entries held at most (the gateway sends at most 500); past it the least recently active go. */
export const MAX_ENTRIES = 500;
/** Characters of a last message kept for its preview (the gateway sends at most 200). */
const PREVIEW_CHARS = 200;
/** Inbox update reasons that may be worth a notification while the tab is hidden. */
const NOTIFY_REASONS = new Set(["message", "mention"]);

const count = (v) => (Number.isSafeInteger(v) && v >= 0 ? v : null);

/** Whether a room name is a direct conversation's (chat_proto::people::direct_room). */
export const isDirect = (room) => typeof room === "string" && room.startsWith("dm-");

/**
 * An entry as the gateway sent it, checked and with its defaults; null when
 * it is not one (no room name, a seq that is not a count).
 */
export function readEntry(raw) {
  if (raw == null || typeof raw !== "object" || typeof raw.room !== "string" || raw.room === "") return null;
  const last_seq = count(raw.last_seq ?? 0);
  const read_seq = count(raw.read_seq ?? 0);
  if (last_seq == null || read_seq == null) return null;
  const members = Array.isArray(raw.members)
    ? raw.members
        .filter((m) => m && typeof m.user_id === "string")
        .map((m) => ({ user_id: m.user_id, name: typeof m.name === "string" ? m.name : "" }))
    : [];
  const last = readLast(raw.last);
  const entry = {
    room: raw.room,
    kind: raw.kind === "direct" || raw.kind === "room" ? raw.kind : isDirect(raw.room) ? "direct" : "room",
    members,
    last_seq: Math.max(last_seq, last?.seq ?? 0),
    read_seq,
    server_read: read_seq,
    mentions: count(raw.mentions) ?? 0,
    last,
    activity: count(raw.activity) ?? last?.ts ?? 0,
    epoch: typeof raw.epoch === "string" ? raw.epoch : "",
  };
  return withUnread(entry, entry.mentions);
}

function readLast(last) {
  if (last == null || typeof last !== "object" || count(last.seq) == null) return null;
  const text = typeof last.text === "string" ? last.text : "";
  return {
    seq: last.seq,
    id: typeof last.id === "string" ? last.id : "",
    username: typeof last.username === "string" ? last.username : "",
    member_id: typeof last.member_id === "string" ? last.member_id : "",
    text: text.length > PREVIEW_CHARS ? text.slice(0, PREVIEW_CHARS) : text,
    ts: count(last.ts) ?? 0,
  };
}

/** `entry` with unread = last_seq − read_seq and its mentions, never more than unread. */
function withUnread(entry, mentions) {
  const read_seq = Math.min(entry.read_seq, entry.last_seq);
  const unread = entry.last_seq - read_seq;
  return { ...entry, read_seq, unread, mentions: Math.min(mentions, unread) };
}

/**
 * Two views of one entry, in whichever order they came: the larger last_seq
 * and read marker win. Mentions are a count of mention seqs after the
 * marker, so they are exact from the view that has both the last seq and
 * the marker; otherwise the view with the newest messages says at most how
 * many there are. A changed epoch (the room's history started over, its
 * seqs with it) makes the newer view the whole truth.
 */
export function mergeEntry(old, next) {
  if (!old) return next;
  if (old.epoch && next.epoch && old.epoch !== next.epoch) return next;
  const last_seq = Math.max(old.last_seq, next.last_seq);
  const read_seq = Math.max(old.read_seq, next.read_seq);
  // The view with the newest messages; on a tie the one read furthest, then the one that came last.
  const newest =
    next.last_seq > old.last_seq || (next.last_seq === old.last_seq && next.read_seq >= old.read_seq) ? next : old;
  const exact = newest.read_seq === read_seq;
  const merged = {
    room: next.room,
    kind: next.kind ?? old.kind,
    members: next.members.length > 0 ? next.members : old.members,
    last_seq,
    read_seq,
    server_read: Math.max(old.server_read, next.server_read),
    mentions: 0,
    last: (next.last?.seq ?? -1) >= (old.last?.seq ?? -1) ? next.last ?? old.last : old.last,
    activity: Math.max(old.activity, next.activity),
    epoch: next.epoch || old.epoch,
  };
  return withUnread(merged, exact ? newest.mentions : Math.min(newest.mentions, last_seq - read_seq));
}

/**
 * The user's rooms. Changes return whether anything a view draws changed;
 * the caller tells the store (js/store.js `inboxChanged`).
 */
export class Inbox {
  constructor() {
    /** room → entry. */
    this.entries = new Map();
  }

  get(room) {
    return this.entries.get(room) ?? null;
  }

  get size() {
    return this.entries.size;
  }

  /**
   * A `rooms` snapshot: the user's rooms are these (a room left meanwhile
   * goes), each merged with what was held (an update that overtook the
   * snapshot is not undone). Malformed entries are skipped.
   */
  applySnapshot(rooms) {
    const next = new Map();
    for (const raw of Array.isArray(rooms) ? rooms : []) {
      const entry = readEntry(raw);
      if (entry) next.set(entry.room, mergeEntry(this.entries.get(entry.room), entry));
    }
    this.entries = next;
    this.bound();
    return true;
  }

  /**
   * An `inbox` update `{reason, room: entry}`. Returns {changed, notify}:
   * `notify` ({room, reason, last}) when it brought a message the user has
   * not read that is worth telling about (a DM message or a mention).
   */
  applyUpdate(frame) {
    const entry = readEntry(frame?.room);
    if (!entry) return { changed: false, notify: null };
    if (frame.reason === "left") {
      return { changed: this.entries.delete(entry.room), notify: null };
    }
    const old = this.entries.get(entry.room) ?? null;
    const merged = mergeEntry(old, entry);
    this.entries.set(entry.room, merged);
    this.bound();
    const fresh = old == null || merged.last_seq > old.last_seq || merged.mentions > old.mentions;
    const worth =
      NOTIFY_REASONS.has(frame.reason) &&
      fresh &&
      merged.unread > 0 &&
      (frame.reason !== "mention" || merged.mentions > 0);
    return { changed: true, notify: worth ? { room: merged.room, reason: frame.reason, last: merged.last } : null };
  }

  /**
   * A `dm` reply: the conversation and its members, before the inbox
   * update or the next snapshot lists it. Merging keeps whatever is newer.
   */
  noteDirect(room, members, now = Date.now()) {
    const entry = readEntry({ room, kind: "direct", members, activity: now });
    if (!entry) return false;
    this.entries.set(room, mergeEntry(this.entries.get(room), entry));
    this.bound();
    return true;
  }

  /**
   * This tab joined `room`, at `lastSeq`: a room new to the user is theirs
   * from then on, read up to there, as the room-service recorded it before
   * answering the join (users of one browser session get no "joined"
   * update: the joining tab is their only one). A room already held keeps
   * its entry (and its marker, which the join did not move).
   */
  noteJoined(room, lastSeq, epoch, now = Date.now()) {
    if (this.entries.has(room)) return false;
    const seq = count(lastSeq) ?? 0;
    const kind = isDirect(room) ? "direct" : "room";
    const entry = readEntry({ room, kind, members: [], last_seq: seq, read_seq: seq, activity: now, epoch });
    if (!entry) return false;
    this.entries.set(room, entry);
    this.bound();
    return true;
  }

  /**
   * A message this tab saw live (or in a join's history) in `room`: the
   * entry's last seq, preview and activity move on. With `read` (the room
   * is on screen and the tab visible) the marker moves with it. Returns
   * whether the entry changed; a room that is not the user's is left alone.
   */
  sawMessage(room, ev, { read = false } = {}) {
    const entry = this.entries.get(room);
    const seq = count(ev?.seq);
    if (!entry || seq == null || seq <= entry.last_seq) return read && seq != null ? this.markRead(room, seq) : false;
    const last = readLast(ev);
    this.entries.set(
      room,
      withUnread(
        {
          ...entry,
          last_seq: seq,
          last,
          activity: Math.max(entry.activity, last.ts),
          read_seq: read ? seq : entry.read_seq,
        },
        entry.mentions,
      ),
    );
    return true;
  }

  /** The page read `room` up to `seq`: its marker moves on at once (never back). Returns whether it moved. */
  markRead(room, seq) {
    const entry = this.entries.get(room);
    if (!entry || !(seq > entry.read_seq)) return false;
    const read_seq = Math.min(seq, entry.last_seq);
    if (read_seq <= entry.read_seq) return false;
    this.entries.set(room, withUnread({ ...entry, read_seq }, read_seq >= entry.last_seq ? 0 : entry.mentions));
    return true;
  }

  /** The person left public room `room`: it is no longer theirs (the server's "left" update says the same). */
  forget(room) {
    const entry = this.entries.get(room);
    if (!entry || entry.kind === "direct") return false;
    return this.entries.delete(room);
  }

  /** Entries, newest activity first (then by name, so the order is stable). */
  ordered() {
    return [...this.entries.values()].sort(byActivity);
  }

  /** Unread messages over all the user's rooms. */
  totalUnread() {
    let n = 0;
    for (const e of this.entries.values()) n += e.unread;
    return n;
  }

  /** Past MAX_ENTRIES, the least recently active entries go. */
  bound() {
    if (this.entries.size <= MAX_ENTRIES) return;
    for (const e of this.ordered().slice(MAX_ENTRIES)) this.entries.delete(e.room);
  }
}

const byActivity = (a, b) => b.activity - a.activity || (a.room < b.room ? -1 : a.room > b.room ? 1 : 0);

/**
 * What a direct conversation is called for user `me`: the other members'
 * names ("bob", "bob, cy"); "Direct conversation" before its members are known.
 */
export function directName(entry, me) {
  const others = (entry?.members ?? []).filter((m) => m.user_id !== me);
  const names = (others.length > 0 ? others : entry?.members ?? []).map((m) => m.name || m.user_id.slice(0, 8));
  return names.length > 0 ? names.join(", ") : "Direct conversation";
}

/** The user ids with a member in a joined room's member list: who is online, as far as this tab can see. */
export function onlineUsers(rooms) {
  const online = new Set();
  for (const room of rooms) {
    if (room.status !== "joined") continue;
    for (const m of room.members.values()) if (m.user_id) online.add(m.user_id);
  }
  return online;
}

/**
 * The sidebar's rows: the rooms this tab is in and the user's other rooms
 * and DMs, newest activity first (rooms the inbox does not know keep the
 * order they were added in, after the others). Each row:
 *   {room, kind, label, status (offline|joining|joined, or "out": not joined
 *    in this tab), unread, mentions, online (DMs: whether another member is
 *    seen online; null for rooms), active, last}
 * `rooms` are this tab's rooms (js/roomstate.js) in the order added; `me`
 * the user's id; `active` the room on screen (or null).
 */
export function listRows(inbox, rooms, { me = null, active = null } = {}) {
  const list = [...rooms];
  const online = onlineUsers(list);
  const rows = [];
  const row = (name, entry, room) => {
    const kind = entry?.kind ?? (isDirect(name) ? "direct" : "room");
    const others = (entry?.members ?? []).filter((m) => m.user_id !== me);
    return {
      room: name,
      kind,
      label: kind === "direct" ? directName(entry, me) : name,
      status: room?.status ?? "out",
      unread: entry ? entry.unread : room?.unread ?? 0,
      mentions: entry?.mentions ?? 0,
      online: kind === "direct" ? others.some((m) => online.has(m.user_id)) : null,
      active: active != null && active === name,
      last: entry?.last ?? null,
      activity: entry?.activity ?? -1,
    };
  };
  for (const room of list) rows.push(row(room.name, inbox.get(room.name), room));
  const inTab = new Set(list.map((r) => r.name));
  for (const entry of inbox.entries.values()) if (!inTab.has(entry.room)) rows.push(row(entry.room, entry, null));
  // Array.prototype.sort is stable: rooms the inbox does not know (-1) keep their order.
  return rows.sort((a, b) => b.activity - a.activity || (a.activity < 0 ? 0 : a.room < b.room ? -1 : a.room > b.room ? 1 : 0));
}
