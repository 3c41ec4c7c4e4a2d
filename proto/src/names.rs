//! The rules every side enforces on names and text, in one place, so the
//! gateway refuses a bad frame with the same words the room-service would
//! use for a bad gRPC call.

use std::fmt;

/// A room name is 1 to this many characters of `[A-Za-z0-9_.-]`.
pub const MAX_ROOM_CHARS: usize = 64;
/// A username is 1 to this many characters after trimming.
pub const MAX_USERNAME_CHARS: usize = 32;
/// A message is 1 to this many bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4096;
/// A client-chosen message id is at most this many characters.
pub const MAX_CLIENT_ID_CHARS: usize = 64;
/// Member ids are chosen by gateways; this bounds what a room-service accepts.
pub const MAX_MEMBER_ID_CHARS: usize = 128;

/// Which rule a value broke, with the words to show a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// A short machine-readable code, e.g. `bad_room`.
    pub code: &'static str,
    /// What was wrong and what would be accepted.
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Invalid {}

fn invalid(code: &'static str, message: String) -> Invalid {
    Invalid { code, message }
}

/// Checks a room name: 1–64 characters of `[A-Za-z0-9_.-]`.
pub fn check_room(room: &str) -> Result<(), Invalid> {
    let ok_len = !room.is_empty() && room.len() <= MAX_ROOM_CHARS;
    let ok_chars = room.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(invalid(
            "bad_room",
            format!(
                "room name {:?} is not allowed: use 1 to {MAX_ROOM_CHARS} characters of letters, digits, '_', '.' or '-'",
                shorten(room)
            ),
        ))
    }
}

/// Checks a username and returns it trimmed: 1–32 characters, no control
/// characters.
pub fn check_username(username: &str) -> Result<&str, Invalid> {
    let name = username.trim();
    let chars = name.chars().count();
    if name.is_empty() {
        return Err(invalid("bad_username", "username is empty: choose a name of 1 to 32 characters".into()));
    }
    if chars > MAX_USERNAME_CHARS {
        return Err(invalid(
            "bad_username",
            format!("username is {chars} characters long: at most {MAX_USERNAME_CHARS} are allowed"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            "bad_username",
            "username contains control characters (newlines, tabs and the like)".into(),
        ));
    }
    Ok(name)
}

/// Checks a message text: 1–4096 bytes, not only white space.
pub fn check_text(text: &str) -> Result<(), Invalid> {
    if text.trim().is_empty() {
        return Err(invalid("empty_text", "message text is empty".into()));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(invalid(
            "text_too_long",
            format!("message text is {} bytes: at most {MAX_TEXT_BYTES} bytes are allowed", text.len()),
        ));
    }
    Ok(())
}

/// Checks an optional client message id: at most 64 characters.
pub fn check_client_id(client_id: &str) -> Result<(), Invalid> {
    if client_id.chars().count() > MAX_CLIENT_ID_CHARS {
        return Err(invalid("bad_client_id", format!("client_id is longer than {MAX_CLIENT_ID_CHARS} characters")));
    }
    Ok(())
}

/// Checks a member id chosen by a gateway: 1–128 characters, no control
/// characters.
pub fn check_member_id(member_id: &str) -> Result<(), Invalid> {
    if member_id.is_empty()
        || member_id.chars().count() > MAX_MEMBER_ID_CHARS
        || member_id.chars().any(char::is_control)
    {
        return Err(invalid(
            "bad_member_id",
            format!(
                "member_id {:?} is not allowed: use 1 to {MAX_MEMBER_ID_CHARS} printable characters",
                shorten(member_id)
            ),
        ));
    }
    Ok(())
}

/// Cuts a value for an error message so a huge bad input is not echoed whole.
fn shorten(value: &str) -> String {
    const KEEP: usize = 80;
    if value.chars().count() <= KEEP {
        value.to_owned()
    } else {
        let head: String = value.chars().take(KEEP).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        let cases = [
            ("general", true),
            ("dev.ops_2-b", true),
            ("", false),
            ("has space", false),
            ("é", false),
            ("a{b}", false),
            (&"x".repeat(64), true),
            (&"x".repeat(65), false),
        ];
        for (room, ok) in cases {
            assert_eq!(check_room(room).is_ok(), ok, "room {room:?}");
        }
    }

    #[test]
    fn usernames() {
        assert_eq!(check_username("  ada  "), Ok("ada"));
        assert_eq!(check_username(&"é".repeat(32)).map(str::len), Ok(64));
        for bad in ["", "   ", "a\nb", &"x".repeat(33)] {
            assert_eq!(check_username(bad).map_err(|e| e.code), Err("bad_username"), "{bad:?}");
        }
    }

    #[test]
    fn texts() {
        assert!(check_text("hi").is_ok());
        assert!(check_text(&"x".repeat(4096)).is_ok());
        assert_eq!(check_text(" \n").map_err(|e| e.code), Err("empty_text"));
        assert_eq!(check_text(&"x".repeat(4097)).map_err(|e| e.code), Err("text_too_long"));
    }

    #[test]
    fn long_values_are_not_echoed_whole() {
        let err = check_room(&"!".repeat(10_000)).unwrap_err();
        assert!(err.message.len() < 300, "{}", err.message);
    }
}
