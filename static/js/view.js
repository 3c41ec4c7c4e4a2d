// DOM builders. Every piece of text that came from a person or the server
// goes in through textContent / createTextNode, never innerHTML.

import { attachmentsEl } from "./attachments.js";
import { clock, dayLabel, fullDate, humanSize, hueFor, initial } from "./format.js";
import { deletedEl, editedEl, quoteEl, reactionsEl, toolbarEl } from "./messageparts.js";
import { MODERATION_CHOICES } from "./moderation.js";

/** createElement with a class and optional text (set as text, never HTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function avatar(name) {
  const a = el("span", "avatar", initial(name));
  a.style.setProperty("--hue", hueFor(name));
  a.setAttribute("aria-hidden", "true");
  return a;
}

function timeEl(ts) {
  const t = el("time", "time", clock(ts));
  t.dateTime = new Date(ts).toISOString();
  t.title = fullDate(ts);
  return t;
}

/**
 * A chat message. `cont` hides the author line when the same person wrote
 * the message right before; `own` sets it apart as this tab's; `mine`
 * (the reader's, from any tab) offers "Edit"; `mention` marks one that
 * mentions the reader. Above the text, the quote of what it replies to;
 * under it, "(edited)", its attachments
 * (js/attachments.js, their URLs resolved against `base`, the gateway's
 * address) and reactions (js/messageparts.js). A deleted one keeps its
 * place as a muted line and nothing else.
 */
export function messageEl(ev, { own, mine, cont, tag, mention, base }) {
  const li = el("div", "msg");
  if (own) li.classList.add("own");
  if (mine || own) li.classList.add("mine");
  if (mention && !ev.deleted) li.classList.add("mention");
  if (cont) li.classList.add("cont");
  if (ev.deleted) li.classList.add("deleted");
  if (!ev.member_id) li.classList.add("system");
  li.dataset.id = ev.id;
  li.dataset.seq = String(ev.seq);
  li.dataset.memberId = ev.member_id ?? "";
  li.style.setProperty("--hue", hueFor(ev.username ?? ""));

  li.append(avatar(ev.username ?? "?"));
  const body = el("div", "body");
  const meta = el("div", "meta");
  const author = el("span", "author", own ? `${ev.username} (you)` : ev.username);
  if (tag) author.append(el("span", "name-tag", tag));
  meta.append(author);
  // Operator messages (no member id) carry a badge no member name can fake.
  if (!ev.member_id) meta.append(el("span", "operator-badge", "operator message"));
  meta.append(timeEl(ev.ts));
  const stamp = timeEl(ev.ts);
  stamp.classList.add("stamp");
  body.append(meta);
  if (ev.deleted) {
    body.append(deletedEl(ev), stamp);
    li.append(body);
    return li;
  }
  const quote = quoteEl(ev.reply_to);
  if (quote) body.append(quote);
  body.append(el("div", "text", ev.text));
  // Under the text, not in the author line: a follow-up message has none.
  if (ev.edited) body.append(editedEl(ev.edited));
  const files = attachmentsEl(ev.attachments, base);
  if (files) body.append(files);
  const reactions = reactionsEl(ev.reactions);
  if (reactions) body.append(reactions);
  body.append(stamp);
  // Operator messages are nobody's to edit or answer in place.
  if (ev.member_id) body.append(toolbarEl({ mine: mine || own }));
  li.append(body);
  return li;
}

/** A message this tab sent that the room has not echoed back yet; its files by name, the quote it answers. */
export function pendingEl(cid, username, text, attachments = [], reply = null) {
  const li = el("div", "msg own pending");
  li.dataset.cid = cid;
  li.append(avatar(username));
  const body = el("div", "body");
  const meta = el("div", "meta");
  meta.append(el("span", "author", `${username} (you)`), el("span", "time", "sending…"));
  body.append(meta);
  const quote = quoteEl(reply);
  if (quote) body.append(quote);
  body.append(el("div", "text", text));
  if (attachments.length > 0) {
    const files = el("div", "attachments pending-files");
    for (const a of attachments) files.append(el("span", "file-chip", a.name ?? "file"));
    body.append(files);
  }
  body.append(el("span", "time stamp", "sending…"));
  li.append(body);
  return li;
}

/** A system line: join/leave notices and local notes. `kind` is one or more classes ("join leave"). */
export function noticeEl(text, { id, ts, kind } = {}) {
  const line = el("div", "notice");
  if (kind) line.classList.add(...kind.split(" "));
  if (id) line.dataset.id = id;
  line.append(el("span", "notice-text", text));
  if (ts) line.append(timeEl(ts));
  return line;
}

export function dayEl(ts) {
  const d = el("div", "day");
  d.append(el("span", null, dayLabel(ts)));
  return d;
}

/**
 * A member list item; with `onMessage`, a "Message" button that calls it
 * with the member's user id; with `onModerate`, a menu of a moderator's
 * actions (a <details>: keyboard and screen readers open it as they open
 * any disclosure) that calls it with the member and the choice.
 */
export function memberEl(member, own, tag, onMessage, onModerate) {
  const li = el("li", own ? "member own" : "member");
  li.dataset.memberId = member.member_id;
  li.dataset.username = member.username;
  li.dataset.userId = member.user_id ?? "";
  li.append(avatar(member.username));
  const who = el("span", "who");
  who.append(el("span", "member-name", member.username));
  if (tag) who.append(el("span", "name-tag", tag));
  if (own) who.append(el("span", "you-tag", "you"));
  li.append(who);
  if (member.gateway) li.append(el("span", "gw", member.gateway));
  if (onMessage) {
    const dm = el("button", "member-dm link-btn", "Message");
    dm.type = "button";
    dm.title = `Write to ${member.username} alone`;
    dm.addEventListener("click", () => onMessage(member.user_id));
    li.append(dm);
  }
  if (onModerate) li.append(moderationMenu(member, onModerate));
  li.title = `${member.username} — on ${member.gateway ?? "?"} since ${clock(member.joined_at ?? Date.now())}`;
  return li;
}

function moderationMenu(member, onModerate) {
  const menu = el("details", "member-mod");
  const summary = el("summary", "member-mod-open", "⋯");
  summary.setAttribute("aria-label", `Moderate ${member.username}`);
  summary.title = `Moderate ${member.username}`;
  const list = el("div", "member-mod-list");
  for (const choice of MODERATION_CHOICES) {
    const b = el("button", "member-mod-choice", choice.label);
    b.type = "button";
    b.dataset.mod = choice.key;
    b.addEventListener("click", () => {
      menu.open = false;
      onModerate(member, choice);
    });
    list.append(b);
  }
  menu.append(summary, list);
  return menu;
}

export function bannerEl(title, detail, onDismiss) {
  const b = el("div", "error-banner");
  b.setAttribute("role", "alert");
  const words = el("div", "error-words");
  words.append(el("strong", "error-title", title));
  if (detail && detail !== title) words.append(el("span", "error-detail", detail));
  const close = el("button", "dismiss", "×");
  close.type = "button";
  close.setAttribute("aria-label", "Dismiss");
  close.addEventListener("click", () => onDismiss(b));
  b.append(words, close);
  return b;
}

/**
 * A search hit: a button (keyboard and screen readers reach it) with the
 * author, the time and the text, its found words in <mark>. `parts` is
 * js/search.js `markedParts`: every piece goes in as text.
 */
export function hitEl(message, parts, onOpen) {
  const li = el("li", "hit");
  li.dataset.seq = String(message.seq);
  const open = el("button", "hit-open");
  open.type = "button";
  const meta = el("span", "hit-meta");
  meta.append(el("span", "author", message.username ?? "?"), timeEl(message.ts));
  const text = el("span", "hit-text");
  for (const part of parts) text.append(part.marked ? el("mark", null, part.text) : document.createTextNode(part.text));
  open.append(meta, text);
  // A message of files shows what it holds (search finds its text only).
  const files = Array.isArray(message.attachments) ? message.attachments : [];
  if (files.length > 0) {
    const names = files.map((a) => a.name).join(", ");
    open.append(el("span", "hit-files", files.length === 1 ? `📎 ${names}` : `📎 ${files.length} files: ${names}`));
  }
  open.addEventListener("click", () => onOpen());
  li.append(open);
  return li;
}

/**
 * A file in the composer (js/uploads.js entry): its name and size, a
 * progress bar while it goes, why it failed and "Retry" when trying again
 * may help, and × (cancel, or remove).
 */
export function uploadEl(entry, progress, { onRemove, onRetry }) {
  const li = el("li", "upload");
  li.dataset.state = entry.state;
  li.dataset.key = String(entry.key);
  const top = el("div", "upload-top");
  top.append(el("span", "upload-name", entry.name), el("span", "upload-size", humanSize(entry.size)));
  const remove = el("button", "upload-remove icon-btn", "×");
  remove.type = "button";
  const going = entry.state === "uploading" || entry.state === "queued";
  remove.setAttribute("aria-label", going ? `Cancel the upload of ${entry.name}` : `Remove ${entry.name}`);
  remove.title = going ? "Cancel" : "Remove";
  remove.addEventListener("click", () => onRemove(entry.key));
  top.append(remove);
  li.append(top);
  if (going) {
    const bar = el("progress", "upload-progress");
    bar.max = 1;
    if (entry.state === "uploading") bar.value = progress;
    else bar.removeAttribute("value"); // indeterminate while it waits its turn
    bar.setAttribute("aria-label", `Uploading ${entry.name}`);
    li.append(bar);
  }
  if (entry.state === "failed" && entry.error) {
    const why = el("div", "upload-error", entry.error.text);
    if (entry.error.detail) why.title = entry.error.detail;
    li.append(why);
    if (entry.error.retry) {
      const retry = el("button", "upload-retry link-btn", "Retry");
      retry.type = "button";
      retry.addEventListener("click", () => onRetry(entry.key));
      li.append(retry);
    }
  }
  return li;
}
