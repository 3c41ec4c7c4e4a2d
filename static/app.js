// The chat page: wires the connection, the store, the protocol and the DOM
// together; it holds no state of its own. Protocol: docs/protocol.md.
// Modules: js/store.js (the page's state: rooms, the room on screen, limits;
// views subscribe to it), js/protocol.js (what frames do to the store, and
// the frames the page sends), js/render.js (redraws what the store says
// changed), js/connection.js (WebSocket with reconnect), js/roomstate.js
// (one room's state without the DOM: resume position, dedupe, live events
// held while joining, unread count, members, and the lines its message
// list shows), js/roomhistory.js and js/scrollback.js (a room's scroll-back
// and the block around a search hit, no DOM), js/history.js (the history
// and search frames), js/search.js (the search, no DOM), js/pending.js (sends waiting for their echo, no DOM),
// js/messagelist.js (draws a room's lines into its message list),
// js/screen.js (draws state into the page's fixed elements), js/view.js
// (DOM builders, text only), js/format.js (pure helpers), js/members.js
// (presence merge and notice wording, pure), js/typing.js (who is typing,
// and when this tab says it is; pure), js/limits.js (the gateway's limits
// from welcome), js/clientid.js (this tab's client ids), js/storage.js
// (what survives a reload), js/inbox.js (the user's rooms and DMs on every
// device: unread, mentions; pure), js/people.js (the rooms/inbox/dm frames,
// open_dm and read markers; no DOM), js/sidebar.js (draws the user's rooms
// and the unread total in the title), js/notify.js (browser notifications,
// only once allowed), js/uploads.js (files on their way into a message:
// queue, progress, cancel, why one failed, retry; no DOM), js/transfer.js
// (one file's POST /upload by XHR), js/attachments.js (a message's
// thumbnails and file chips, the lightbox), js/lifecycle.js (a message's
// edits, deletion, reactions and reply quote as data; pure), js/changes.js
// (the frames for replies, edits, deletes, reactions; no DOM),
// js/messageparts.js (their DOM parts), js/actions.js (the toolbar, picker,
// inline editor and confirmations in the DOM), js/moderation.js (roles,
// the moderate frames, moderation notices, mutes; pure), js/compose.js
// (the reply bar and whether the reader may write), js/shownmessages.js (a
// room's shown messages by id, for their later life to reach). Modules without the DOM (protocol.js and the
// state it drives included) have unit tests in test/ (node --test
// static/test/).
//
// Hooks for tests and people reading the DOM (stable; change them with the tests):
//   #join-form  #name  #room  #join-btn  #join-hint   join a room under a name
//   #room-list > .room-item[data-room=NAME][data-kind=room|direct][data-status=offline|joining|joined|out]
//        [data-unread=N][data-mentions=N][data-online=true|false (DMs only)]  .has-unread (bold)
//        newest activity first; "out": the user's room or DM that this tab has not joined
//        .room-open (switch to it; joins it first when out)  .room-name (the room, or a DM's other members)
//        .hash (# for a room; .presence dot for a DM)  .mentions ("@", empty at 0)
//        .unread (count, empty at 0)  .room-leave (×, hidden when out)
//   #notify-btn  "Enable notifications" (asks the browser once clicked; hidden once answered)
//   #room-title  #room-sub  #leave-btn                 the room on screen
//   #messages .message-list[data-room=NAME]            the room on screen only
//        .msg[data-id][data-seq][data-member-id]  (.own = this tab's, .cont = same author)
//           .author  .time  .text
//        .msg.pending[data-cid]                       sent, not echoed yet (no data-id)
//        .notice.join / .notice.leave (both: a frame with joins and leaves)
//                                                     join/leave notices, one per presence frame; no data-id
//        .notice.error / .notice.info                 local notes, no data-id
//        .notice.gap ("Earlier messages may be missing")  a resume that could not recover all
//        .notice.first ("This is the first message of #NAME")  the top: nothing older
//        .day                                         date separator
//        .msg.found (.flash while it flashes)         the message a search hit jumped to (focused)
//        .msg.mention                                 someone else's message with @your-name
//        .msg.mine                                    the reader's (any tab): offers Edit
//           .msg-actions[role=toolbar] (shown on hover and focus) > button[data-action=reply|react|edit|delete]
//           .quote[data-reply-id][data-reply-seq] (.quote-author .quote-text; .deleted: "deleted message")
//                                                     what it replies to; a click shows the original
//           .edited ("(edited)", title: when)   .editor > textarea.edit-box .edit-error   (.msg.editing)
//           .reactions > button.reaction[data-emoji][aria-pressed] .emoji .count   a click toggles yours
//        .msg.deleted .text.deleted-text ("message deleted", "… by a moderator (NAME)")
//        .notice.moderation                           a moderator's action (mute, kick, ban, role)
//     .message-list[data-moderator=true]              the reader moderates: Delete on every message
//   #emoji-picker > button.pick[data-emoji]           the reactions offered; Escape closes
//   #confirm-dialog #confirm-text #confirm-ok #confirm-cancel   asks before a delete or a moderator's action
//   #reply-bar #reply-name #reply-quote #reply-cancel the reply being written (Escape cancels)
//   #compose-state[data-kind=muted|kicked|banned] .compose-rejoin   why the composer is off
//   #members li.member .member-mod > summary + button.member-mod-choice[data-mod=mute-600|mute-3600|kick|ban]
//        (moderators only)
//     scrolled near the top, the list asks for older messages and puts them above, the
//     reader's place kept
//   #search-toggle  #search-panel[data-state=idle|searching|unavailable]  #search-form
//        #search-label (label of #search-input)  #search-input  #search-btn  #search-close
//        #search-status (what was found, or what went wrong)
//        #search-results > li.hit[data-seq] > button.hit-open (.author .time .hit-text with <mark>s)
//        #search-more ("More results")        Escape closes the panel
//   #context-bar (shown with a block around a search hit instead of the live list)  #latest-btn
//   #members li.member[data-member-id][data-username][data-user-id] (.own)   at most MAX_SHOWN (js/members.js)
//        .member-dm ("Message": opens a direct conversation with them; not on the user's own members)
//   #member-count (the room's true size)   #members-panel[data-stale=true|false]
//   #members-more ("and N more")   #members-more-btn ("Show more": fetches the next page)
//   #typing (text "bob is typing…", empty when nobody; class .active)
//   #conn-state[data-state=connecting|connected|reconnecting|disconnected|elsewhere][data-gateway]
//        [data-connects=N] (welcomes so far: grows by one per (re)connection)
//        #conn-text  #retry-btn  (elsewhere: the session was taken by another connection, 4009;
//        #retry-btn takes it back)
//   #composer (textarea)  #send-btn  #byte-count  #composer-hint
//   #attach-btn (opens #file-input, multiple)  paste of files anywhere, a drop on the chat (#drop-zone shown
//        while files are dragged over it): each file an upload in the room on screen
//   #uploads > li.upload[data-key][data-state=queued|uploading|done|failed]  the files going with the next send
//        .upload-name  .upload-size  progress.upload-progress  .upload-remove (× cancels or removes)
//        .upload-error (why it failed)  .upload-retry (when trying again may help)
//   .msg .attachments  a stored message's files:
//        a.thumb[data-attachment=ID][href=signed file URL] > img (width/height set from the frame)
//           a click opens #lightbox (a modal <dialog>: .lightbox-img .lightbox-name .lightbox-meta
//           .lightbox-open); a click anywhere or Escape closes it
//        a.file-chip[data-attachment=ID][href][download] .file-name .file-meta ("PDF · 2.4 MB")
//   #banners > .error-banner  .error-title  .error-detail  .dismiss
//   body.no-rooms (nothing joined yet: the welcome card holds #join-form)
//
// Query ?ws=ws://host:port/ws points the page at another gateway (development);
// a comma-separated list names several, tried in turn after a failure or a drop.
// Query ?token=<JWT> is passed on to /ws, for gateways run with JWT_SECRET.

import { confirmAction, setUpMessageActions } from "./js/actions.js";
import { clientIds } from "./js/clientid.js";
import { setUpLightbox } from "./js/attachments.js";
import { Connection } from "./js/connection.js";
import { gatewayUrls, httpBase, pageToken, uploadUrl } from "./js/endpoints.js";
import { byteLength, checkName, checkRoom } from "./js/format.js";
import { isDirect } from "./js/inbox.js";
import { notifier, offerNotifications } from "./js/notify.js";
import { createProtocol } from "./js/protocol.js";
import { autosize, follow, nearBottom, nearTop } from "./js/render.js";
import * as screen from "./js/screen.js";
import * as storage from "./js/storage.js";
import { Store } from "./js/store.js";
import { xhrTransfer } from "./js/transfer.js";
import { Uploads } from "./js/uploads.js";

const { ui } = screen;

const store = new Store();
const view = follow(store, {
  open: (name) => openRoom(name),
  leave: (name) => protocol.removeRoom(name),
  jump: (seq) => protocol.jumpTo(seq),
  message: (userId) => protocol.openDm([userId]),
  moderate: async (member, choice) => {
    const room = store.active;
    const agreed = await confirmAction(choice.ask.replace("{name}", member.username), { ok: choice.ok });
    if (agreed && store.active === room) protocol.moderate(room, choice, member);
  },
  rejoin: (room) => protocol.rejoin(room),
}, {
  // Attachments' signed URLs are good on any gateway: the first the page knows.
  filesBase: httpBase(gatewayUrls(location)[0]),
});
// Every attempt carries the tab's session, so a reconnect is the same member:
// the room sees no leave and no join (docs/protocol.md, "Sessions and resuming").
const token = pageToken(location);
const conn = new Connection(gatewayUrls(location), () => ({ token, session: storage.loadSession() }), {
  onWelcome: (frame) => {
    storage.saveSession(frame.session);
    protocol.onWelcome(frame);
  },
  onFrame: (frame) => protocol.onFrame(frame),
  onDown: () => protocol.onDown(),
  onStatus: screen.renderConn,
});
const protocol = createProtocol({
  store,
  send: (frame) => conn.send(frame),
  ids: clientIds(storage.tabId()),
  view,
  name: storage.loadName,
  notify: notifier({ label: view.label, open: (name) => openRoom(name) }),
});
// Files go to the gateway the page is connected to, under this tab's
// session (and token): the gateway lets only the room's members upload, so
// a room's files wait until the tab is in it.
const uploads = new Uploads({
  transfer: xhrTransfer((entry) => {
    const session = storage.loadSession();
    if (!session || !conn.connected) return null;
    return uploadUrl(httpBase(conn.url), { room: entry.room, name: entry.name, session, token });
  }),
  maxBytes: () => store.limits.max_upload_bytes,
  canStart: (room) => conn.connected && store.get(room)?.status === "joined",
  onChange: () => drawUploads(),
});

// What survives a reload: the rooms in order, and the one on screen. And
// the text in the box is counted again against a new welcome's limit.
// DMs are not kept: the user's rooms (`rooms`) list them after every
// welcome, and without tokens another tab of this origin is another user,
// who may not join them.
store.subscribe((change) => {
  if (change.type === "limits") countBytes();
  // A room joined (again): its files may go now.
  if (change.type === "room" && change.parts.has("item")) uploads.pump();
  if (change.type === "removed") uploads.forget(change.room.name);
  if (change.type === "active") drawUploads();
  if (change.type === "added" || change.type === "removed") {
    storage.saveRooms(store.saved().filter((r) => !isDirect(r.room)));
  }
  if (change.type === "active") storage.saveActive(store.active?.name ?? null);
});

// ---- what the person does ---------------------------------------------------

function join(e) {
  e.preventDefault();
  ui.joinHint.textContent = "";
  const n = checkName(ui.name.value, store.limits.max_username_chars);
  if (n.error) return hint(ui.name, n.error);
  const r = checkRoom(ui.room.value || (store.size === 0 ? "general" : ""));
  if (r.error) return hint(ui.room, r.error);
  storage.saveName(n.name);
  ui.name.value = n.name;
  ui.room.value = "";
  const { max_rooms } = store.limits;
  if (!store.get(r.room) && store.size >= max_rooms) {
    return hint(ui.room, `You can be in at most ${max_rooms} rooms; leave one first.`);
  }
  protocol.enter(r.room, n.name);
}

/** Shows a room or DM of the user's, joining it first if this tab is not in it. */
function openRoom(name) {
  if (protocol.open(name)) return;
  document.body.classList.remove("sidebar-open");
  hint(ui.name, "Pick a name first.");
}

function hint(input, text) {
  ui.joinHint.textContent = text;
  input.focus();
}

function send() {
  const room = store.active;
  if (!room) return;
  const text = ui.composer.value;
  const going = uploads.busy(room.name);
  if (going > 0) {
    ui.composerHint.textContent = `${going === 1 ? "A file is" : `${going} files are`} still uploading: send once ${going === 1 ? "it is" : "they are"} done.`;
    return;
  }
  const files = uploads.ready(room.name);
  if (!text.trim() && files.length === 0) return;
  const bytes = byteLength(text);
  const max = store.limits.max_text_bytes;
  if (bytes > max) {
    ui.composerHint.textContent = `That is ${bytes.toLocaleString()} bytes; the limit is ${max.toLocaleString()}. Shorten it or split it up.`;
    return;
  }
  if (room.pending.full) {
    ui.composerHint.textContent = `${room.pending.size} messages are still waiting to be sent; this one waits in the box until they are.`;
    return;
  }
  ui.composerHint.textContent = "";
  ui.composer.value = "";
  autosize();
  protocol.say(room, text, uploads.take(room.name));
}

/** Files the person attached (button, paste or drop) start uploading to the room on screen. */
function attach(files) {
  const room = store.active;
  if (!room || files.length === 0) return;
  ui.composerHint.textContent = uploads.add(room.name, files);
}

function drawUploads() {
  const room = store.active;
  screen.renderUploads(room ? uploads.of(room.name) : [], {
    onRemove: (key) => uploads.remove(key),
    onRetry: (key) => uploads.retry(key),
  });
}

/** A drag over the chat that carries files (not text or a link from the page). */
const carriesFiles = (e) => e.dataTransfer?.types?.includes("Files") === true;

function onComposerInput() {
  autosize();
  if (!countBytes()) ui.composerHint.textContent = "";
  protocol.typed();
}

/**
 * The byte counter under the message box, against the gateway's limit:
 * shown past 80% of it, marked past all of it. Returns whether the text
 * is over the limit.
 */
function countBytes() {
  const bytes = byteLength(ui.composer.value);
  const max = store.limits.max_text_bytes;
  ui.byteCount.textContent = bytes > max * 0.8 ? `${bytes.toLocaleString()} / ${max.toLocaleString()}` : "";
  ui.byteCount.classList.toggle("over", bytes > max);
  return bytes > max;
}

/** Opens the search panel of the room on screen, the box focused; or closes it, focus back on its button. */
function toggleSearch(open) {
  if (open) {
    protocol.openSearch();
    ui.searchInput.focus();
    ui.searchInput.select();
  } else {
    protocol.closeSearch();
    ui.searchToggle.focus();
  }
}

// ---- start ------------------------------------------------------------------

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
ui.leaveBtn.addEventListener("click", () => store.active && protocol.removeRoom(store.active.name));
ui.retryBtn.addEventListener("click", () => conn.retry());
ui.jumpBtn.addEventListener("click", () => {
  ui.messages.scrollTop = ui.messages.scrollHeight;
});
ui.messages.addEventListener("scroll", () => {
  if (nearBottom()) ui.jumpBtn.hidden = true;
  if (nearTop()) protocol.loadOlder(store.active);
});
ui.searchToggle.addEventListener("click", () => toggleSearch(ui.searchPanel.hidden));
ui.searchForm.addEventListener("submit", (e) => {
  e.preventDefault();
  protocol.searchFor(ui.searchInput.value);
});
ui.searchClose.addEventListener("click", () => toggleSearch(false));
ui.searchMore.addEventListener("click", () => protocol.moreResults());
ui.latestBtn.addEventListener("click", () => {
  protocol.toLatest();
  ui.composer.focus();
});
ui.sidebarToggle.addEventListener("click", () => document.body.classList.toggle("sidebar-open"));
ui.membersToggle.addEventListener("click", () => {
  document.body.classList.toggle("members-open");
  if (store.active) protocol.refetchMembersIfStale(store.active);
});
ui.membersMoreBtn.addEventListener("click", () => protocol.showMoreMembers());
ui.scrim.addEventListener("click", () => document.body.classList.remove("sidebar-open", "members-open"));
document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape") return;
  if (!ui.searchPanel.hidden) toggleSearch(false);
  document.body.classList.remove("sidebar-open", "members-open");
});
document.addEventListener("visibilitychange", () => {
  if (document.hidden) return;
  store.markRead();
  protocol.readNow();
});
ui.attachBtn.addEventListener("click", () => ui.fileInput.click());
ui.fileInput.addEventListener("change", () => {
  attach([...ui.fileInput.files]);
  ui.fileInput.value = ""; // the same file may be picked again
});
// A pasted screenshot (or files copied in a file manager), wherever the focus is.
// Text copied from an office app comes with a picture of itself: the text wins.
document.addEventListener("paste", (e) => {
  const files = [...(e.clipboardData?.files ?? [])];
  if (files.length === 0 || !store.active) return;
  const text = e.clipboardData.getData("text/plain");
  if (text.trim() && files.every((f) => f.type.startsWith("image/"))) return;
  e.preventDefault();
  attach(files);
});
{
  const chat = document.querySelector("main.chat");
  let depth = 0; // dragenter/dragleave come for every child crossed
  const zone = (on) => (ui.dropZone.hidden = !on);
  chat.addEventListener("dragenter", (e) => {
    if (!carriesFiles(e) || !store.active) return;
    depth += 1;
    zone(true);
  });
  chat.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone(false);
  });
  chat.addEventListener("dragover", (e) => {
    if (!carriesFiles(e) || !store.active) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
  });
  chat.addEventListener("drop", (e) => {
    depth = 0;
    zone(false);
    if (!carriesFiles(e)) return;
    e.preventDefault();
    attach([...e.dataTransfer.files]);
  });
}
// Leaving mid-upload loses the file: the browser asks first.
window.addEventListener("beforeunload", (e) => {
  if ([...store.rooms.keys()].some((name) => uploads.busy(name) > 0)) e.preventDefault();
});
setUpLightbox();
setUpMessageActions({ store, protocol });
offerNotifications(ui.notifyBtn);
window.addEventListener("online", () => conn.wake());

ui.name.value = storage.loadName();
for (const { room, username } of storage.loadRooms()) {
  if (!store.get(room) && checkRoom(room).room) protocol.addRoom(room, username);
}
const linked = checkRoom(decodeURIComponent(location.hash.slice(1))).room;
if (linked && !store.get(linked) && ui.name.value) protocol.addRoom(linked, ui.name.value);
store.setActive(store.get(linked) ?? store.get(storage.loadActive()) ?? store.rooms.values().next().value ?? null);
if (!store.active) {
  ui.room.value = linked ?? "general";
  (ui.name.value ? ui.room : ui.name).focus();
}
conn.start();
