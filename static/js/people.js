// The page's half of the people protocol (docs/protocol.md, issue 17): who
// this user is (`welcome.user_id`/`name`), their rooms and DMs (`rooms`
// snapshots and `inbox` updates into js/inbox.js, held by the store),
// opening a direct conversation (`open_dm` → `dm` → a normal join), and
// read markers (`read`). No DOM, so it runs under Node's test runner
// (test/people.test.js); js/protocol.js hands it the frames and tells it
// what the rooms saw.
//
// Read markers: while a room is on screen in a visible tab, the page tells
// the server the newest seq it holds of it — when the room comes on
// screen, when a message comes in while it is, when the tab becomes
// visible, when a snapshot says the server is behind. At most one `read`
// per READ_EVERY_MS (the first at once, the rest at the end of the
// window, so a busy room sends ~3 a second, under the gateway's read
// bucket), and only when the server's marker is behind: a `read` is never
// sent for a room the gateway did not list as the user's (it would be
// refused `bad_read`), nor to a gateway that sent no rooms at all.

/** At most one `read` frame per this many ms. */
export const READ_EVERY_MS = 300;

const realClock = {
  now: () => Date.now(),
  setTimeout: (f, ms) => setTimeout(f, ms),
  clearTimeout: (t) => clearTimeout(t),
};

/**
 * @param {object} deps
 * @param {import("./store.js").Store} deps.store
 * @param {(frame: object) => boolean} deps.send
 * @param {{isSeen(room): boolean}} deps.view
 * @param {(room: string, username: string) => void} deps.enter joins a room and puts it on screen (js/protocol.js)
 * @param {() => string} deps.name the name to join under when none is known from a token
 * @param {(n: {room, reason, last}) => void} deps.notify an update worth telling about (js/notify.js decides if it shows)
 * @param {object} [deps.clock] now/setTimeout/clearTimeout (tests drive their own)
 */
export function createPeople({ store, send, view, enter, name = () => "", notify = () => {}, clock = realClock }) {
  /** room → the seq the last `read` on this connection told the server. */
  const told = new Map();
  let readTimer = null;
  let lastReadAt = -Infinity;

  function onWelcome(frame) {
    told.clear();
    store.setMe(frame.user_id, frame.name);
  }

  function onDown() {
    told.clear();
    if (readTimer != null) clock.clearTimeout(readTimer);
    readTimer = null;
  }

  function onRooms(frame) {
    store.inbox.applySnapshot(frame.rooms);
    store.inboxChanged();
    scheduleRead();
  }

  function onInbox(frame) {
    const { changed, notify: worth } = store.inbox.applyUpdate(frame);
    if (!changed) return;
    store.inboxChanged();
    if (worth) notify(worth);
    if (frame.room?.room === store.active?.name) scheduleRead();
  }

  /** The reply to our `open_dm`: the conversation is listed and opened (joined first). */
  function onDm(frame) {
    if (typeof frame.room !== "string" || !store.inbox.noteDirect(frame.room, frame.members)) return;
    store.inboxChanged();
    open(frame.room);
  }

  /** Asks for a direct conversation with `users` (user ids, the opener left out). */
  function openDm(users) {
    return send({ type: "open_dm", users });
  }

  /**
   * Puts room `room` on screen, joining it first if this tab is not in it
   * (a room or DM of the user's that another tab or device joined, or a DM
   * opened with them). False when no name to join under is known yet.
   */
  function open(room) {
    const held = store.get(room);
    if (held) {
      store.setActive(held);
      return true;
    }
    const username = store.me.name || name();
    if (!username) return false;
    enter(room, username);
    return true;
  }

  /**
   * `room` showed `events` (a join's history, or one live message): its
   * entry moves on, and when the room is being read (`seen`) its marker too.
   */
  function sawMessages(room, events, seen) {
    let changed = false;
    for (const ev of events ?? []) {
      if (ev?.type === "message" && store.inbox.sawMessage(room.name, ev, { read: seen })) changed = true;
    }
    if (changed) store.inboxChanged();
    if (room === store.active) scheduleRead();
  }

  /** This tab joined `room` (its `joined` frame): a room new to the user is listed, read up to the join. */
  function joined(room, frame) {
    if (store.me.user_id == null) return; // a gateway before people lists nothing
    if (store.inbox.noteJoined(room.name, frame.last_seq, frame.epoch, clock.now())) store.inboxChanged();
  }

  /** The person left `room`: a public room is no longer theirs (a DM stays). */
  function left(room) {
    if (store.inbox.forget(room)) store.inboxChanged();
  }

  /** A `read` the server refused (`bad_read`): nothing to show; the next snapshot sets the marker right. */
  function readRefused(frame) {
    told.delete(frame.room);
    console.debug("read refused", frame);
  }

  /** A `read` for the room on screen, now or at the end of the current window. */
  function scheduleRead() {
    if (readTimer != null) return;
    const wait = lastReadAt + READ_EVERY_MS - clock.now();
    if (wait <= 0) {
      flushRead();
      return;
    }
    readTimer = clock.setTimeout(() => {
      readTimer = null;
      flushRead();
    }, wait);
  }

  function flushRead() {
    const room = store.active;
    if (!room || room.status !== "joined" || room.lastSeq == null || !view.isSeen(room)) return;
    const entry = store.inbox.get(room.name);
    if (!entry) return;
    // The room's history started over and the entry is of the old one: the next snapshot says.
    if (room.epoch && entry.epoch && room.epoch !== entry.epoch) return;
    const seq = room.lastSeq;
    if (store.inbox.markRead(room.name, seq)) store.inboxChanged();
    if (seq <= entry.server_read || seq <= (told.get(room.name) ?? 0)) return;
    if (!send({ type: "read", room: room.name, seq })) return;
    told.set(room.name, seq);
    lastReadAt = clock.now();
  }

  return { onWelcome, onDown, onRooms, onInbox, onDm, openDm, open, joined, sawMessages, left, readRefused, scheduleRead };
}
