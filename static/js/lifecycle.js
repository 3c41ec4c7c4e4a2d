// A message's later life as plain data (docs/protocol.md, `message` and
// `change`): applying an `edit`, `delete` or `react` change to the message
// object the page shows, the reaction a click on a chip asks for, how a
// reply's quote reads, and the frames the page sends for them. Pure
// functions over the message objects of js/roomstate.js, no DOM:
// unit-tested in test/lifecycle.test.js.
//
//   `change` frame ──▶ RoomState.applyChange ──▶ applyChange(message, change, mine)
//                                            ──▶ quotes of a deleted one: quoteDeleted(reply)
//   a chip clicked ──▶ reactFrame(room, message, emoji): add unless it is yours already

/** The reactions the picker offers, in its order. */
export const PICKER_EMOJI = Object.freeze(["👍", "❤️", "😂", "🎉", "😮", "😢", "🙏", "👀"]);

/** At most this many distinct emoji on one message (the server refuses a 21st: `too_many_reactions`). */
export const MAX_REACTIONS = 20;

/** A reply's quote is at most this many characters (the server cuts it so too). */
export const QUOTE_CHARS = 100;

/** Whose message or change it is: the sender's user (`user_id`), else its member id. */
export const userOf = (ev) => (typeof ev?.user_id === "string" && ev.user_id !== "" ? ev.user_id : (ev?.member_id ?? ""));

/**
 * Applies `change` (a `change` frame for this message) to `message` in
 * place. `mine` says whether the change was made by the reader (their user
 * or one of this tab's member ids): a reaction's `mine` follows it.
 * Returns whether the message changed.
 */
export function applyChange(message, change, mine = false) {
  if (!message || !change || change.target_id !== message.id) return false;
  switch (change.action) {
    case "edit":
      if (message.deleted) return false; // an edit read back after the delete: nothing to show
      message.text = typeof change.text === "string" ? change.text : "";
      message.edited = change.ts;
      return true;
    case "delete":
      message.deleted = change.ts ?? Date.now();
      message.text = "";
      delete message.attachments;
      delete message.reactions;
      if (message.reply_to) message.reply_to = { ...message.reply_to, quote: undefined };
      if (change.by_moderator) message.deleted_by = change.username ?? "a moderator";
      return true;
    case "react":
      return react(message, change.emoji, change.count, mine ? change.added === true : null);
    default:
      return false;
  }
}

/**
 * Sets `emoji`'s count on `message` to `count` (0 takes the chip away; a
 * new emoji goes last, as the server orders them: first added first).
 * `mine` is true/false when the reader's own reaction changed, null when
 * someone else's did (the reader's stays as it was).
 */
export function react(message, emoji, count, mine = null) {
  if (typeof emoji !== "string" || emoji === "" || !Number.isFinite(count)) return false;
  const list = Array.isArray(message.reactions) ? message.reactions : [];
  const at = list.findIndex((r) => r.emoji === emoji);
  if (count <= 0) {
    if (at < 0) return false;
    list.splice(at, 1);
  } else if (at < 0) {
    list.push({ emoji, count, mine: mine === true });
  } else {
    list[at] = { ...list[at], count, mine: mine == null ? Boolean(list[at].mine) : mine };
  }
  message.reactions = list;
  return true;
}

/** A reply whose original was deleted: its quote goes, and it says so. */
export function quoteDeleted(message, targetId) {
  if (message?.reply_to?.id !== targetId || message.reply_to.deleted) return false;
  message.reply_to = { ...message.reply_to, deleted: true, quote: undefined };
  return true;
}

/** Whether the reader put `emoji` on `message`. */
export const reactedWith = (message, emoji) =>
  (message?.reactions ?? []).some((r) => r.emoji === emoji && r.mine === true);

/**
 * The `react` frame a click on `emoji` asks for: takes the reader's away
 * when it is there, else adds it. Null when the message takes no more
 * emoji (20 distinct ones, none of them this).
 */
export function reactFrame(room, message, emoji) {
  const mine = reactedWith(message, emoji);
  if (!mine) {
    const list = message?.reactions ?? [];
    if (list.length >= MAX_REACTIONS && !list.some((r) => r.emoji === emoji)) return null;
  }
  return { type: "react", room, id: message.id, emoji, add: !mine };
}

/**
 * How a reply's quote reads: `{name, text, deleted}`. A deleted original
 * reads "deleted message"; a long quote is cut (the server cuts stored
 * ones; the page cuts the one it shows above the composer the same way).
 */
export function quoteOf(reply) {
  if (!reply) return null;
  const name = reply.username ?? "someone";
  if (reply.deleted) return { name, text: "deleted message", deleted: true };
  return { name, text: cut(reply.quote ?? reply.text ?? ""), deleted: false };
}

/** At most QUOTE_CHARS characters (not UTF-16 units: an emoji is one), `…` when cut; one line. */
export function cut(text, max = QUOTE_CHARS) {
  const flat = String(text).replace(/\s+/g, " ").trim();
  const chars = [...flat];
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : flat;
}

/** What the bar above the composer holds while replying to `message`: the `reply_to` and its look. */
export function replyTarget(message) {
  return { id: message.id, seq: message.seq, username: message.username, quote: cut(message.text ?? "") };
}

/** What a deleted message says in its place. */
export function deletedText(message) {
  if (!message?.deleted) return "";
  return message.deleted_by ? `message deleted by a moderator (${message.deleted_by})` : "message deleted";
}
