// Browser notifications (Notification API) for what the user's inbox
// brings (js/people.js decides what is worth it: a DM message or a mention
// not read yet). The page never asks for permission by itself: the
// "Enable notifications" button (#notify-btn) asks, once the person clicks
// it, and is hidden once they answered (or when the browser has no
// notifications). A notification shows only while the tab is hidden and
// only when permission was granted; clicking it brings the tab forward on
// the room.

const supported = () => typeof Notification !== "undefined";

/** Shows `button` while permission has not been asked; a click asks. */
export function offerNotifications(button) {
  const update = () => {
    button.hidden = !supported() || Notification.permission !== "default";
  };
  update();
  button.addEventListener("click", async () => {
    try {
      await Notification.requestPermission();
    } catch (e) {
      console.debug("notification permission not asked", e);
    }
    update();
  });
}

/**
 * What js/people.js calls with an update worth telling about
 * ({room, reason, last}). `label(room)` names the room as the page does,
 * `open(room)` shows it.
 */
export function notifier({ label, open }) {
  return (n) => {
    if (!supported() || Notification.permission !== "granted" || !document.hidden) return;
    const who = n.last?.username || "Someone";
    const title = n.reason === "mention" ? `${who} mentioned you in ${label(n.room)}` : `${who} wrote to you`;
    try {
      // One notification per room: a newer one replaces it (tag).
      const note = new Notification(title, { body: n.last?.text ?? "", tag: n.room });
      note.onclick = () => {
        window.focus();
        open(n.room);
        note.close();
      };
    } catch (e) {
      console.debug("notification not shown", e); // e.g. Chrome on Android wants a service worker
    }
  };
}
