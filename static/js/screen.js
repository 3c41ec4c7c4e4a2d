// The page's fixed elements and how the state is drawn into them. Functions
// here read the state they are given and write the DOM; they decide nothing.
// All text goes in as text.

import { typingText } from "./format.js";
import { MAX_SHOWN } from "./members.js";
import { MAX_HITS, markedParts } from "./search.js";
import { fraction } from "./uploads.js";
import { bannerEl, hitEl, memberEl, uploadEl } from "./view.js";

const MAX_BANNERS = 3;

const $ = (id) => document.getElementById(id);
export const ui = Object.fromEntries(
  [
    "join-form", "name", "room", "join-btn", "join-hint", "join-slot-welcome", "join-slot-side",
    "room-list", "room-title", "room-sub", "leave-btn", "messages", "jump-btn", "members",
    "member-count", "members-panel", "members-more", "members-more-btn", "typing", "conn-state", "conn-text", "retry-btn", "composer-form", "composer",
    "send-btn", "byte-count", "composer-hint", "banners", "me-name", "sidebar-toggle", "members-toggle",
    "total-unread", "scrim", "search-toggle", "search-panel", "search-form", "search-label", "search-input",
    "search-btn", "search-close", "search-status", "search-results", "search-more", "context-bar", "latest-btn",
    "notify-btn", "attach-btn", "file-input", "uploads", "drop-zone",
    "reply-bar", "reply-name", "reply-quote", "reply-cancel", "compose-state",
    "confirm-dialog", "confirm-text", "confirm-detail", "confirm-ok", "confirm-cancel", "emoji-picker",
  ].map((id) => [id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), $(id)]),
);


/** The connection pill: state, gateway, countdown, retry button. */
export function renderConn(s) {
  ui.connState.dataset.state = s.state;
  ui.connState.dataset.gateway = s.gateway ?? "";
  ui.connState.dataset.connects = String(s.connects);
  ui.connText.textContent = {
    connecting: "Connecting…",
    connected: `Connected to ${s.gateway ?? "the server"}`,
    reconnecting: `Reconnecting in ${s.retryIn}s`,
    disconnected: "Disconnected",
    elsewhere: "Chat opened on another connection",
  }[s.state];
  ui.connState.title = s.reason ? `Last problem: ${s.reason}` : "";
  ui.retryBtn.hidden = s.state !== "reconnecting" && s.state !== "disconnected" && s.state !== "elsewhere";
  ui.retryBtn.textContent = { disconnected: "Reconnect", elsewhere: "Use here" }[s.state] ?? "Retry now";
}


/** The room on screen in the header; `label` is how it reads ("#general", or a DM's other members). */
export function renderHeader(active, label) {
  ui.roomTitle.textContent = active ? label : "Chat";
  // The room's true size, which may be more than the list holds.
  const n = active?.memberCount ?? 0;
  ui.roomSub.textContent = !active
    ? ""
    : active.removed
      ? "removed by a moderator"
      : {
          joined: `${n.toLocaleString()} ${n === 1 ? "member" : "members"}`,
          joining: "joining…",
          offline: "offline, rejoins when connected",
        }[active.status];
  ui.roomSub.dataset.status = active?.status ?? "";
  ui.memberCount.textContent = active ? n.toLocaleString() : "";
}

/**
 * The member list: a bounded slice of what the tab holds, "and N more"
 * for the rest of the room, "Show more" while a next page can be fetched
 * and drawn, and a stale mark while presence changes are not all listed.
 * Each member but the user (`me`, a user id) gets a "Message" button that
 * calls `onMessage(user_id)`, and for a moderator a menu of what may be
 * done to them that calls `onModerate(member, choice)` (js/moderation.js).
 */
export function renderMembers(active, { me = null, onMessage = null, onModerate = null } = {}) {
  const { rows, more } = active?.memberRows() ?? { rows: [], more: 0 };
  const other = (m, own) => !own && typeof m.user_id === "string" && m.user_id !== "" && m.user_id !== me;
  const els = rows.map((r) => {
    const them = other(r.member, r.own);
    return memberEl(r.member, r.own, r.tag, them ? onMessage : null, them ? onModerate : null);
  });
  ui.members.replaceChildren(...els);
  const stale = Boolean(active?.membersStale);
  ui.membersPanel.dataset.stale = String(stale);
  ui.membersMore.textContent = [more > 0 ? `and ${more.toLocaleString()} more` : "", stale ? "(updating…)" : ""]
    .filter(Boolean)
    .join(" ");
  const asking = active?.membersAsk?.kind === "more";
  ui.membersMoreBtn.hidden = !active?.membersNext || els.length >= MAX_SHOWN || active.status !== "joined";
  ui.membersMoreBtn.disabled = asking;
  ui.membersMoreBtn.textContent = asking ? "Loading…" : "Show more";
}

/** Whether the member list is on screen: always on a wide screen, else when slid in. */
export const membersVisible = () =>
  document.body.classList.contains("members-open") || matchMedia("(min-width: 1101px)").matches;

export function renderTyping(active) {
  const text = active ? typingText(active.typingNames()) : "";
  if (ui.typing.textContent !== text) ui.typing.textContent = text;
  ui.typing.classList.toggle("active", text !== "");
}

/** Where the join form lives: the welcome card before the first room, then the side bar. */
export function layout(roomCount, name) {
  const none = roomCount === 0;
  document.body.classList.toggle("no-rooms", none);
  const slot = none ? ui.joinSlotWelcome : ui.joinSlotSide;
  if (ui.joinForm.parentElement !== slot) slot.append(ui.joinForm);
  ui.joinBtn.textContent = none ? "Join" : "Join room";
  ui.room.placeholder = none ? "general" : "another room, e.g. dev";
  ui.meName.textContent = name || "…";
}

/** A dismissable error line above the messages; the same title replaces the older one. */
export function showBanner(title, detail) {
  for (const b of ui.banners.querySelectorAll(".error-banner")) {
    if (b.querySelector(".error-title")?.textContent === title) b.remove();
  }
  ui.banners.append(bannerEl(title, detail, (b) => b.remove()));
  while (ui.banners.children.length > MAX_BANNERS) ui.banners.firstElementChild.remove();
}

/**
 * The search panel of the room on screen (js/search.js): open or not, its
 * label, status line, hits (newest first; new pages are appended, so a
 * focused hit keeps its focus) and "More results". `onJump(seq)` is what
 * a hit does when chosen.
 */
export function renderSearch(search, active, onJump) {
  const open = active != null && search.isOpenFor(active.name);
  ui.searchPanel.hidden = !open;
  ui.searchToggle.setAttribute("aria-expanded", String(open));
  if (!open) {
    ui.searchResults.replaceChildren();
    return;
  }
  ui.searchLabel.textContent = `Search #${active.name}`;
  ui.searchInput.disabled = search.unavailable;
  ui.searchBtn.disabled = search.unavailable;
  ui.searchPanel.dataset.state = search.unavailable ? "unavailable" : search.asking ? "searching" : "idle";
  ui.searchStatus.textContent = search.status();
  ui.searchStatus.classList.toggle("problem", Boolean(search.problem));
  const shown = [...ui.searchResults.children];
  const same = shown.every((li, i) => Number(li.dataset.seq) === search.hits[i]?.message.seq);
  if (!same) ui.searchResults.replaceChildren();
  for (const hit of search.hits.slice(same ? shown.length : 0)) {
    const seq = hit.message.seq;
    ui.searchResults.append(hitEl(hit.message, markedParts(hit.message.text, hit.highlights), () => onJump(seq)));
  }
  ui.searchMore.hidden = !(search.next > 0 && search.hits.length < MAX_HITS);
  ui.searchMore.disabled = search.asking != null;
  ui.searchMore.textContent = search.asking != null && search.answered ? "Loading…" : "More results";
}

/** The bar over a block around a search hit, with its way back to the newest messages. */
export function renderContext(active) {
  ui.contextBar.hidden = !active?.history.inContext;
}

/**
 * The files waiting in the composer of the room on screen (js/uploads.js
 * entries). An entry already drawn in the same state only has its bar
 * moved, so a progress event redraws one attribute, not the list.
 */
export function renderUploads(entries, handlers) {
  const drawn = new Map([...ui.uploads.children].map((li) => [li.dataset.key, li]));
  const items = entries.map((e) => {
    const li = drawn.get(String(e.key));
    if (li && li.dataset.state === e.state) {
      const bar = li.querySelector(".upload-progress");
      if (bar && e.state === "uploading") bar.value = fraction(e);
      return li;
    }
    return uploadEl(e, fraction(e), handlers);
  });
  if (items.length !== ui.uploads.children.length || items.some((li, i) => ui.uploads.children[i] !== li)) {
    ui.uploads.replaceChildren(...items);
  }
  ui.uploads.hidden = items.length === 0;
}
