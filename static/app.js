// The chat page: wires the connection, the rooms and the DOM together.
// Protocol: docs/protocol.md. Modules: js/connection.js (WebSocket with
// reconnect), js/room.js (one room's state and message list), js/screen.js
// (draws state into the page's fixed elements), js/view.js (DOM builders,
// text only), js/format.js (pure helpers), js/members.js (presence merge and
// notice wording, pure), js/storage.js (what survives a reload).
//
// Hooks for tests and people reading the DOM (stable; change them with the tests):
//   #join-form  #name  #room  #join-btn  #join-hint   join a room under a name
//   #room-list > .room-item[data-room=NAME][data-status=offline|joining|joined][data-unread=N]
//        .room-open (switch to it)  .unread (count, empty at 0)  .room-leave (×)
//   #room-title  #room-sub  #leave-btn                 the room on screen
//   #messages .message-list[data-room=NAME]            the room on screen only
//        .msg[data-id][data-seq][data-member-id]  (.own = this tab's, .cont = same author)
//           .author  .time  .text
//        .msg.pending[data-cid]                       sent, not echoed yet (no data-id)
//        .notice.join / .notice.leave (both: a frame with joins and leaves)
//                                                     join/leave notices, one per presence frame; no data-id
//        .notice.error / .notice.info                 local notes, no data-id
//        .notice.gap ("Earlier messages may be missing")  a resume that could not recover all
//        .day                                         date separator
//   #members li.member[data-member-id][data-username] (.own)   at most MAX_SHOWN (js/members.js)
//   #member-count (the room's true size)   #members-panel[data-stale=true|false]
//   #members-more ("and N more")   #members-more-btn ("Show more": fetches the next page)
//   #typing (text "bob is typing…", empty when nobody; class .active)
//   #conn-state[data-state=connecting|connected|reconnecting|disconnected|elsewhere][data-gateway]
//        [data-connects=N] (welcomes so far: grows by one per (re)connection)
//        #conn-text  #retry-btn  (elsewhere: the session was taken by another connection, 4009;
//        #retry-btn takes it back)
//   #composer (textarea)  #send-btn  #byte-count  #composer-hint
//   #banners > .error-banner  .error-title  .error-detail  .dismiss
//   body.no-rooms (nothing joined yet: the welcome card holds #join-form)
//
// Query ?ws=ws://host:port/ws points the page at another gateway (development);
// a comma-separated list names several, tried in turn after a failure or a drop.
// Query ?token=<JWT> is passed on to /ws, for gateways run with JWT_SECRET.

import { Connection } from "./js/connection.js";
import { gatewayUrls, pageToken } from "./js/endpoints.js";
import { byteLength, checkName, checkRoom, describeError } from "./js/format.js";
import { Room } from "./js/room.js";
import * as store from "./js/storage.js";
import * as screen from "./js/screen.js";
import { roomItemEl } from "./js/view.js";

const { ui } = screen;

const TYPING_EVERY_MS = 2_000;
/** A stale member list is fetched again at most this often per room. */
const MEMBERS_REFETCH_MS = 2_000;
/** Waits before joining again after a refusal that named no `retry_after_ms`. */
const JOIN_RETRY_MS = 2_000;
const NEAR_BOTTOM_PX = 80;

const tab = store.tabId();
let sent = 0;
const newClientId = () => `${tab}-${Date.now().toString(36)}-${(sent++).toString(36)}`;
const isOwnClientId = (cid) => typeof cid === "string" && cid.startsWith(`${tab}-`);

/** Joined rooms in the order they were added. */
const rooms = new Map();
const roomItems = new Map();
let active = null;
let limits = { max_text_bytes: 4096, max_username_chars: 32, max_rooms: 32 };

// Every attempt carries the tab's session, so a reconnect is the same member:
// the room sees no leave and no join (docs/protocol.md, "Sessions and resuming").
const token = pageToken(location);
const conn = new Connection(gatewayUrls(location), () => ({ token, session: store.loadSession() }), {
  onWelcome,
  onFrame,
  onDown,
  onStatus: screen.renderConn,
});

// ---- connection events ----------------------------------------------------

function onWelcome(frame) {
  if (frame.limits) limits = { ...limits, ...frame.limits };
  store.saveSession(frame.session);
  for (const room of rooms.values()) sendJoin(room);
}

function onDown() {
  for (const room of rooms.values()) {
    room.goOffline();
    renderRoomItem(room);
  }
  renderActive();
}

function onFrame(frame) {
  const room = frame.room != null ? rooms.get(frame.room) : null;
  switch (frame.type) {
    case "joined":
      if (!room) conn.send({ type: "leave", room: frame.room }); // left while joining
      else onJoined(room, frame);
      break;
    case "message":
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
        if (room === active) renderTyping();
      }
      break;
    case "left":
      break; // the room was dropped from the page when leave was sent
    case "error":
      onError(frame, room);
      break;
    default:
      console.debug("frame of unknown type", frame);
  }
}

function onJoined(room, frame) {
  const firstTime = !room.joinedOnce;
  room.joinRefusals = 0;
  const fresh = withScroll(room, () => room.applyJoined(frame) + room.releaseEarly());
  // The first history of a page load is context, not news; after a
  // reconnect, messages missed meanwhile count as unread.
  if (!firstTime && !isSeen(room)) room.unread += fresh;
  // Sends not echoed yet (typed offline, or lost with the old connection) go
  // again with the same client_id, which the room-service stores once; those
  // whose echo was in the history were settled by it above.
  for (const f of room.pending.frames(room.name)) conn.send(f);
  renderRoomItem(room);
  if (room === active) renderActive();
  refetchMembersIfStale(room);
}

function onEvent(room, frame) {
  const r = withScroll(room, () => room.addEvent(frame));
  if (r.message && !r.own && !isSeen(room)) room.unread += 1;
  renderRoomItem(room);
  if (room === active) renderTyping();
}

function onPresence(room, frame) {
  withScroll(room, () => room.applyPresence(frame));
  if (room === active) {
    screen.renderMembers(active);
    renderTyping();
    screen.renderHeader(active);
  }
  refetchMembersIfStale(room);
}

function onMembers(room, frame) {
  room.applyMembers(frame);
  if (room === active) {
    screen.renderMembers(active);
    screen.renderHeader(active);
  }
  refetchMembersIfStale(room); // presence may have made it stale again meanwhile
}

/**
 * A partial presence frame left the held member list possibly stale: fetch
 * the first page again, if the list is on screen, at most every
 * MEMBERS_REFETCH_MS per room (a join storm sends partial frames 5 times a
 * second). A stale room not on screen is fetched when it is shown.
 */
function refetchMembersIfStale(room) {
  if (!room.membersStale || room !== active || !screen.membersVisible()) return;
  const wait = room.lastMembersFetch + MEMBERS_REFETCH_MS - Date.now();
  if (wait > 0 || !room.canAskMembers()) {
    if (!room.membersTimer) {
      room.membersTimer = setTimeout(() => {
        room.membersTimer = null;
        if (rooms.get(room.name) === room) refetchMembersIfStale(room);
      }, Math.max(wait, 250));
    }
    return;
  }
  if (conn.send(room.askMembers("first"))) screen.renderMembers(active);
  else room.membersRefused(); // not connected: the rejoin sends a fresh first page anyway
}

function showMoreMembers() {
  const room = active;
  if (!room?.membersNext || !room.canAskMembers()) return;
  if (conn.send(room.askMembers("more"))) screen.renderMembers(room);
  else room.membersRefused();
}

const SEND_ERRORS = new Set(["empty_text", "text_too_long", "bad_client_id", "unavailable", "internal"]);

function onError(frame, room) {
  const { text, detail } = describeError(frame, limits);
  if (!room) {
    if (frame.room && frame.code === "not_joined") {
      console.debug("refused for a room already left", frame); // a frame crossed our leave
      return;
    }
    screen.showBanner(text, detail);
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
      setTimeout(() => room.status === "offline" && rooms.get(room.name) === room && sendJoin(room), after * (1 + Math.random() / 2));
      if (room.joinRefusals > 1) {
        renderRoomItem(room);
        return;
      }
    } else if (frame.code === "already_joined") {
      conn.send({ type: "leave", room: room.name }); // the gateway remembers a join this page lost: start over
      sendJoin(room);
      return;
    } else {
      removeRoom(room.name, { sendLeave: false });
      screen.showBanner(`Couldn't join #${room.name}: ${text}`, detail);
      return;
    }
  } else if (frame.code !== "not_joined" && room.pending.size === 0 && room.membersRefused()) {
    // With no message waiting, the refusal was of the `members` request; the
    // stale mark it restored brings a retry. Nothing the reader must act on.
    console.debug("members request refused", frame);
    if (room === active) screen.renderMembers(room);
    refetchMembersIfStale(room);
    return;
  } else if (frame.code === "not_joined") {
    room.goOffline();
    room.note(text, "error", detail);
    sendJoin(room);
  } else {
    const back = SEND_ERRORS.has(frame.code) ? room.pending.dropOldest() : null;
    let note = back != null ? `Message not sent: ${text}` : text;
    if (back != null && room === active && !ui.composer.value) {
      ui.composer.value = back;
      autosize();
      note += " Your text is back in the message box.";
    }
    room.note(note, "error", detail);
  }
  if (room !== active) screen.showBanner(`#${room.name}: ${text}`, detail);
  renderRoomItem(room);
  if (room === active) renderActive();
  scrollToBottomIf(room, true);
}

// ---- rooms ------------------------------------------------------------------

function sendJoin(room) {
  if (conn.send({ type: "join", room: room.name, username: room.username, ...room.resumeFrom() })) room.status = "joining";
  renderRoomItem(room);
}

function addRoom(name, username) {
  const room = new Room(name, username, isOwnClientId);
  rooms.set(name, room);
  const item = roomItemEl(name, (n) => setActive(rooms.get(n)), (n) => removeRoom(n));
  roomItems.set(name, item);
  ui.roomList.append(item);
  renderRoomItem(room);
  return room;
}

function removeRoom(name, { sendLeave = true } = {}) {
  const room = rooms.get(name);
  if (!room) return;
  if (sendLeave && room.status !== "offline") conn.send({ type: "leave", room: name });
  const order = [...rooms.keys()];
  const at = order.indexOf(name);
  rooms.delete(name);
  roomItems.get(name)?.remove();
  roomItems.delete(name);
  if (active === room) {
    active = null;
    const next = order[at + 1] ?? order[at - 1];
    setActive(next != null ? rooms.get(next) : null);
  }
  persistRooms();
  screen.layout(rooms.size, store.loadName());
}

function setActive(room) {
  if (active && active !== room) {
    active.scrollTop = ui.messages.scrollTop;
    active.draft = ui.composer.value;
  }
  active = room ?? null;
  store.saveActive(active?.name ?? null);
  document.body.classList.remove("sidebar-open", "members-open");
  if (!active) {
    ui.messages.replaceChildren();
    renderActive();
    return;
  }
  ui.messages.replaceChildren(active.list);
  ui.messages.scrollTop = active.scrollTop ?? ui.messages.scrollHeight;
  ui.jumpBtn.hidden = true;
  refetchMembersIfStale(active);
  ui.composer.value = active.draft;
  ui.composer.placeholder = `Message #${active.name}`;
  autosize();
  active.unread = 0;
  for (const r of rooms.values()) renderRoomItem(r);
  renderActive();
  if (matchMedia("(pointer: fine)").matches) ui.composer.focus();
}

function persistRooms() {
  store.saveRooms([...rooms.values()].map((r) => ({ room: r.name, username: r.username })));
}

/** Seen means on screen: the active room of a visible tab. */
const isSeen = (room) => room === active && !document.hidden;

// ---- rendering -----------------------------------------------------------------

function withScroll(room, change) {
  if (room !== active) return change();
  const box = ui.messages;
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
  const result = change();
  if (atBottom || result?.own) box.scrollTop = box.scrollHeight;
  else if (result?.added || result > 0) ui.jumpBtn.hidden = false;
  return result;
}

function scrollToBottomIf(room, cond) {
  if (room === active && cond) ui.messages.scrollTop = ui.messages.scrollHeight;
}

function renderRoomItem(room) {
  const item = roomItems.get(room.name);
  if (item) screen.renderRoomItem(item, room, room === active);
  screen.renderTitle([...rooms.values()], active);
}

function renderActive() {
  screen.renderHeader(active);
  screen.renderMembers(active);
  renderTyping();
  screen.layout(rooms.size, store.loadName());
}

function renderTyping() {
  screen.renderTyping(active);
}

// ---- user actions ----------------------------------------------------------------

function join(e) {
  e.preventDefault();
  ui.joinHint.textContent = "";
  const n = checkName(ui.name.value);
  if (n.error) return hint(ui.name, n.error);
  const r = checkRoom(ui.room.value || (rooms.size === 0 ? "general" : ""));
  if (r.error) return hint(ui.room, r.error);
  store.saveName(n.name);
  ui.name.value = n.name;
  ui.room.value = "";
  let room = rooms.get(r.room);
  if (!room) {
    if (rooms.size >= limits.max_rooms) return hint(ui.room, `You can be in at most ${limits.max_rooms} rooms; leave one first.`);
    room = addRoom(r.room, n.name);
    persistRooms();
    if (conn.connected) sendJoin(room);
  }
  setActive(room);
}

function hint(input, text) {
  ui.joinHint.textContent = text;
  input.focus();
}

function send() {
  if (!active) return;
  const text = ui.composer.value;
  if (!text.trim()) return;
  const bytes = byteLength(text);
  if (bytes > limits.max_text_bytes) {
    ui.composerHint.textContent = `That is ${bytes.toLocaleString()} bytes; the limit is ${limits.max_text_bytes.toLocaleString()}. Shorten it or split it up.`;
    return;
  }
  const room = active;
  if (room.pending.full) {
    ui.composerHint.textContent = `${room.pending.size} messages are still waiting to be sent; this one waits in the box until they are.`;
    return;
  }
  ui.composerHint.textContent = "";
  const cid = newClientId();
  withScroll(room, () => {
    room.addPending(cid, text);
    return { own: true };
  });
  ui.composer.value = "";
  autosize();
  room.lastTypingSent = 0;
  if (room.status === "joined") conn.send({ type: "send", room: room.name, text, client_id: cid });
}

function onComposerInput() {
  autosize();
  const bytes = byteLength(ui.composer.value);
  const max = limits.max_text_bytes;
  ui.byteCount.textContent = bytes > max * 0.8 ? `${bytes.toLocaleString()} / ${max.toLocaleString()}` : "";
  ui.byteCount.classList.toggle("over", bytes > max);
  if (bytes <= max) ui.composerHint.textContent = "";
  const now = Date.now();
  if (active?.status === "joined" && ui.composer.value.trim() && now - active.lastTypingSent >= TYPING_EVERY_MS) {
    if (conn.send({ type: "typing", room: active.name })) active.lastTypingSent = now;
  }
}

function autosize() {
  ui.composer.style.height = "auto";
  ui.composer.style.height = `${Math.min(ui.composer.scrollHeight, 160)}px`;
}

// ---- start --------------------------------------------------------------------------

ui.joinForm.addEventListener("submit", join);
ui.composerForm.addEventListener("submit", (e) => {
  e.preventDefault();
  send();
});
ui.composer.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    send();
  }
});
ui.composer.addEventListener("input", onComposerInput);
ui.leaveBtn.addEventListener("click", () => active && removeRoom(active.name));
ui.retryBtn.addEventListener("click", () => conn.retry());
ui.jumpBtn.addEventListener("click", () => {
  ui.messages.scrollTop = ui.messages.scrollHeight;
});
ui.messages.addEventListener("scroll", () => {
  const box = ui.messages;
  if (box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX) ui.jumpBtn.hidden = true;
});
ui.sidebarToggle.addEventListener("click", () => document.body.classList.toggle("sidebar-open"));
ui.membersToggle.addEventListener("click", () => {
  document.body.classList.toggle("members-open");
  if (active) refetchMembersIfStale(active);
});
ui.membersMoreBtn.addEventListener("click", showMoreMembers);
ui.scrim.addEventListener("click", () => document.body.classList.remove("sidebar-open", "members-open"));
document.addEventListener("keydown", (e) => {
  if (e.key === "Escape") document.body.classList.remove("sidebar-open", "members-open");
});
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && active) {
    active.unread = 0;
    renderRoomItem(active);
  }
});
window.addEventListener("online", () => conn.wake());
setInterval(renderTyping, 500);

ui.name.value = store.loadName();
for (const { room, username } of store.loadRooms()) {
  if (!rooms.has(room) && checkRoom(room).room) addRoom(room, username);
}
const linked = checkRoom(decodeURIComponent(location.hash.slice(1))).room;
if (linked && !rooms.has(linked) && ui.name.value) {
  addRoom(linked, ui.name.value);
  persistRooms();
}
setActive(rooms.get(linked) ?? rooms.get(store.loadActive()) ?? rooms.values().next().value ?? null);
if (!active) {
  ui.room.value = linked ?? "general";
  (ui.name.value ? ui.room : ui.name).focus();
}
conn.start();
