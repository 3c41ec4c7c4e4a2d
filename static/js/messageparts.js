// DOM builders for the parts of a message that its later life adds
// (js/lifecycle.js says what they mean): the quote of the message a reply
// answers, the "(edited)" mark, the placeholder of a deleted message, the
// reaction chips, and the toolbar of actions shown on hover and focus.
// Buttons carry `data-action`; one listener on the message list
// (js/actions.js) acts on them, so a message drawn again needs no wiring.
// All text goes in as text.

import { deletedText, quoteOf } from "./lifecycle.js";
import { fullDate, hueFor } from "./format.js";

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function button(className, action, text, label) {
  const b = el("button", className, text);
  b.type = "button";
  b.dataset.action = action;
  if (label) {
    b.setAttribute("aria-label", label);
    b.title = label;
  }
  return b;
}

/**
 * The quote of the message `reply` answers (a `reply_to`): its author and
 * the start of its text, or "deleted message". A button: it shows the
 * original (js/actions.js).
 */
export function quoteEl(reply) {
  const q = quoteOf(reply);
  if (!q) return null;
  const b = button("quote", "quote", null, q.deleted ? `Reply to a deleted message of ${q.name}` : `Show ${q.name}'s message`);
  if (q.deleted) b.classList.add("deleted");
  b.style.setProperty("--hue", hueFor(q.name)); // the quoted author's colour, as on their own messages
  b.dataset.replyId = reply.id ?? "";
  b.dataset.replySeq = String(reply.seq ?? "");
  b.append(el("span", "quote-author", q.name), el("span", "quote-text", q.text));
  return b;
}

/** "(edited)", its title saying when. */
export function editedEl(ts) {
  const mark = el("span", "edited", "(edited)");
  if (Number.isFinite(ts)) mark.title = `Edited ${fullDate(ts)}`;
  return mark;
}

/** The muted line in a deleted message's place. */
export function deletedEl(message) {
  return el("div", "text deleted-text", deletedText(message));
}

/**
 * The chips under a message: each emoji with its count, pressed when the
 * reader's is among them; a click toggles the reader's. Null when none.
 */
export function reactionsEl(reactions) {
  if (!Array.isArray(reactions) || reactions.length === 0) return null;
  const row = el("div", "reactions");
  for (const r of reactions) {
    const others = r.mine ? r.count - 1 : r.count;
    const who = r.mine ? (others > 0 ? `you and ${others} other${others === 1 ? "" : "s"}` : "you") : `${r.count} ${r.count === 1 ? "person" : "people"}`;
    const chip = button("reaction", "toggle-reaction", null, `${r.emoji} from ${who}: ${r.mine ? "take yours away" : "add yours"}`);
    chip.dataset.emoji = r.emoji;
    chip.setAttribute("aria-pressed", String(Boolean(r.mine)));
    chip.append(el("span", "emoji", r.emoji), el("span", "count", String(r.count)));
    row.append(chip);
  }
  return row;
}

/**
 * The actions on a message: reply, react, and edit for the reader's own.
 * Delete is drawn on every message and shown by the stylesheet on the
 * reader's own, or on all of them when the list says the reader moderates
 * the room (`data-moderator`), so a role that changes redraws no message.
 */
export function toolbarEl({ mine }) {
  const bar = el("div", "msg-actions");
  bar.setAttribute("role", "toolbar");
  bar.setAttribute("aria-label", "Message actions");
  bar.append(button("act act-reply", "reply", "↩", "Reply"), button("act act-react", "react", "☺", "Add a reaction"));
  if (mine) bar.append(button("act act-edit", "edit", "✎", "Edit"));
  bar.append(button("act act-delete", "delete", "🗑", "Delete"));
  return bar;
}

/** The inline editor of a message: its text in a box, and how to leave it. */
export function editorEl(text) {
  const box = el("div", "editor");
  const area = el("textarea", "edit-box");
  area.value = text;
  area.rows = Math.min(8, Math.max(1, text.split("\n").length));
  area.setAttribute("aria-label", "Edit message");
  const hint = el("div", "edit-hint", "Enter to save · Shift+Enter for a new line · Escape to cancel");
  const error = el("div", "edit-error");
  error.setAttribute("role", "alert");
  box.append(area, hint, error);
  return box;
}
