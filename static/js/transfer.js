// One file's trip to a gateway: `POST /upload?room&name&session[&token]`
// with the file as the body (docs/files.md), by XMLHttpRequest because it
// reports upload progress (fetch does not) and can be aborted. The browser
// streams the File from disk: the page never reads it into memory, so a
// 20 MB photo freezes nothing. This is the `transfer` js/uploads.js is
// given; what the answer means is decided there.

/** An upload with no answer after this long is given up (the connection hung). */
const STALL_MS = 120_000;

/**
 * @param {(entry: object) => string|null} urlFor the upload URL for an entry, or null when
 *   the page has no session yet (the entry then fails with status 0 and can be retried)
 */
export function xhrTransfer(urlFor) {
  return (entry, on) => {
    const url = urlFor(entry);
    if (!url) {
      queueMicrotask(() => on.fail(0, null, null));
      return () => {};
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.timeout = STALL_MS;
    // The gateway decides what the bytes are; this only says what the browser thinks.
    xhr.setRequestHeader("Content-Type", entry.type || "application/octet-stream");
    xhr.upload.onprogress = (e) => on.progress(e.loaded, e.lengthComputable ? e.total : entry.size);
    xhr.onload = () => {
      const body = parse(xhr.responseText);
      if (xhr.status === 201 || xhr.status === 200) {
        if (body && typeof body.id === "string") on.done(body);
        else on.fail(500, { code: "internal", message: "the gateway's answer had no attachment id" }, null);
        return;
      }
      const after = Number.parseInt(xhr.getResponseHeader("Retry-After") ?? "", 10);
      on.fail(xhr.status, body, Number.isFinite(after) ? after : null);
    };
    xhr.onerror = () => on.fail(0, null, null);
    xhr.ontimeout = () => on.fail(0, null, null);
    xhr.send(entry.file);
    return () => xhr.abort();
  };
}

function parse(text) {
  try {
    const v = JSON.parse(text);
    return v && typeof v === "object" ? v : null;
  } catch {
    return null;
  }
}
