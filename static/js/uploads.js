// Files on their way into a message, as plain data: one entry per file the
// person attached (button, paste or drop), in the room it was attached in.
// An entry is queued, uploading (with progress), done (it holds the
// attachment the gateway answered with) or failed (with why, in words,
// and whether trying again may help). Done entries wait in the composer
// as chips and go with the next `send` (`take`); a failed one stays until
// it is tried again or removed.
//
// The transfer itself (an XHR POST /upload, docs/files.md) comes in as
// `transfer(entry, {progress, done, fail}) -> abort`, so this runs under
// Node's test runner with a stand-in (test/uploads.test.js). No DOM.
//
// Bounds: at most MAX_ATTACHMENTS entries per room (what one message may
// carry; the 11th file is refused with a sentence saying so), and at most
// MAX_PARALLEL transfers at once for the whole page (the rest wait, queued:
// a drop of ten photos does not open ten uploads against the gateway's
// per-user rate limit). A file over the gateway's size limit is refused
// before a byte is sent.

import { humanSize } from "./format.js";

/** Attachments one message may carry (chat_proto::files::MAX_ATTACHMENTS). */
export const MAX_ATTACHMENTS = 10;
/** Transfers under way at once, for the whole page. */
export const MAX_PARALLEL = 3;

export class Uploads {
  /**
   * @param {object} deps
   * @param {(entry: object, on: {progress(loaded: number, total: number), done(attachment: object), fail(status: number, body: object|null, retryAfter: number|null)}) => () => void} deps.transfer
   *   starts sending `entry.file` to `entry.room`; returns what aborts it
   * @param {() => number} [deps.maxBytes] the gateway's upload limit, read when a file is added
   * @param {(room: string) => boolean} [deps.canStart] whether uploads to `room` may start now
   *   (the tab is connected and in the room: the gateway lets only members upload)
   * @param {() => void} [deps.onChange] something changed: redraw
   */
  constructor({ transfer, maxBytes = () => 25 * 1024 * 1024, canStart = () => true, onChange = () => {} }) {
    this.transfer = transfer;
    this.maxBytes = maxBytes;
    this.canStart = canStart;
    this.onChange = onChange;
    /** key → entry, in the order they were added (a Map keeps it). */
    this.entries = new Map();
    this.nextKey = 1;
  }

  /**
   * Attach `files` (File-like: name, size, type) to the next message in
   * `room`. Returns a sentence saying what was not attached and why, or
   * "" when all were.
   */
  add(room, files) {
    const notes = [];
    let inRoom = this.of(room).length;
    const max = this.maxBytes();
    for (const file of files) {
      if (inRoom >= MAX_ATTACHMENTS) {
        notes.push(`At most ${MAX_ATTACHMENTS} files go with one message: send these first, then attach the rest.`);
        break;
      }
      const key = this.nextKey++;
      const entry = {
        key,
        room,
        file,
        name: fileName(file),
        size: file.size,
        type: file.type || "",
        state: "queued",
        loaded: 0,
        attachment: null,
        error: null,
        abort: null,
      };
      if (file.size > max) {
        entry.state = "failed";
        entry.error = { text: `${entry.name} is ${humanSize(file.size)}; files can be at most ${humanSize(max)}.`, retry: false };
      } else if (file.size === 0) {
        entry.state = "failed";
        entry.error = { text: `${entry.name} is empty.`, retry: false };
      }
      this.entries.set(key, entry);
      inRoom += 1;
    }
    this.pump();
    this.onChange();
    return notes.join(" ");
  }

  /** The entries of `room`, in the order they were attached. */
  of(room) {
    return [...this.entries.values()].filter((e) => e.room === room);
  }

  /** Entries of `room` still on their way (queued or uploading). */
  busy(room) {
    return this.of(room).filter((e) => e.state === "queued" || e.state === "uploading").length;
  }

  /** The attachments of `room` ready to go with a message. */
  ready(room) {
    return this.of(room)
      .filter((e) => e.state === "done")
      .map((e) => e.attachment);
  }

  /** The ready attachments of `room`, taken out of the composer to go with a `send`. */
  take(room) {
    const out = [];
    for (const e of this.of(room)) {
      if (e.state !== "done") continue;
      out.push(e.attachment);
      this.entries.delete(e.key);
    }
    if (out.length) this.onChange();
    return out;
  }

  /** Stop (if under way) and forget an entry: its × was clicked. */
  remove(key) {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    if (e.state === "uploading") e.abort?.();
    this.pump();
    this.onChange();
  }

  /** Try a failed entry again. */
  retry(key) {
    const e = this.entries.get(key);
    if (!e || e.state !== "failed" || !e.error?.retry) return;
    Object.assign(e, { state: "queued", loaded: 0, error: null });
    this.pump();
    this.onChange();
  }

  /** Forget every entry of `room` (the room was left), stopping those under way. */
  forget(room) {
    for (const e of this.of(room)) {
      this.entries.delete(e.key);
      if (e.state === "uploading") e.abort?.();
    }
    this.pump();
    this.onChange();
  }

  /**
   * Start queued entries, oldest first, while fewer than MAX_PARALLEL are
   * under way and their room lets them (call again when it may: a
   * `welcome`, a `joined`).
   */
  pump() {
    let running = [...this.entries.values()].filter((e) => e.state === "uploading").length;
    for (const e of this.entries.values()) {
      if (running >= MAX_PARALLEL) break;
      if (e.state !== "queued" || !this.canStart(e.room)) continue;
      running += 1;
      this.begin(e);
    }
  }

  begin(e) {
    e.state = "uploading";
    e.loaded = 0;
    // Callbacks of a transfer that was removed or restarted meanwhile change nothing.
    const live = () => this.entries.get(e.key) === e && e.state === "uploading" && e.abort === abort;
    let abort = null;
    const settle = (patch) => {
      if (!live()) return;
      Object.assign(e, patch, { abort: null });
      this.pump();
      this.onChange();
    };
    abort = this.transfer(e, {
      progress: (loaded, total) => {
        if (!live()) return;
        e.loaded = Math.min(loaded, total || e.size);
        this.onChange();
      },
      done: (attachment) => settle({ state: "done", loaded: e.size, attachment }),
      fail: (status, body, retryAfter) =>
        settle({ state: "failed", error: uploadError(e, status, body, retryAfter, this.maxBytes()) }),
    });
    e.abort = abort;
  }
}

/** How far along `entry` is, 0..1. */
export function fraction(entry) {
  if (entry.state === "done") return 1;
  return entry.size > 0 ? Math.min(1, entry.loaded / entry.size) : 0;
}

/** A file's name as it will be sent; a pasted screenshot often has none worth keeping. */
export function fileName(file) {
  const name = String(file.name ?? "").trim();
  if (name && name !== "image.png") return name;
  const ext = { "image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp" }[file.type] ?? "bin";
  const stamp = new Date().toISOString().slice(0, 19).replace("T", " ").replaceAll(":", ".");
  return name === "image.png" || file.type?.startsWith("image/") ? `Pasted image ${stamp}.${ext}` : `file.${ext}`;
}

/**
 * Why an upload failed, in words a person can act on, from the HTTP
 * status and the gateway's `{code, message}` (docs/files.md), and whether
 * trying again may help. Status 0 is a transfer that never got an answer.
 */
export function uploadError(entry, status, body, retryAfter, maxBytes) {
  const code = typeof body?.code === "string" ? body.code : "";
  const said = typeof body?.message === "string" ? body.message : "";
  const name = entry.name;
  const later = Number.isFinite(retryAfter) && retryAfter > 0 ? ` Try again in ${Math.ceil(retryAfter)} s.` : " Try again in a moment.";
  const by = (text, retry) => ({ text, retry, detail: said, code: code || String(status) });
  if (status === 0) return by(`${name} was not sent: the connection to the server failed.`, true);
  switch (code || status) {
    case "too_big":
    case 413: {
      // The gateway's message names its limit ("over N bytes"), which a welcome may not have told.
      const limit = Number(/over (\d+) bytes/.exec(said)?.[1]) || maxBytes;
      return by(`${name} is too big: files can be at most ${humanSize(limit)}.`, false);
    }
    case "not_an_image":
    case 415:
      return by(`${name} says it is an image, but its contents are not one.`, false);
    case "bad_image":
    case 422:
      return by(`${name} can't be used as an image: it is too large in pixels or damaged.`, false);
    case "forbidden":
    case 403:
      return by(`You are not in #${entry.room}: join it, then try again.`, true);
    case "unauthorized":
    case 401:
      return by("The server did not accept this page's sign-in. Reload the page, then try again.", true);
    case "rate_limited":
    case 429:
      return by(`Too many uploads in a short time.${later}`, true);
    case "storage_unavailable":
      return by(`File storage is unavailable right now.${later}`, true);
    case "busy":
      return by(`The server is busy with other uploads.${later}`, true);
    case "bad_request":
    case 400:
      return by(`${name} was refused: ${said || "the server could not read the upload"}.`, false);
    default:
      if (status === 503 || code === "unavailable") return by(`The chat service can't be reached right now.${later}`, true);
      return by(`${name} was not stored: the server had a problem (${status || code}).`, true);
  }
}
