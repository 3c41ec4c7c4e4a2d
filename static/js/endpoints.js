// Where the page connects: the gateways' WebSocket URLs, and the query each
// attempt carries. Pure functions of the page's address, no DOM, no state.
//
// Without `?ws=` the page talks to the gateway that served it. `?ws=` lists
// one or more WebSocket URLs, comma-separated (development, or a page that
// knows several gateways): after a connection fails or drops, the next
// attempt goes to the next URL, so one gateway going down does not strand
// the page while the others are up.

/** The gateways to try, in order; never empty. */
export function gatewayUrls(loc) {
  const own = `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/ws`;
  const listed = (new URLSearchParams(loc.search).get("ws") ?? "")
    .split(",")
    .map((s) => toWs(s.trim(), loc.href))
    .filter(Boolean);
  return listed.length > 0 ? listed : [own];
}

/** `raw` as an absolute ws:// or wss:// URL (a path or http URL is taken relative to the page), or null. */
function toWs(raw, base) {
  if (!raw) return null;
  try {
    const url = new URL(raw, base);
    if (url.protocol === "http:") url.protocol = "ws:";
    if (url.protocol === "https:") url.protocol = "wss:";
    return url.protocol === "ws:" || url.protocol === "wss:" ? url.href : null;
  } catch {
    return null;
  }
}

/** `base` with `params` set in its query (null or empty values left out). */
export function withParams(base, params) {
  const url = new URL(base);
  for (const [key, value] of Object.entries(params)) {
    if (value) url.searchParams.set(key, value);
  }
  return url.href;
}

/** The page's `?token=<JWT>`, passed on to /ws for gateways run with JWT_SECRET. */
export const pageToken = (loc) => new URLSearchParams(loc.search).get("token");

/**
 * The http(s) address of the gateway behind WebSocket URL `wsUrl`
 * (ws://host:port/ws → http://host:port/): where the page uploads files
 * and what attachments' relative signed URLs are resolved against.
 */
export function httpBase(wsUrl) {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = "/";
  url.search = "";
  url.hash = "";
  return url.href;
}

/** `POST /upload`'s URL for a file called `name` in `room` (docs/files.md). */
export function uploadUrl(base, { room, name, session, token }) {
  return withParams(new URL("upload", base).href, { room, name, session, token });
}
