// The chat page: wires the connection, the rooms and the DOM together.
// Protocol: docs/protocol.md. Modules: js/connection.js (WebSocket with
// reconnect), js/room.js (one room's state and message list), js/screen.js
// (draws state into the page's fixed elements), js/view.js (DOM builders,
// text only), js/format.js (pure helpers), js/storage.js (what survives a reload).
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
//        .notice[data-id].join / .leave               member joined / left
//        .notice.error / .notice.info                 local notes, no data-id
//        .day                                         date separator
//   #members li.member[data-member-id][data-username] (.own)   #member-count
//   #typing (text "bob is typing…", empty when nobody; class .active)
//   #conn-state[data-state=connecting|connected|reconnecting|disconnected][data-gateway]
//        [data-connects=N] (welcomes so far: grows by one per (re)connection)
//        #conn-text  #retry-btn
//   #composer (textarea)  #send-btn  #byte-count  #composer-hint
//   #banners > .error-banner  .error-title  .error-detail  .dismiss
//   body.no-rooms (nothing joined yet: the welcome card holds #join-form)
//
// Query ?ws=ws://host:port/ws points the page at another gateway (development).

import { Connection } from "./js/connection.js";
import { byteLength, checkName, checkRoom, describeError } from "./js/format.js";
import { Room } from "./js/room.js";
import * as store from "./js/storage.js";
import * as screen from "./js/screen.js";
import { roomItemEl } from "./js/view.js";

const { ui } = screen;

const TYPING_EVERY_MS = 2_000;
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

// Query ?token=<JWT> is passed on to /ws, for gateways run with JWT_SECRET.
function wsUrl() {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const query = token ? `?token=${encodeURIComponent(token)}` : "";
  const override = params.get("ws");
  if (override) return override + query;
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws${query}`;
}

const conn = new Connection(wsUrl(), { onWelcome, onFrame, onDown, onStatus: screen.renderConn });

// ---- connection events ----------------------------------------------------

function onWelcome(frame) {
  if (frame.limits) limits = { ...limits, ...frame.limits };
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
    case "member_joined":
    case "member_left":
      if (room?.status === "joined") onEvent(room, frame);
      else if (room?.status === "joining") room.holdEarly(frame);
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
  const fresh = withScroll(room, () => room.applyJoined(frame) + room.releaseEarly());
  // The first history of a page load is context, not news; after a
  // reconnect, messages missed meanwhile count as unread.
  if (!firstTime && !isSeen(room)) room.unread += fresh;
  for (const [cid, p] of room.pending) {
    conn.send({ type: "send", room: room.name, text: p.text, client_id: cid });
  }
  renderRoomItem(room);
  if (room === active) renderActive();
}

function onEvent(room, frame) {
  const r = withScroll(room, () => room.addEvent(frame, { live: true }));
  if (r.message && !r.own && !isSeen(room)) room.unread += 1;
  renderRoomItem(room);
  if (room === active) {
    screen.renderMembers(active);
    renderTyping();
    screen.renderHeader(active);
  }
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
      room.note(`Couldn't join #${room.name}: ${text}`, "error", detail);
      setTimeout(() => room.status === "offline" && rooms.get(room.name) === room && sendJoin(room), 2000 + Math.random() * 2000);
    } else if (frame.code === "already_joined") {
      conn.send({ type: "leave", room: room.name }); // the gateway remembers a join this page lost: start over
      sendJoin(room);
      return;
    } else {
      removeRoom(room.name, { sendLeave: false });
      screen.showBanner(`Couldn't join #${room.name}: ${text}`, detail);
      return;
    }
  } else if (frame.code === "not_joined") {
    room.goOffline();
    room.note(text, "error", detail);
    sendJoin(room);
  } else {
    const back = SEND_ERRORS.has(frame.code) ? room.dropOldestPending() : null;
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
  if (conn.send({ type: "join", room: room.name, username: room.username })) room.status = "joining";
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
  ui.composerHint.textContent = "";
  const cid = newClientId();
  const room = active;
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
ui.membersToggle.addEventListener("click", () => document.body.classList.toggle("members-open"));
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
window.addEventListener("online", () => conn.retry());
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
