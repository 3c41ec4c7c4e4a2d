// What survives a reload. localStorage is per origin (host:port), so each
// gateway port keeps its own name and rooms; sessionStorage is per tab.
// Storage can throw (private mode, quota): the page then just forgets.

const KEY_NAME = "chat.name";
const KEY_ROOMS = "chat.rooms";
const KEY_ACTIVE = "chat.active";
const KEY_TAB = "chat.tab";
const KEY_SESSION = "chat.session";

function get(store, key) {
  try {
    return store.getItem(key);
  } catch {
    return null;
  }
}

function set(store, key, value) {
  try {
    if (value == null) store.removeItem(key);
    else store.setItem(key, value);
  } catch {
    /* forgetting is acceptable */
  }
}

export const loadName = () => get(localStorage, KEY_NAME) ?? "";
export const saveName = (name) => set(localStorage, KEY_NAME, name);

/** [{room, username}] in the order they were joined. */
export function loadRooms() {
  try {
    const list = JSON.parse(get(localStorage, KEY_ROOMS) ?? "[]");
    return Array.isArray(list) ? list.filter((r) => r && typeof r.room === "string" && typeof r.username === "string") : [];
  } catch {
    return [];
  }
}
export const saveRooms = (rooms) => set(localStorage, KEY_ROOMS, JSON.stringify(rooms));

export const loadActive = () => get(localStorage, KEY_ACTIVE);
export const saveActive = (room) => set(localStorage, KEY_ACTIVE, room);

/**
 * A short random id for this tab, kept across reloads of the tab. Every
 * `client_id` this tab sends starts with it, so the tab recognises its own
 * messages in history even after a reconnect gave it a new member id.
 */
export function tabId() {
  let id = get(sessionStorage, KEY_TAB);
  if (!id) {
    const bytes = crypto.getRandomValues(new Uint8Array(6));
    id = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    set(sessionStorage, KEY_TAB, id);
  }
  return id;
}

/** What a `welcome` gives out as `session` (docs/protocol.md): anything else would only get a 400. */
const SESSION_RE = /^[A-Za-z0-9_-]{43}$/;

/**
 * This tab's session token from the last `welcome`, or null. Kept per tab
 * (sessionStorage): a reconnect or a reload of the tab resumes the same
 * member, while another tab is another member. It is a credential for
 * that member: never shown, never logged.
 */
export function loadSession() {
  const token = get(sessionStorage, KEY_SESSION);
  return token && SESSION_RE.test(token) ? token : null;
}
export const saveSession = (token) => set(sessionStorage, KEY_SESSION, typeof token === "string" ? token : null);
