// The page's half of the protocol (docs/protocol.md): what each frame from
// the gateway does to the rooms in the store, and the frames the page sends
// (join, leave, send, typing, members; history and search through
// js/history.js; the user's rooms, DMs and read markers through
// js/people.js). It decides; the store holds the
// state and tells the views what changed (js/store.js), and each room's
// state (js/roomstate.js) decides what its message list shows. What it
// needs of the screen comes in as `view` (js/render.js `follow`): whether a
// room is being read, keeping the messages at the bottom, banners, giving
// refused text back to the message box, a new room's message list. No DOM
// here, so it runs under Node's test runner (test/protocol.test.js).

import { CHANGE_ERRORS, createChanges } from "./changes.js";
import { describeError } from "./format.js";
import { MODERATION_ERRORS, moderateFrame } from "./moderation.js";
import { createHistory } from "./history.js";
import { createPeople } from "./people.js";
import { sendFrame } from "./pending.js";
import { RoomState } from "./roomstate.js";
import { TypingPacer } from "./typing.js";

/** A stale member list is fetched again at most this often per room. */
const MEMBERS_REFETCH_MS = 2_000;
/** Waits before joining again after a refusal that named no `retry_after_ms`. */
const JOIN_RETRY_MS = 2_000;
/** Refusals that mean the oldest waiting message was not stored. */
const SEND_ERRORS = new Set(["empty_text", "text_too_long", "bad_client_id", "bad_attachment", "unavailable", "internal"]);

/**
 * @param {object} deps
 * @param {import("./store.js").Store} deps.store
 * @param {(frame: object) => boolean} deps.send sends a frame; false when not connected
 * @param {{next(): string, isOwn(cid): boolean}} deps.ids client ids (js/clientid.js)
 * @param {object} deps.view what js/render.js `follow` returns
 * @param {() => string} [deps.name] the name to join a room under that the person did not join here (js/people.js)
 * @param {(n: object) => void} [deps.notify] an inbox update worth a notification (js/notify.js)
 * @param {object} [deps.clock] timers for the read markers (js/people.js; tests drive their own)
 */
export function createProtocol({ store, send, ids, view, name, notify, clock }) {
  /** When this tab says it is typing, per room. */
  const pace = new TypingPacer();
  /** Scroll-back, search and jumps to a hit (js/history.js). */
  const history = createHistory({ store, send, view });
  /** The user's rooms, DMs and read markers (js/people.js). */
  const people = createPeople({ store, send, view, enter, name, notify, clock });
  /** Replies, edits, deletes and reactions (js/changes.js). */
  const changes = createChanges({ store, send });

  // ---- connection events ------------------------------------------------

  function onWelcome(frame) {
    store.setLimits(frame.limits);
    people.onWelcome(frame);
    // A room a moderator removed this tab from waits for "Join again".
    for (const room of store.rooms.values()) if (!room.removed) sendJoin(room);
  }

  function onDown() {
    for (const room of store.rooms.values()) {
      room.goOffline();
      store.changed(room);
    }
    history.onDown();
    people.onDown();
  }

  function onFrame(frame) {
    // A member object leaves `user_id` out when it is the member id (a user
    // without a token is one browser session): fill it in once, here.
    for (const m of [...(frame.members ?? []), ...(frame.joins ?? [])]) {
      if (m && m.user_id == null && typeof m.member_id === "string") m.user_id = m.member_id;
    }
    const room = frame.room != null ? store.get(frame.room) : null;
    switch (frame.type) {
      case "joined":
        if (!room) send({ type: "leave", room: frame.room }); // left while joining
        else onJoined(room, frame);
        break;
      case "message":
      case "change": // an edit, delete or reaction: in the room's order, like a message
      case "moderation": // a moderator's action: a notice, in the room's order too
        if (room?.status === "joined") onEvent(room, frame);
        else if (room?.status === "joining") room.holdEarly(frame);
        break;
      case "presence":
        if (room?.status === "joined") onPresence(room, frame);
        else if (room?.status === "joining") room.holdEarly(frame);
        break;
      case "members":
        if (room?.status === "joined") onMembers(room, frame);
        break;
      case "typing":
        if (room) {
          room.sawTyping(frame);
          store.changed(room, "typing");
        }
        break;
      case "history":
        if (room?.status === "joined") history.onHistory(room, frame);
        break;
      case "search_results":
        history.onSearchResults(frame);
        break;
      case "rooms":
        people.onRooms(frame);
        break;
      case "inbox":
        people.onInbox(frame);
        break;
      case "dm":
        people.onDm(frame);
        break;
      case "left":
        // Asked for: the room was dropped from the page when leave was sent. Unasked: a moderator's doing.
        if (room && (frame.reason === "kicked" || frame.reason === "banned")) onRemoved(room, frame);
        break;
      case "error":
        onError(frame, room);
        break;
      default:
        console.debug("frame of unknown type", frame);
    }
  }

  function onJoined(room, frame) {
    room.joinRefusals = 0;
    // The first history of a page load is context, not news; after a
    // reconnect, messages missed meanwhile count as unread (js/roomstate.js).
    const early = [...room.early]; // live messages held while joining: applied (and seen) with the history
    view.withScroll(room, () => room.applyJoined(frame, { seen: view.isSeen(room) }));
    people.joined(room, frame);
    people.sawMessages(room, [...(frame.history ?? []), ...early], view.isSeen(room));
    // Sends not echoed yet (typed offline, or lost with the old connection) go
    // again with the same client_id, which the room-service stores once; those
    // whose echo was in the history were settled by it above.
    for (const f of room.pending.frames(room.name)) send(f);
    store.changed(room);
    refetchMembersIfStale(room);
    // History shorter than the screen: scroll-back goes on by itself.
    if (view.nearTop(room)) history.loadOlder(room);
  }

  function onEvent(room, frame) {
    view.withScroll(room, () => room.applyLive(frame, { seen: view.isSeen(room) }));
    people.sawMessages(room, [frame], view.isSeen(room));
    // A moderator's action may be about the reader: their role (the member menu), a mute (the composer).
    if (frame.type === "moderation") store.changed(room);
    else store.changed(room, "item", "typing");
  }

  function onPresence(room, frame) {
    view.withScroll(room, () => room.applyPresence(frame));
    store.changed(room, "members", "typing", "header");
    refetchMembersIfStale(room);
  }

  /** A moderator removed this tab from `room` (`left` with reason kicked or banned): it stays listed, out. */
  function onRemoved(room, frame) {
    room.goOffline();
    room.removed = { reason: frame.reason, by: frame.by?.name ?? "", message: frame.message ?? "" };
    room.note(frame.reason === "banned" ? "You were banned from this room" : "You were removed from this room", "error", frame.message ?? "");
    if (room !== store.active) view.showBanner(`You were ${frame.reason === "banned" ? "banned" : "removed"} from #${room.name}`, frame.message ?? "");
    store.changed(room);
  }

  /** "Join again" after a moderator removed this tab from `room`. */
  function rejoin(room) {
    if (!room?.removed || store.get(room.name) !== room) return;
    room.removed = null;
    sendJoin(room);
    store.changed(room, "compose");
  }

  /**
   * A moderator's action from the member list (js/moderation.js
   * MODERATION_CHOICES) on `member` of `room`, agreed to already. The
   * `moderation` event that everyone gets says it was done.
   */
  function moderate(room, choice, member) {
    if (!room?.moderator || typeof member?.user_id !== "string") return false;
    if (room.status === "joined" && send(moderateFrame(room.name, choice, member.user_id))) return true;
    room.note("Not connected: that was not done. Try again once the page is back online.", "error");
    store.changed(room, "item");
    return false;
  }

  function onMembers(room, frame) {
    room.applyMembers(frame);
    store.changed(room, "members", "header");
    refetchMembersIfStale(room); // presence may have made it stale again meanwhile
  }

  /**
   * A partial presence frame left the held member list possibly stale: fetch
   * the first page again, if the list is on screen, at most every
   * MEMBERS_REFETCH_MS per room (a join storm sends partial frames 5 times a
   * second). A stale room not on screen is fetched when it is shown.
   */
  function refetchMembersIfStale(room) {
    if (!room.membersStale || room !== store.active || !view.membersVisible()) return;
    const wait = room.lastMembersFetch + MEMBERS_REFETCH_MS - Date.now();
    if (wait > 0 || !room.canAskMembers()) {
      if (!room.membersTimer) {
        room.membersTimer = setTimeout(() => {
          room.membersTimer = null;
          if (store.get(room.name) === room) refetchMembersIfStale(room);
        }, Math.max(wait, 250));
      }
      return;
    }
    if (send(room.askMembers("first"))) store.changed(room, "members");
    else room.membersRefused(); // not connected: the rejoin sends a fresh first page anyway
  }

  function showMoreMembers() {
    const room = store.active;
    if (!room?.membersNext || !room.canAskMembers()) return;
    if (send(room.askMembers("more"))) store.changed(room, "members");
    else room.membersRefused();
  }

  function onError(frame, room) {
    if (frame.code === "bad_read") {
      people.readRefused(frame);
      return;
    }
    const { text, detail } = describeError(frame, store.limits);
    if (!room) {
      if (frame.room && frame.code === "not_joined") {
        console.debug("refused for a room already left", frame); // a frame crossed our leave
        return;
      }
      view.showBanner(text, detail);
      return;
    }
    if (room.status === "joined" && history.refused(room, frame, text)) return;
    if (room.status === "joined" && (CHANGE_ERRORS.has(frame.code) || MODERATION_ERRORS.has(frame.code))) {
      // A reply whose original went (deleted meanwhile) comes back to the box, as does a send
      // refused because the reader is muted; else an edit, delete, reaction or moderator's
      // action was refused: nothing was shown for it, the note says why.
      if (frame.code === "muted" && Number.isFinite(frame.until)) room.mutedUntil = frame.until;
      const back =
        frame.code === "bad_message"
          ? room.takeBackOldest({ replyOnly: true })
          : frame.code === "muted"
            ? room.takeBackOldest()
            : null;
      let note = back != null ? `Message not sent: ${text}` : text;
      if (back != null && view.giveBack(room, back)) note += " Your text is back in the message box.";
      room.note(note, "error", detail);
      if (room !== store.active) view.showBanner(`#${room.name}: ${text}`, detail);
      store.changed(room);
      view.toBottom(room);
      return;
    }
    if (room.status === "joining") {
      if (frame.code === "unavailable" || frame.code === "internal") {
        room.status = "offline";
        // A busy room-service says when to come back (retry_after_ms); wait
        // that long plus up to half again, so refused tabs don't return at once.
        const after = Number.isFinite(frame.retry_after_ms) ? frame.retry_after_ms : JOIN_RETRY_MS;
        // One note per run of refusals: a join storm may refuse a tab a few times.
        if (!room.joinRefusals) room.note(`Couldn't join #${room.name}: ${text}`, "error", detail);
        room.joinRefusals += 1;
        setTimeout(
          () => room.status === "offline" && store.get(room.name) === room && sendJoin(room),
          after * (1 + Math.random() / 2),
        );
        if (room.joinRefusals > 1) {
          store.changed(room, "item");
          return;
        }
      } else if (frame.code === "already_joined") {
        send({ type: "leave", room: room.name }); // the gateway remembers a join this page lost: start over
        sendJoin(room);
        return;
      } else {
        removeRoom(room.name, { sendLeave: false });
        view.showBanner(`Couldn't join #${room.name}: ${text}`, detail);
        return;
      }
    } else if (frame.code !== "not_joined" && room.pending.size === 0 && room.membersRefused()) {
      // With no message waiting, the refusal was of the `members` request; the
      // stale mark it restored brings a retry. Nothing the reader must act on.
      console.debug("members request refused", frame);
      store.changed(room, "members");
      refetchMembersIfStale(room);
      return;
    } else if (frame.code === "not_joined") {
      room.goOffline();
      room.note(text, "error", detail);
      sendJoin(room);
    } else {
      const back = SEND_ERRORS.has(frame.code) ? room.takeBackOldest() : null;
      let note = back != null ? `Message not sent: ${text}` : text;
      if (back != null && view.giveBack(room, back)) note += " Your text is back in the message box.";
      room.note(note, "error", detail);
    }
    if (room !== store.active) view.showBanner(`#${room.name}: ${text}`, detail);
    store.changed(room);
    view.toBottom(room);
  }

  // ---- rooms --------------------------------------------------------------

  function sendJoin(room) {
    if (send({ type: "join", room: room.name, username: room.username, ...room.resumeFrom() })) room.status = "joining";
    store.changed(room, "item");
  }

  /** A room in the list, not joined yet (it joins with the next `welcome`, or `enter`). */
  function addRoom(name, username) {
    const room = new RoomState(name, username, ids.isOwn, view.messageList(name));
    room.userId = () => store.me.user_id;
    store.addRoom(room);
    return room;
  }

  /** Puts room `name` on screen, joining it under `username` first if the tab is not in it. */
  function enter(name, username) {
    let room = store.get(name);
    if (!room) {
      room = addRoom(name, username);
      sendJoin(room);
    }
    store.setActive(room);
  }

  function removeRoom(name, { sendLeave = true } = {}) {
    const room = store.get(name);
    if (!room) return;
    if (sendLeave && room.status !== "offline") send({ type: "leave", room: name });
    pace.forget(name);
    store.removeRoom(name);
    people.left(name);
  }

  // ---- what the person does -----------------------------------------------

  /**
   * Sends `text` and `attachments` (what the gateway answered their uploads
   * with, js/uploads.js; the frame names their ids) to `room`, as a reply
   * to the message the bar above the composer quotes, if any (the bar then
   * goes): shown at once as waiting, sent now if joined, else after the
   * next join. A send that went starts the typing pace over, as it does at
   * the gateway: the next keystroke is told at once.
   */
  function say(room, text, attachments = []) {
    const cid = ids.next();
    const reply = room.replyingTo ?? null;
    room.replyingTo = null;
    view.withScroll(room, () => {
      room.addPending(cid, text, attachments, reply);
      return { own: true };
    });
    if (reply) store.changed(room, "compose");
    if (room.status === "joined" && send(sendFrame(room.name, text, cid, attachments, reply?.id))) pace.sent(room.name);
  }

  /**
   * The person typed in the message box of the room on screen: the room
   * hears so, at the pace the gateway passes (js/typing.js). A notice
   * held back for that goes only if they are still at it: the same room
   * on screen, joined, with text in the box.
   */
  function typed() {
    const room = store.active;
    const atIt = () => room != null && store.active === room && room.status === "joined" && view.draft().trim() !== "";
    if (!atIt()) return;
    pace.typed(room.name, () => atIt() && send({ type: "typing", room: room.name }));
  }

  // A stale member list is fetched when its room comes on screen.
  store.subscribe((change) => {
    if (change.type === "active" && store.active) {
      refetchMembersIfStale(store.active);
      people.scheduleRead();
    }
  });

  const { loadOlder, jumpTo, toLatest, openSearch, searchFor, moreResults, closeSearch } = history;
  const { openDm, open, scheduleRead } = people;
  const { startReply, cancelReply, edit, remove, react, lastEditable } = changes;
  return {
    moderate,
    rejoin,
    startReply,
    cancelReply,
    edit,
    remove,
    react,
    lastEditable,
    onWelcome,
    onDown,
    onFrame,
    addRoom,
    enter,
    removeRoom,
    say,
    typed,
    showMoreMembers,
    refetchMembersIfStale,
    loadOlder,
    jumpTo,
    toLatest,
    openSearch,
    searchFor,
    moreResults,
    closeSearch,
    openDm,
    open,
    /** The tab became visible: the room on screen has been read. */
    readNow: scheduleRead,
  };
}
