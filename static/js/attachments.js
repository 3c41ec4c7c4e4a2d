// A message's attachments on screen (the `attachments` of a `message`
// frame, docs/protocol.md): images as inline thumbnails, everything else
// as a file chip (name, type, size) that downloads the file. A thumbnail's
// width and height are set from the frame before it loads, so the list
// does not jump as images come in. A click on a thumbnail opens the full
// image in the lightbox (index.html's <dialog id="lightbox">), which a
// click anywhere or Escape closes.
//
// URLs in a frame are relative and signed (`/files/<id>?exp=…&sig=…`): any
// gateway serves them, and the page resolves them against the gateway it
// talks to (`base`, js/endpoints.js `httpBase`). Names and types go in as
// text, URLs only as attributes of <img>/<a>, never as HTML.
//
// The functions above the DOM part are pure (test/attachments.test.js).

import { humanSize } from "./format.js";

/** The longest side a thumbnail is shown at when the frame has no thumb (chat_proto::files::THUMB_SIDE). */
export const THUMB_SIDE = 400;

/** Whether `a` is shown as an image: it has a size and something to show inline. */
export function isImage(a) {
  return (
    typeof a?.type === "string" &&
    a.type.startsWith("image/") &&
    Number.isSafeInteger(a.width) &&
    Number.isSafeInteger(a.height) &&
    a.width > 0 &&
    a.height > 0
  );
}

/**
 * What a thumbnail shows and at which size: the frame's `thumb`, else the
 * file itself fitted into THUMB_SIDE × THUMB_SIDE.
 */
export function thumbOf(a) {
  const t = a.thumb;
  if (t && typeof t.url === "string" && t.width > 0 && t.height > 0) return { url: t.url, width: t.width, height: t.height };
  return { url: a.url, ...fitBox(a.width, a.height, THUMB_SIDE) };
}

/** `width` × `height` scaled down (never up) so that the longer side is at most `side`. */
export function fitBox(width, height, side) {
  const scale = Math.min(1, side / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/** A file's kind in a word or two: "PDF", "ZIP archive", "PNG image", or its extension. */
export function typeLabel(type, name) {
  const known = {
    "application/pdf": "PDF",
    "application/zip": "ZIP archive",
    "application/gzip": "GZIP archive",
    "text/plain": "Text",
    "application/octet-stream": "",
  };
  if (typeof type === "string" && type in known && known[type]) return known[type];
  if (typeof type === "string" && /^(image|video|audio)\/[\w.+-]+$/.test(type)) {
    const [kind, sub] = type.split("/");
    return `${sub.replace(/^x-/, "").toUpperCase()} ${kind}`;
  }
  const ext = /\.([A-Za-z0-9]{1,8})$/.exec(String(name ?? ""))?.[1];
  return ext ? ext.toUpperCase() : "File";
}

/** A relative signed URL resolved against the gateway's base; anything but http(s) is dropped. */
export function resolveUrl(url, base) {
  try {
    const u = new URL(String(url), base);
    return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
  } catch {
    return null;
  }
}

// ---- the DOM ------------------------------------------------------------------

/** createElement with a class and optional text (as text), as js/view.js `el` (which imports this module). */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

/** The element showing `list` (a message's attachments), or null when there are none. */
export function attachmentsEl(list, base) {
  if (!Array.isArray(list) || list.length === 0) return null;
  const box = el("div", "attachments");
  for (const a of list) {
    const node = isImage(a) ? thumbEl(a, base) : chipEl(a, base);
    if (node) box.append(node);
  }
  return box;
}

function thumbEl(a, base) {
  const t = thumbOf(a);
  const full = resolveUrl(a.url, base);
  const src = resolveUrl(t.url, base);
  if (!full || !src) return chipEl(a, base);
  const link = el("a", "thumb");
  link.href = full;
  link.dataset.attachment = a.id ?? "";
  link.title = `${a.name} — ${a.width} × ${a.height}, ${humanSize(a.size)}`;
  const img = el("img");
  // Set before the image loads: the line keeps its height, nothing jumps.
  img.width = t.width;
  img.height = t.height;
  img.alt = a.name ?? "image";
  img.decoding = "async";
  img.loading = "lazy";
  img.referrerPolicy = "no-referrer";
  img.src = src;
  link.append(img);
  link.addEventListener("click", (e) => {
    if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return; // a new tab, as asked
    e.preventDefault();
    openLightbox(a, full);
  });
  return link;
}

function chipEl(a, base) {
  const href = resolveUrl(a.url, base);
  const chip = el(href ? "a" : "span", "file-chip");
  chip.dataset.attachment = a.id ?? "";
  if (href) {
    chip.href = href;
    chip.download = a.name ?? "";
    chip.rel = "noreferrer";
  }
  chip.append(el("span", "file-icon", "📄"));
  const words = el("span", "file-words");
  words.append(el("span", "file-name", a.name ?? "file"));
  const meta = [typeLabel(a.type, a.name), humanSize(a.size)].filter(Boolean).join(" · ");
  words.append(el("span", "file-meta", meta));
  chip.append(words);
  chip.title = `Download ${a.name}`;
  return chip;
}

/** Shows the full image of `a` in the lightbox; a click or Escape closes it. */
export function openLightbox(a, src) {
  const box = document.getElementById("lightbox");
  if (!box) return;
  const img = box.querySelector(".lightbox-img");
  img.removeAttribute("src");
  // Its size before it loads, so the box does not grow as it comes in.
  img.width = a.width;
  img.height = a.height;
  img.alt = a.name ?? "image";
  img.src = src;
  box.querySelector(".lightbox-name").textContent = a.name ?? "";
  box.querySelector(".lightbox-meta").textContent = `${a.width} × ${a.height} · ${humanSize(a.size)}`;
  const open = box.querySelector(".lightbox-open");
  open.href = src;
  open.download = a.name ?? "";
  box.showModal();
}

/** Wires the lightbox once: any click closes it (but the download link's), and so does Escape (the dialog's own). */
export function setUpLightbox() {
  const box = document.getElementById("lightbox");
  if (!box) return;
  box.addEventListener("click", (e) => {
    if (e.target.closest(".lightbox-open")) return;
    box.close();
  });
  // Escape closes the dialog; it must not also close the search panel behind it.
  box.addEventListener("keydown", (e) => {
    if (e.key === "Escape") e.stopPropagation();
  });
  box.addEventListener("close", () => box.querySelector(".lightbox-img").removeAttribute("src"));
}
