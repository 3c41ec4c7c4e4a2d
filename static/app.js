// The chat page: wires the connection, the rooms and the DOM together.
// Protocol: docs/protocol.md. Modules: js/connection.js (WebSocket with
// reconnect), js/room.js (one room's state and message list), js/view.js (DOM
// builders, text only), js/format.js (pure helpers), js/storage.js (reloads).
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
import { byteLength, checkName, checkRoom, describeError, typingText } from "./js/format.js";
import { Room } from "./js/room.js";
import * as store from "./js/storage.js";
import { bannerEl, roomItemEl } from "./js/view.js";

const $ = (id) => document.getElementById(id);
const ui = Object.fromEntries(
  [
    "join-form", "name", "room", "join-btn", "join-hint", "join-slot-welcome", "join-slot-side",
    "room-list", "room-title", "room-sub", "leave-btn", "messages", "jump-btn", "members",
    "member-count", "typing", "conn-state", "conn-text", "retry-btn", "composer-form", "composer",
    "send-btn", "byte-count", "composer-hint", "banners", "me-name", "sidebar-toggle", "members-toggle",
    "total-unread", "scrim",
  ].map((id) => [id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), $(id)]),
);

const TYPING_EVERY_MS = 2_000;
const NEAR_BOTTOM_PX = 80;
const MAX_BANNERS = 3;

const tab = store.tabId();
let sent = 0;
const newClientId = () => `${tab}-${Date.now().toString(36)}-${(sent++).toString(36)}`;
const isOwnClientId = (cid) => typeof cid === "string" && cid.startsWith(`${tab}-`);

/** Joined rooms in the order they were added. */
const rooms = new Map();
const roomItems = new Map();
let active = null;
let limits = { max_text_bytes: 4096, max_username_chars: 32, max_rooms: 32 };

function wsUrl() {
  const override = new URLSearchParams(location.search).get("ws");
  if (override) return override;
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

const conn = new Connection(wsUrl(), { onWelcome, onFrame, onDown, onStatus });

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

function onStatus(s) {
  ui.connState.dataset.state = s.state;
  ui.connState.dataset.gateway = s.gateway ?? "";
  ui.connState.dataset.connects = String(s.connects);
  ui.connText.textContent = {
    connecting: "Connecting…",
    connected: `Connected to ${s.gateway ?? "the server"}`,
    reconnecting: `Reconnecting in ${s.retryIn}s`,
    disconnected: "Disconnected",
  }[s.state];
  ui.connState.title = s.reason ? `Last problem: ${s.reason}` : "";
  ui.retryBtn.hidden = s.state !== "reconnecting" && s.state !== "disconnected";
  ui.retryBtn.textContent = s.state === "disconnected" ? "Reconnect" : "Retry now";
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
    renderMembers();
    renderTyping();
    renderHeader();
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
    showBanner(text, detail);
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
      showBanner(`Couldn't join #${room.name}: ${text}`, detail);
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
  if (room !== active) showBanner(`#${room.name}: ${text}`, detail);
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
  layout();
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
  if (!item) return;
  item.dataset.status = room.status;
  item.dataset.unread = String(room.unread);
  item.classList.toggle("active", room === active);
  item.querySelector(".room-open").setAttribute("aria-current", room === active ? "true" : "false");
  item.querySelector(".unread").textContent = room.unread > 0 ? (room.unread > 99 ? "99+" : String(room.unread)) : "";
  renderTitle();
}

function renderTitle() {
  const total = [...rooms.values()].reduce((n, r) => n + r.unread, 0);
  const elsewhere = [...rooms.values()].filter((r) => r !== active).reduce((n, r) => n + r.unread, 0);
  ui.totalUnread.textContent = elsewhere > 99 ? "99+" : String(elsewhere);
  ui.totalUnread.hidden = elsewhere === 0;
  const where = active ? `#${active.name} · ` : "";
  document.title = `${total > 0 ? `(${total}) ` : ""}${where}Chat`;
}

function renderActive() {
  renderHeader();
  renderMembers();
  renderTyping();
  layout();
}

function renderHeader() {
  ui.roomTitle.textContent = active ? `#${active.name}` : "Chat";
  const n = active?.members.size ?? 0;
  ui.roomSub.textContent = !active
    ? ""
    : {
        joined: `${n} ${n === 1 ? "member" : "members"}`,
        joining: "joining…",
        offline: "offline, rejoins when connected",
      }[active.status];
  ui.roomSub.dataset.status = active?.status ?? "";
  ui.memberCount.textContent = active ? String(n) : "";
  ui.sendBtn.disabled = !active;
}

function renderMembers() {
  ui.members.replaceChildren(...(active?.memberEls() ?? []));
}

function renderTyping() {
  const text = active ? typingText(active.typingNames()) : "";
  if (ui.typing.textContent !== text) ui.typing.textContent = text;
  ui.typing.classList.toggle("active", text !== "");
}

/** Where the join form lives: the welcome card before the first room, then the side bar. */
function layout() {
  const none = rooms.size === 0;
  document.body.classList.toggle("no-rooms", none);
  const slot = none ? ui.joinSlotWelcome : ui.joinSlotSide;
  if (ui.joinForm.parentElement !== slot) slot.append(ui.joinForm);
  ui.joinBtn.textContent = none ? "Join" : "Join room";
  ui.room.placeholder = none ? "general" : "another room, e.g. dev";
  ui.meName.textContent = store.loadName() || "…";
}

function showBanner(title, detail) {
  for (const b of ui.banners.querySelectorAll(".error-banner")) {
    if (b.querySelector(".error-title")?.textContent === title) b.remove();
  }
  ui.banners.append(bannerEl(title, detail, (b) => b.remove()));
  while (ui.banners.children.length > MAX_BANNERS) ui.banners.firstElementChild.remove();
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
