// Keeps the page drawn as the store changes (js/store.js): the room list
// and the tab title (js/sidebar.js, from this tab's rooms and the user's
// inbox), and for the room on screen its
// messages, header, member list and typing line. The typing line is drawn
// when a change names it (a typing frame, a message, a leave) and again
// when its first name runs out, by a timer set for that moment: nothing
// polls. It also answers the few
// questions about the screen that js/protocol.js asks (is this room being
// read? is the member list visible?) and does the few things it asks
// (keep the messages scrolled to the bottom, give refused text back to
// the message box, show a banner). For scroll-back and search
// (js/history.js) it keeps the reader's place while older messages go in
// above, says whether the reader is near the top, shows a message (scrolled
// to, flashed and focused), and draws the search panel and which of a
// room's lists is on screen: its live one or the block around a search hit.

import { renderCompose } from "./compose.js";
import { mentionsName } from "./format.js";
import { isDirect } from "./inbox.js";
import * as storage from "./storage.js";
import {
  layout,
  renderContext,
  membersVisible,
  renderHeader,
  renderMembers,
  renderSearch,
  renderTyping,
  showBanner,
  ui,
} from "./screen.js";
import { MessageList } from "./messagelist.js";
import { createSidebar } from "./sidebar.js";

/** Closer to the bottom than this counts as at the bottom: new messages keep it there. */
const NEAR_BOTTOM_PX = 80;
/** Closer to the top than this asks for older messages (about five lines ahead of the reader). */
const NEAR_TOP_PX = 300;
/** The message box grows with its text up to this height, then scrolls. */
const COMPOSER_MAX_PX = 160;

/**
 * Subscribes to `store` and draws what each change names. `actions.open`
 * and `actions.leave` (a room's name) are what the room list's buttons do,
 * `actions.jump` (a seq) what a search hit does, `actions.message` (a user
 * id) what a member's "Message" button does, `actions.moderate` (a member)
 * what a moderator's member menu does, `actions.rejoin` (a room) what "Join
 * again" does after a moderator removed the reader.
 * Returns the view that js/protocol.js is given.
 */
export function follow(store, actions, { filesBase } = {}) {
  const sidebar = createSidebar(store, actions);
  // In a DM of two, "Message" would open the same conversation: not offered there.
  const pair = (room) => isDirect(room.name) && (store.inbox.get(room.name)?.members.length ?? 2) <= 2;
  const members = (room) =>
    renderMembers(room, {
      me: store.me.user_id,
      onMessage: room && pair(room) ? null : actions.message,
      onModerate: room?.moderator && room.status === "joined" ? actions.moderate : null,
    });
  /** The reply bar and whether the reader may write; a moderator's lists offer delete on every message. */
  const compose = (room) => {
    for (const list of [room?.list, room?.history.context?.list]) {
      if (list?.el) list.el.dataset.moderator = String(Boolean(room.moderator));
    }
    renderCompose(room, actions.rejoin);
  };
  /** The name the reader goes by in `room`: the token's, else the one they joined under. */
  const myName = (room) => store.me.name || store.get(room)?.username || "";

  /** The one timer for the typing line: set for when its first name runs out. */
  let typingTimer = null;
  const drawTyping = () => {
    clearTimeout(typingTimer);
    typingTimer = null;
    const room = store.active;
    renderTyping(room);
    const next = room?.typing.nextExpiry();
    // A timer may fire a little early: the redraw then finds the name
    // still there and sets the timer again.
    if (next != null) typingTimer = setTimeout(drawTyping, Math.max(0, next - Date.now()));
  };

  /** The list of the room on screen that is shown: its live one or a block around a search hit. */
  const drawList = (room) => {
    const el = room.history.shown.list.el;
    if (ui.messages.firstElementChild !== el) ui.messages.replaceChildren(el);
    renderContext(room);
  };

  const drawActive = () => {
    renderHeader(store.active, sidebar.label(store.active?.name));
    renderContext(store.active);
    renderSearch(store.search, store.active, actions.jump);
    members(store.active);
    compose(store.active);
    drawTyping();
    layout(store.size, store.me.name || storage.loadName());
  };

  /** The room on screen changed: the old one keeps its scroll and draft, the new one gets them back. */
  const show = (previous) => {
    const room = store.active;
    if (previous && previous !== room) {
      previous.scrollTop = ui.messages.scrollTop;
      previous.draft = ui.composer.value;
    }
    document.body.classList.remove("sidebar-open", "members-open");
    if (!room) {
      ui.messages.replaceChildren();
      drawActive();
      return;
    }
    drawList(room);
    ui.messages.scrollTop = room.scrollTop ?? ui.messages.scrollHeight;
    ui.jumpBtn.hidden = true;
    ui.composer.value = room.draft;
    ui.composer.placeholder = `Message ${sidebar.label(room.name)}`;
    autosize();
    sidebar.draw();
    drawActive();
    if (matchMedia("(pointer: fine)").matches) ui.composer.focus();
  };

  store.subscribe((change) => {
    switch (change.type) {
      case "added":
        sidebar.draw();
        break;
      case "removed":
        sidebar.draw();
        layout(store.size, store.me.name || storage.loadName());
        break;
      case "active":
        show(change.previous);
        break;
      case "room": {
        const { room, parts } = change;
        // Members are who is online: a DM's presence dot.
        if (parts.has("item") || parts.has("members")) sidebar.draw();
        if (room !== store.active) break;
        if (parts.has("header")) renderHeader(room, sidebar.label(room.name));
        if (parts.has("members")) members(room);
        if (parts.has("typing")) drawTyping();
        if (parts.has("list")) {
          drawList(room);
          compose(room);
        } else if (parts.has("compose")) compose(room);
        break;
      }
      case "limits":
        // The name field holds no more than the gateway takes (index.html's
        // maxlength is the page's own number, until the first welcome).
        ui.name.maxLength = store.limits.max_username_chars;
        break;
      case "search":
        renderSearch(store.search, store.active, actions.jump);
        break;
      case "inbox":
      case "me":
        sidebar.draw();
        if (change.type === "me") layout(store.size, store.me.name || storage.loadName());
        // A DM's name comes with its entry; who may be messaged with the user's id.
        if (store.active) {
          renderHeader(store.active, sidebar.label(store.active.name));
          if (change.type === "me") members(store.active);
        }
        break;
    }
  });

  return {
    /** The message list a new room draws its lines into (js/roomstate.js); it marks messages mentioning the reader. */
    messageList: (name) => new MessageList(name, (text) => mentionsName(text, myName(name)), filesBase),
    /** How a room reads: "#general", or a DM's other members. */
    label: (name) => sidebar.label(name),
    /** Seen means on screen: the room on screen of a visible tab. */
    isSeen: (room) => room === store.active && !document.hidden,
    membersVisible,
    showBanner,
    /** The text in the message box. */
    draft: () => ui.composer.value,
    /**
     * Runs `change` (which adds to `room`'s list) and keeps the messages
     * at the bottom if they were there, or if the change was this tab's
     * own message; else shows "New messages ↓" when something was added.
     */
    withScroll(room, change) {
      // A block around a search hit is on screen: the live list is not.
      if (room !== store.active || room.history.inContext) return change();
      const atBottom = nearBottom();
      const result = change();
      if (atBottom || result?.own) ui.messages.scrollTop = ui.messages.scrollHeight;
      else if (result?.added || result > 0) ui.jumpBtn.hidden = false;
      return result;
    },
    /** Scrolls `room`'s messages to the bottom, if it is on screen. */
    toBottom(room) {
      if (room === store.active) ui.messages.scrollTop = ui.messages.scrollHeight;
    },
    /**
     * Runs `change` (which puts older messages above the top of one of
     * `room`'s lists) keeping the reader's place: what was in view stays
     * where it was, however much went in above it.
     */
    keepPlace(room, change) {
      if (room !== store.active) return change();
      const box = ui.messages;
      const fromBottom = box.scrollHeight - box.scrollTop;
      const result = change();
      box.scrollTop = box.scrollHeight - fromBottom;
      return result;
    },
    /** Whether `room` is on screen with its messages scrolled (nearly) to the top. */
    nearTop: (room) => room === store.active && nearTop(),
    /** Whether `list` (a js/messagelist.js list) shows message `seq`. */
    holds: (list, seq) => list.find(seq) != null,
    /**
     * Shows message `seq` of the list on screen: scrolled to the middle,
     * flashed, and focused (so the keyboard goes on from it). Returns
     * false when that list does not hold it.
     */
    reveal(room, seq) {
      if (room !== store.active) return false;
      const node = room.history.shown.list.find(seq);
      if (!node) return false;
      for (const old of ui.messages.querySelectorAll(".msg.found")) old.classList.remove("found", "flash");
      node.scrollIntoView({ block: "center" });
      node.classList.add("found");
      void node.offsetWidth; // restart the flash when the same message is shown again
      node.classList.add("flash");
      node.tabIndex = -1;
      node.focus({ preventScroll: true });
      return true;
    },
    /**
     * A refused message's text goes back to the message box, if `room` is
     * on screen and the box is empty (never over something newer). Returns
     * whether it did.
     */
    giveBack(room, text) {
      if (room !== store.active || ui.composer.value) return false;
      ui.composer.value = text;
      autosize();
      return true;
    },
  };
}

/** The message box as tall as its text, up to COMPOSER_MAX_PX. */
export function autosize() {
  ui.composer.style.height = "auto";
  ui.composer.style.height = `${Math.min(ui.composer.scrollHeight, COMPOSER_MAX_PX)}px`;
}

/** Whether the messages are scrolled (nearly) to the bottom. */
export function nearBottom() {
  const box = ui.messages;
  return box.scrollHeight - box.scrollTop - box.clientHeight < NEAR_BOTTOM_PX;
}

/** Whether the messages are scrolled (nearly) to the top: older ones are wanted. */
export function nearTop() {
  return ui.messages.scrollTop < NEAR_TOP_PX;
}
