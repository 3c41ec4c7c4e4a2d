//! Attachments: the rules both tiers share about files posted in rooms.
//!
//! A browser uploads a file to a gateway (`POST /upload`), which stores its
//! bytes (content-addressed by SHA-256) and records it at the room-service
//! (`Attach`), which picks its [attachment id](is_attachment_id). A `send`
//! then names up to [`MAX_ATTACHMENTS`] ids; the room-service checks them
//! and stores their metadata inside the message, so history, resume and the
//! archive carry them like the text. `docs/files.md` has the whole flow.

/// Attachments one message may carry.
pub const MAX_ATTACHMENTS: usize = 10;

/// `MAX_UPLOAD_BYTES`' default: 25 MiB.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 25 * 1024 * 1024;

/// `MAX_IMAGE_PIXELS`' default: width × height an image may claim before it
/// is refused, read from its header before anything is decoded.
pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 40_000_000;

/// A thumbnail's longer side, in pixels (smaller images keep their size).
pub const THUMB_SIDE: u32 = 400;

/// A file name's length limit, in bytes of UTF-8.
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// What an attachment id starts with; 32 lowercase hex digits follow.
pub const ATTACHMENT_ID_PREFIX: &str = "at-";

/// A fresh attachment id: [`ATTACHMENT_ID_PREFIX`] and 128 random bits.
pub fn new_attachment_id(random: u128) -> String {
    format!("{ATTACHMENT_ID_PREFIX}{random:032x}")
}

/// Whether `id` has an attachment id's shape (nothing says it exists).
pub fn is_attachment_id(id: &str) -> bool {
    id.strip_prefix(ATTACHMENT_ID_PREFIX)
        .is_some_and(|hex| hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Whether `blob` is a blob's name: 64 lowercase hex digits (a SHA-256).
pub fn is_blob(blob: &str) -> bool {
    blob.len() == 64 && blob.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Characters that reorder text for display: a name holding them can show
/// as something it is not (`invoice<U+202E>fdp.exe` shows as `invoiceexe.pdf`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Checks a file name as a browser sent it: the name a file is shown and
/// downloaded under. Refused, with why: empty, longer than
/// [`MAX_FILE_NAME_BYTES`], a path (`/` or `\`, `.` or `..`), control or
/// bidirectional-override characters. Leading and trailing spaces are
/// trimmed.
pub fn check_file_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("the file has no name".into());
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        return Err(format!("the file name is {} bytes; at most {MAX_FILE_NAME_BYTES}", name.len()));
    }
    if name.contains(['/', '\\']) || name == "." || name == ".." {
        return Err(format!("the file name {name:?} is a path; send the name only"));
    }
    if let Some(c) = name.chars().find(|&c| c.is_control() || is_bidi_control(c)) {
        return Err(format!("the file name holds the control character U+{:04X}", c as u32));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attachment_ids_have_one_shape() {
        let id = new_attachment_id(0xabc);
        assert_eq!(id, "at-00000000000000000000000000000abc");
        assert!(is_attachment_id(&id));
        for bad in
            ["", "at-", "at-ABC00000000000000000000000000000", "xx-00000000000000000000000000000abc", &format!("{id}0")]
        {
            assert!(!is_attachment_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn file_names_that_are_paths_or_hide_what_they_are_are_refused() {
        assert_eq!(check_file_name("  cat.png ").as_deref(), Ok("cat.png"));
        assert_eq!(check_file_name("résumé 2026.pdf").as_deref(), Ok("résumé 2026.pdf"));
        for bad in
            ["", "   ", "../etc/passwd", "a/b.png", "a\\b.png", "..", "bad\nname", "invoice\u{202E}fdp.exe", "x\u{0}y"]
        {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_file_name(&"a".repeat(256)).is_err());
        assert!(check_file_name(&"a".repeat(255)).is_ok());
    }
}
