// The gateway's limits, as its `welcome` sends them (docs/protocol.md):
// the page checks a message's size, a name's length and how many rooms it
// is in before sending, so a person hears about it at once rather than by
// an error frame. The gateway's numbers are the ones that count; these
// are only what the page assumes until the first `welcome` comes.

export const FIRST_LIMITS = Object.freeze({
  max_text_bytes: 4096,
  max_username_chars: 32,
  max_rooms: 32,
  // The gateway's MAX_UPLOAD_BYTES (docs/files.md): a file over it is refused before it is sent.
  max_upload_bytes: 25 * 1024 * 1024,
});

/**
 * `current` with each limit `sent` gives as a positive whole number;
 * anything else in `sent` (missing, malformed, unknown) changes nothing,
 * so a gateway that leaves one out does not leave the page without it.
 */
export function readLimits(current, sent) {
  const next = { ...current };
  for (const key of Object.keys(FIRST_LIMITS)) {
    const value = sent?.[key];
    if (Number.isSafeInteger(value) && value > 0) next[key] = value;
  }
  return next;
}
