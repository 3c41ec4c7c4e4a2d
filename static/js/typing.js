// Typing, both ways (docs/protocol.md, `typing`).
//
// In: who is typing in a room (`Typists`). A frame says someone is typing
// now; they stop being shown TYPING_SHOW_MS after their last one, or at
// once when their message or their leave comes. `nextExpiry` says when the
// line next changes by itself, so the page redraws it then (a timer,
// js/render.js) instead of polling.
//
// Out: when this tab says it is typing (`TypingPacer`), at the pace the
// gateway lets through.
//
// Pure: the time, and for the pacer the timers, are passed in.

/** How long "x is typing…" stays after their last typing frame. */
export const TYPING_SHOW_MS = 5_000;

export class Typists {
  constructor() {
    /** member_id → {username, until}. */
    this.byId = new Map();
  }

  /** `memberId` (called `username`) typed at `now`. */
  saw(memberId, username, now = Date.now()) {
    this.byId.set(memberId, { username, until: now + TYPING_SHOW_MS });
  }

  /** They stopped: their message came, or they left. */
  delete(memberId) {
    this.byId.delete(memberId);
  }

  clear() {
    this.byId.clear();
  }

  /** Names typing at `now`, in the order they started; expired ones are dropped. */
  names(now = Date.now()) {
    const names = [];
    for (const [id, t] of this.byId) {
      if (t.until <= now) this.byId.delete(id);
      else names.push(t.username);
    }
    return names;
  }

  /** When the first shown name runs out, or null when nobody is typing. */
  nextExpiry() {
    let first = null;
    for (const t of this.byId.values()) if (first == null || t.until < first) first = t.until;
    return first;
  }
}

/**
 * How often this tab says it is typing in a room. The gateway passes one
 * `typing` frame per connection and room every 2 s (TYPING_EVERY in
 * gateway/src/session/mod.rs) and drops the rest; the quarter second more
 * allows for two frames taking unequal time to reach it, which would
 * otherwise bring them closer than 2 s there.
 */
export const TYPING_EVERY_MS = 2_250;

/**
 * When this tab tells a room it is typing. Notices go at least `every`
 * apart, counted from the last one that went, as the gateway counts them.
 * A send to the room starts that over (`sent`), as an accepted send does
 * at the gateway (docs/protocol.md, `typing`): the message ends this tab's
 * typing line in others' views, so the first keystroke after it says so
 * at once instead of waiting out the rest of the 2.25 s. The notice goes
 * out after the send on the same connection, so the gateway has always
 * started over by the time it comes. A keystroke during a wait is not
 * forgotten: one notice goes when the wait is over, so someone who keeps
 * typing is still shown typing. `notify` sends it, if the person is still
 * at it by then, and returns whether it went.
 */
export class TypingPacer {
  constructor({
    every = TYPING_EVERY_MS,
    now = Date.now,
    // Wrapped: a browser's setTimeout refuses to be called as a method of another object.
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (timer) => clearTimeout(timer),
  } = {}) {
    this.every = every;
    this.now = now;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    /** room → {last, timer}: when its last notice went, and the notice waiting for the wait to end. */
    this.rooms = new Map();
  }

  /** Someone typed in `room`: `notify()` now if the wait is over, else once when it is. */
  typed(room, notify) {
    let r = this.rooms.get(room);
    if (!r) this.rooms.set(room, (r = { last: -Infinity, timer: null }));
    const wait = r.last + this.every - this.now();
    if (wait > 0) {
      r.timer ??= this.setTimer(() => {
        r.timer = null;
        this.typed(room, notify);
      }, wait);
      return;
    }
    this.clearTimer(r.timer);
    r.timer = null;
    if (notify()) r.last = this.now();
  }

  /**
   * A message to `room` went out: the next keystroke there is told at once.
   * A notice held back for the wait is dropped (its text was just sent).
   */
  sent(room) {
    const r = this.rooms.get(room);
    if (!r) return;
    this.clearTimer(r.timer);
    r.timer = null;
    r.last = -Infinity;
  }

  /** The tab left `room`: nothing more goes to it. */
  forget(room) {
    const r = this.rooms.get(room);
    if (r) this.clearTimer(r.timer);
    this.rooms.delete(room);
  }
}
