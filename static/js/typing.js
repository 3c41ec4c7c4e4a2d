// Who is typing in a room, as `typing` frames tell it (docs/protocol.md).
// A frame says someone is typing now; they stop being shown TYPING_SHOW_MS
// after their last one, or at once when their message or their leave
// comes. `nextExpiry` says when the line next changes by itself, so the
// page redraws it then (a timer, js/render.js) instead of polling. Pure:
// the time is passed in.

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
