// The sidebar's list of the user's rooms and DMs (#room-list) and the unread
// totals in the tab title and on the phone's rooms button. It draws the
// rows js/inbox.js `listRows` makes from the store (this tab's rooms and
// the user's inbox) and decides nothing: order, counts, names and presence
// all come with the rows. Items are kept per room and moved, not rebuilt,
// so a focused button keeps its focus when the order changes.
//
// Draws are coalesced: any number of changes in one task draw once, at its
// end (a microtask, which also runs in a hidden tab, where the title's
// count matters most).

import { directName, isDirect, listRows } from "./inbox.js";
import { ui } from "./screen.js";
import { el } from "./view.js";

/** Counts above this read "99+". */
const MAX_COUNT = 99;
const countText = (n) => (n > MAX_COUNT ? `${MAX_COUNT}+` : String(n));

/**
 * Draws `store`'s rooms into #room-list as it changes (call `draw` after a
 * change). `actions.open(room)` and `actions.leave(room)` are what an
 * item's buttons do.
 */
export function createSidebar(store, actions) {
  /** room → its item in #room-list. */
  const items = new Map();
  let queued = false;

  function drawNow() {
    queued = false;
    const rows = listRows(store.inbox, store.rooms.values(), {
      me: store.me.user_id,
      active: store.active?.name ?? null,
    });
    const shown = new Set(rows.map((r) => r.room));
    for (const [room, item] of items) {
      if (!shown.has(room)) {
        item.remove();
        items.delete(room);
      }
    }
    let before = ui.roomList.firstChild;
    for (const row of rows) {
      let item = items.get(row.room);
      if (!item) {
        item = itemEl(row.room, actions);
        items.set(row.room, item);
      }
      renderItem(item, row);
      if (item !== before) ui.roomList.insertBefore(item, before);
      before = item.nextSibling;
    }
    renderTitle(rows, label(store.active?.name));
  }

  /** How a room reads in the header and the title: "#general", or a DM's other members ("bob"). */
  function label(room) {
    if (room == null) return "";
    return isDirect(room) ? directName(store.inbox.get(room), store.me.user_id) : `#${room}`;
  }

  return {
    draw() {
      if (queued) return;
      queued = true;
      queueMicrotask(drawNow);
    },
    label,
  };
}

/** An entry of the room list: open button (mark, name, mention and unread badges), leave button. */
function itemEl(room, actions) {
  const li = el("li", "room-item");
  li.dataset.room = room;
  const open = el("button", "room-open");
  open.type = "button";
  open.append(el("span", "hash"), el("span", "room-name"), el("span", "mentions"), el("span", "unread"));
  open.addEventListener("click", () => actions.open(room));
  const leave = el("button", "room-leave", "×");
  leave.type = "button";
  leave.addEventListener("click", () => actions.leave(room));
  li.append(open, leave);
  return li;
}

/** One row (js/inbox.js `listRows`) into its item. */
function renderItem(li, row) {
  const direct = row.kind === "direct";
  li.dataset.kind = row.kind;
  li.dataset.status = row.status;
  li.dataset.unread = String(row.unread);
  li.dataset.mentions = String(row.mentions);
  if (direct) li.dataset.online = String(row.online);
  else delete li.dataset.online;
  li.classList.toggle("active", row.active);
  li.classList.toggle("has-unread", row.unread > 0);
  const open = li.querySelector(".room-open");
  open.setAttribute("aria-current", row.active ? "true" : "false");
  const mark = li.querySelector(".hash");
  mark.textContent = direct ? "" : "#";
  mark.classList.toggle("presence", direct);
  setText(li.querySelector(".room-name"), row.label);
  setText(li.querySelector(".mentions"), row.mentions > 0 ? "@" : "");
  setText(li.querySelector(".unread"), row.unread > 0 ? countText(row.unread) : "");
  const where = direct ? `${row.label} (${row.online ? "online" : "offline"})` : `#${row.room}`;
  const preview = row.last ? ` — ${row.last.username}: ${row.last.text}` : "";
  open.title = `${where}${row.unread > 0 ? `, ${row.unread} unread` : ""}${row.mentions > 0 ? `, ${row.mentions} mentioning you` : ""}${preview}`;
  const leave = li.querySelector(".room-leave");
  // A room this tab is not in has nothing to leave here.
  leave.hidden = row.status === "out";
  const name = direct ? `the conversation with ${row.label}` : `#${row.room}`;
  leave.title = `Leave ${name}`;
  leave.setAttribute("aria-label", `Leave ${name}`);
}

const setText = (node, text) => {
  if (node.textContent !== text) node.textContent = text;
};

/** Unread counts in the tab title ("(3) #general · Chat") and on the phone's rooms button (others' only). */
function renderTitle(rows, where) {
  const total = rows.reduce((n, r) => n + r.unread, 0);
  const elsewhere = rows.reduce((n, r) => n + (r.active ? 0 : r.unread), 0);
  ui.totalUnread.textContent = countText(elsewhere);
  ui.totalUnread.hidden = elsewhere === 0;
  document.title = `${total > 0 ? `(${total}) ` : ""}${where ? `${where} · ` : ""}Chat`;
}
