// The `client_id` every `send` carries (docs/protocol.md): this tab's id
// (js/storage.js `tabId`), the time and a counter. The room-service stores
// a client id once, so a send retried after a reconnect appears once; the
// tab's prefix lets the tab tell its own messages in history, even after a
// reconnect gave it another member id.

/** Client ids for the tab `tab`: `next()` makes one, `isOwn(cid)` tells this tab's. */
export function clientIds(tab, now = Date.now) {
  let sent = 0;
  return {
    next: () => `${tab}-${now().toString(36)}-${(sent++).toString(36)}`,
    isOwn: (cid) => typeof cid === "string" && cid.startsWith(`${tab}-`),
  };
}
