// What stands over the composer of the room on screen: the bar quoting the
// message the next send replies to (js/changes.js `startReply`), and the
// room's word on whether the reader may write (js/moderation.js: muted
// until a time, removed by a moderator). Draws the state it is given; a
// mute is drawn again each minute (and at its end) by one timer.

import { quoteOf } from "./lifecycle.js";
import { composeBlock } from "./moderation.js";
import { ui } from "./screen.js";

/** A mute's "N more minutes" is drawn again this often. */
const MUTE_TICK_MS = 30_000;

let tick = null;

/** Draws the reply bar and the composer's state for `room` (the room on screen, or null). */
export function renderCompose(room, onRejoin) {
  const reply = quoteOf(room?.replyingTo);
  ui.replyBar.hidden = !reply;
  if (reply) {
    ui.replyName.textContent = reply.name;
    ui.replyQuote.textContent = reply.text;
  }
  clearTimeout(tick);
  tick = null;
  const block = room ? composeBlock(room) : null;
  ui.composeState.hidden = !block;
  ui.composeState.replaceChildren();
  ui.composer.disabled = Boolean(block);
  ui.sendBtn.disabled = !room || Boolean(block);
  ui.attachBtn.disabled = Boolean(block);
  ui.composeState.dataset.kind = block?.kind ?? "";
  if (!block) return;
  ui.composeState.append(block.text);
  if (block.rejoin && onRejoin) {
    const again = document.createElement("button");
    again.type = "button";
    again.className = "link-btn compose-rejoin";
    again.textContent = "Join again";
    again.addEventListener("click", () => onRejoin(room));
    ui.composeState.append(" ", again);
  }
  if (block.until != null) {
    tick = setTimeout(() => renderCompose(room, onRejoin), Math.max(0, Math.min(MUTE_TICK_MS, block.until - Date.now())));
  }
}
