// One room's message list in the page: a detached element (swapped into
// #messages when the room is shown, js/render.js) that draws the lines its
// room's state decides (js/roomstate.js), with the builders of js/view.js.
// It decides nothing: what a line says, whether it groups with the one
// before, where a date goes, all come with the line. Lines come at the
// bottom (`add`) or, from scroll-back, above the top (`prepend`). Others'
// messages that mention the reader are marked (`mentionsMe`, asked as each
// is drawn, since the reader's name may come later than the list).

import { dayEl, el, messageEl, noticeEl, pendingEl } from "./view.js";

export class MessageList {
  /**
   * @param {(text: string) => boolean} [mentionsMe] whether a message's text mentions the reader
   * @param {string} [base] what attachments' relative URLs are resolved against (js/endpoints.js `httpBase`)
   */
  constructor(room, mentionsMe = () => false, base = undefined) {
    this.mentionsMe = mentionsMe;
    this.base = base;
    this.el = el("div", "message-list");
    this.el.dataset.room = room;
    /** client_id → its pending line, oldest first (a Map keeps the order). */
    this.pending = new Map();
    /** A message element → the line it was drawn from, to draw it again (`update`). */
    this.lines = new WeakMap();
  }

  /** Draws `line`: a pending one at the bottom, any other just above the first pending one. */
  add(line) {
    if (line.type === "pending") {
      const node = pendingEl(line.cid, line.username, line.text, line.attachments, line.reply);
      this.pending.set(line.cid, node);
      this.el.append(node);
      return;
    }
    this.el.insertBefore(this.draw(line), this.firstPending());
  }

  /** Draws `lines` (stored lines, oldest first) above the top: older messages, a marker. */
  prepend(lines) {
    this.el.prepend(...lines.map((line) => this.draw(line)));
  }

  /** The topmost date line goes: the page drawn above it ends on its day. */
  dropFirstDay() {
    this.el.querySelector(":scope > .day")?.remove();
  }

  /**
   * Draws message `ev` again where it is (a `change` came for it, or for
   * what it quotes), with the flags its line was drawn with. An editor
   * open in it (js/actions.js) stays open, with what was typed.
   */
  update(ev) {
    const old = this.el.querySelector(`.msg[data-id="${CSS.escape(ev.id)}"]`);
    const line = old && this.lines.get(old);
    if (!line) return;
    const node = this.draw({ ...line, ev });
    for (const cls of ["found", "flash"]) if (old.classList.contains(cls)) node.classList.add(cls);
    const editor = old.querySelector(".editor");
    const text = node.querySelector(".text:not(.deleted-text)");
    if (editor && text) {
      text.replaceWith(editor);
      node.classList.add("editing");
    }
    old.replaceWith(node);
    if (document.activeElement === document.body && editor) editor.querySelector("textarea")?.focus();
  }

  /** The element of the message `seq`, if this list shows it. */
  find(seq) {
    return this.el.querySelector(`.msg[data-seq="${Number(seq)}"]`);
  }

  removePending(cid) {
    this.pending.get(cid)?.remove();
    this.pending.delete(cid);
  }

  firstPending() {
    for (const node of this.pending.values()) return node;
    return null;
  }

  /** The element for a stored line (day, message or notice). */
  draw(line) {
    if (line.type === "message") {
      const node = messageEl(line.ev, { ...line, mention: !line.own && this.mentionsMe(line.ev.text), base: this.base });
      this.lines.set(node, line);
      return node;
    }
    return draw(line);
  }
}

/** The element for a day or notice line. */
function draw(line) {
  switch (line.type) {
    case "day":
      return dayEl(line.ts);
    case "notice": {
      const node = noticeEl(line.text, { ts: line.ts, kind: line.kind });
      if (line.detail) node.title = line.detail;
      return node;
    }
    default:
      throw new Error(`a message list has no line of type ${line.type}`);
  }
}
