// What the person does to messages, in the DOM: the toolbar on each
// message (reply, react, edit, delete), the reaction chips, a reply's
// quote, the emoji picker, the inline editor, the confirmation before a
// delete or a moderator's action, and the keys of the composer that reach
// them (Escape drops the reply, ArrowUp in an empty box edits your last
// message). One click listener on #messages serves every message of every
// list (the buttons carry `data-action`, js/messageparts.js), so a message
// drawn again needs no wiring. What each action does goes through
// `protocol` (js/changes.js); nothing here keeps state but what is open.

import { PICKER_EMOJI } from "./lifecycle.js";
import { editorEl } from "./messageparts.js";
import { ui } from "./screen.js";

/**
 * Asks the person to agree to `text` in the confirmation dialog (a modal
 * <dialog>: Escape or "Cancel" says no). `ok` is the agreeing button's
 * label. Resolves to whether they agreed.
 */
export function confirmAction(text, { detail = "", ok = "Delete" } = {}) {
  const dialog = ui.confirmDialog;
  if (dialog.open) dialog.close("cancel");
  ui.confirmText.textContent = text;
  ui.confirmDetail.textContent = detail;
  ui.confirmDetail.hidden = !detail;
  ui.confirmOk.textContent = ok;
  dialog.returnValue = "";
  dialog.showModal();
  ui.confirmCancel.focus(); // the safe answer is the one Enter gives
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

/**
 * Wires the message actions. `store` says which room is on screen;
 * `protocol` is js/protocol.js's.
 */
export function setUpMessageActions({ store, protocol }) {
  const picker = createPicker();

  /** The message element's room and id, when it is a stored message of the room on screen. */
  const target = (node) => {
    const msg = node.closest(".msg[data-id]");
    const room = store.active;
    return msg && room ? { msg, room, id: msg.dataset.id } : null;
  };

  ui.messages.addEventListener("click", (e) => {
    const button = e.target.closest("[data-action]");
    if (!button || !ui.messages.contains(button)) return;
    const action = button.dataset.action;
    if (action === "quote") {
      const seq = Number(button.dataset.replySeq);
      if (Number.isFinite(seq) && seq > 0) protocol.jumpTo(seq);
      return;
    }
    const t = target(button);
    if (!t) return;
    switch (action) {
      case "reply":
        if (protocol.startReply(t.room, t.id)) ui.composer.focus();
        break;
      case "react":
        picker.open(button, (emoji) => protocol.react(t.room, t.id, emoji));
        break;
      case "toggle-reaction":
        protocol.react(t.room, t.id, button.dataset.emoji);
        break;
      case "edit":
        openEditor(t.msg, t.room, t.id);
        break;
      case "delete":
        askDelete(t.room, t.id);
        break;
    }
  });

  async function askDelete(room, id) {
    const message = room.messages.get(id);
    if (!message) return;
    const yours = room.mayEdit(message);
    const agreed = await confirmAction(yours ? "Delete this message?" : `Delete ${message.username}'s message?`, {
      detail: yours ? "Everyone will see that a message was deleted." : "Everyone will see that a moderator deleted it.",
    });
    if (agreed && store.get(room.name) === room) protocol.remove(room, id);
  }

  /** Opens the inline editor in message element `msg` (focused, at the end of its text). */
  function openEditor(msg, room, id) {
    const message = room.messages.get(id);
    if (!message || !room.mayEdit(message)) return;
    const open = msg.querySelector(".editor textarea");
    if (open) return open.focus();
    const text = msg.querySelector(".text");
    if (!text) return;
    const editor = editorEl(message.text);
    text.replaceWith(editor);
    msg.classList.add("editing");
    const area = editor.querySelector("textarea");
    const close = () => {
      editor.remove();
      msg.classList.remove("editing");
      room.redraw(room.messages.get(id) ?? message);
      ui.composer.focus();
    };
    area.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        close();
      } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        const why = protocol.edit(room, id, area.value);
        if (why) editor.querySelector(".edit-error").textContent = why;
        else close();
      }
    });
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }

  // The composer's keys: Escape drops the reply; ArrowUp in an empty box edits your last message.
  ui.composer.addEventListener("keydown", (e) => {
    const room = store.active;
    if (!room || e.isComposing) return;
    if (e.key === "Escape" && room.replyingTo) {
      e.preventDefault();
      e.stopPropagation();
      protocol.cancelReply(room);
    } else if (e.key === "ArrowUp" && ui.composer.value === "") {
      const last = protocol.lastEditable(room);
      const node = last && room.history.shown.list.el.querySelector(`.msg[data-id="${CSS.escape(last.id)}"]`);
      if (!node) return;
      e.preventDefault();
      node.scrollIntoView({ block: "nearest" });
      openEditor(node, room, last.id);
    }
  });
  ui.replyCancel.addEventListener("click", () => {
    protocol.cancelReply(store.active);
    ui.composer.focus();
  });
}

/**
 * The emoji picker: one popover for every message, opened beside the
 * button that asked, the first emoji focused; arrow keys move along it,
 * Escape or a click elsewhere closes it, focus back on that button.
 */
function createPicker() {
  const box = ui.emojiPicker;
  for (const emoji of PICKER_EMOJI) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "pick";
    b.dataset.emoji = emoji;
    b.textContent = emoji;
    b.setAttribute("aria-label", `React with ${emoji}`);
    box.append(b);
  }
  let onPick = null;
  let opener = null;

  const close = ({ refocus = true } = {}) => {
    if (box.hidden) return;
    box.hidden = true;
    onPick = null;
    if (refocus && opener?.isConnected) opener.focus();
    opener = null;
  };

  box.addEventListener("click", (e) => {
    const b = e.target.closest(".pick");
    if (!b) return;
    const pick = onPick;
    close();
    pick?.(b.dataset.emoji);
  });
  box.addEventListener("keydown", (e) => {
    const picks = [...box.querySelectorAll(".pick")];
    const at = picks.indexOf(document.activeElement);
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      close();
    } else if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      e.preventDefault();
      const step = e.key === "ArrowRight" ? 1 : -1;
      picks[(at + step + picks.length) % picks.length].focus();
    } else if (e.key === "Tab") {
      close({ refocus: false });
    }
  });
  document.addEventListener("pointerdown", (e) => {
    if (!box.hidden && !box.contains(e.target) && e.target !== opener) close({ refocus: false });
  });
  ui.messages.addEventListener("scroll", () => close({ refocus: false }));

  return {
    open(anchor, pick) {
      if (!box.hidden && opener === anchor) return close();
      onPick = pick;
      opener = anchor;
      box.hidden = false;
      // Fixed beside the button, kept inside the window.
      const r = anchor.getBoundingClientRect();
      const w = box.offsetWidth;
      const h = box.offsetHeight;
      box.style.left = `${Math.max(8, Math.min(r.right - w, innerWidth - w - 8))}px`;
      box.style.top = `${r.top - h - 6 < 8 ? r.bottom + 6 : r.top - h - 6}px`;
      box.querySelector(".pick")?.focus();
    },
  };
}
