// The page's state in one place: the rooms this tab is in (in the order
// they were added), the room on screen, and the gateway's limits. Nothing
// else in the page keeps state of its own beyond what the DOM shows; views
// subscribe here and redraw what a change names. No DOM, so it runs under
// Node's test runner (static/test/store.test.js).
//
// Beside the rooms of this tab it holds who the user is (`me`, from
// `welcome`) and the user's rooms and DMs on every tab and device
// (`inbox`, js/inbox.js), which js/people.js keeps and the sidebar draws.
//
// A room (js/roomstate.js) changes itself as frames arrive: its messages,
// members, typing people. Whoever changed one says so with
// `changed(room, ...parts)`, naming what to redraw, because redrawing all
// of a room for every frame would rebuild a member list of hundreds for
// each message.

import { Inbox } from "./inbox.js";
import { FIRST_LIMITS, readLimits } from "./limits.js";
import { Search } from "./search.js";

/**
 * The parts of a room a view may draw: its entry in the room list, and
 * for the room on screen its header, member list, typing line and which
 * of its message lists is on screen (the live one or the block around a
 * search hit, js/roomhistory.js), and what stands over its composer (the
 * reply it is writing, whether it may write: js/compose.js).
 */
export const PARTS = Object.freeze(["item", "header", "members", "typing", "list", "compose"]);

/**
 * Changes, as subscribers get them:
 *   {type: "added", room}      a room joined the list (at its end)
 *   {type: "removed", room}    a room left the list
 *   {type: "active", previous} another room (or the same again, or none) is on screen
 *   {type: "room", room, parts} a room changed; `parts` (a Set of PARTS) says what
 *   {type: "limits"}           the gateway's limits came
 *   {type: "search"}           the search (`search`, js/search.js) changed
 *   {type: "inbox"}            the user's rooms (`inbox`) changed
 *   {type: "me"}               who the user is (`me`) changed
 */
export class Store {
  constructor() {
    /** name → room, in the order they were added (a Map keeps it). */
    this.rooms = new Map();
    /** The room on screen, or null. */
    this.active = null;
    /** The gateway's limits (js/limits.js): the last `welcome`'s, or the page's own until one came. */
    this.limits = { ...FIRST_LIMITS };
    /** The search of the room on screen (js/search.js); one per page. */
    this.search = new Search();
    /** The user's rooms and DMs, on every tab and device (js/inbox.js). */
    this.inbox = new Inbox();
    /** Who the user is, from the last `welcome`: user_id (null from a gateway before people) and token name. */
    this.me = { user_id: null, name: null };
    this.listeners = new Set();
  }

  /** Calls `listener(change)` after every change; returns what stops it. */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change) {
    for (const listener of this.listeners) listener(change);
  }

  /** The room called `name`, or null. */
  get(name) {
    return this.rooms.get(name) ?? null;
  }

  get size() {
    return this.rooms.size;
  }

  /** Adds `room` at the end of the list; false (and nothing changes) if one of its name is there. */
  addRoom(room) {
    if (this.rooms.has(room.name)) return false;
    this.rooms.set(room.name, room);
    this.emit({ type: "added", room });
    return true;
  }

  /**
   * Drops the room called `name`. When it was on screen, the room after it
   * takes its place, else the one before, else none. Returns the room, or
   * null if there was none of that name.
   */
  removeRoom(name) {
    const room = this.rooms.get(name);
    if (!room) return null;
    const order = [...this.rooms.keys()];
    const at = order.indexOf(name);
    this.rooms.delete(name);
    this.emit({ type: "removed", room });
    if (this.active === room) {
      const next = order[at + 1] ?? order[at - 1];
      this.setActive(next != null ? this.rooms.get(next) : null);
    }
    return room;
  }

  /** Puts `room` (or nothing) on screen; a room on screen has been read. */
  setActive(room) {
    const previous = this.active;
    this.active = room ?? null;
    if (this.active) this.active.unread = 0;
    this.emit({ type: "active", previous });
  }

  /** The reader came back to the tab: the room on screen has been read. */
  markRead() {
    if (!this.active) return;
    this.active.unread = 0;
    this.changed(this.active, "item");
  }

  /** The limits a `welcome` sent, over the ones held (malformed ones are ignored). */
  setLimits(sent) {
    this.limits = readLimits(this.limits, sent);
    this.emit({ type: "limits" });
  }

  /** Who the user is, from a `welcome` (anything but a string is unknown). */
  setMe(userId, name) {
    this.me = { user_id: typeof userId === "string" ? userId : null, name: typeof name === "string" ? name : null };
    this.emit({ type: "me" });
  }

  /** The user's rooms (`inbox`) changed: the sidebar and the title are drawn again. */
  inboxChanged() {
    this.emit({ type: "inbox" });
  }

  /** `room` changed; `parts` (of PARTS) say what to redraw, all of them when none are named. */
  changed(room, ...parts) {
    this.emit({ type: "room", room, parts: new Set(parts.length > 0 ? parts : PARTS) });
  }

  /** The search changed: its box, status and hits are drawn again. */
  searchChanged() {
    this.emit({ type: "search" });
  }

  /** What a reload joins again: [{room, username}] in list order. */
  saved() {
    return [...this.rooms.values()].map((r) => ({ room: r.name, username: r.username }));
  }
}
