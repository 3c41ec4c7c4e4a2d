//! The rules every side enforces on names and text, in one place, so the
//! gateway refuses a bad frame with the same words the room-service would
//! use for a bad gRPC call.

use std::fmt;

use crate::ErrorCode;

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
    /// What kind of value was refused, e.g. [`ErrorCode::BadRoom`].
    pub code: ErrorCode,
    /// What was wrong and what would be accepted.
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Invalid {}

fn invalid(code: ErrorCode, message: String) -> Invalid {
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
            ErrorCode::BadRoom,
            format!(
                "room name {:?} is not allowed: use 1 to {MAX_ROOM_CHARS} characters of letters, digits, '_', '.' or '-'",
                shorten(room)
            ),
        ))
    }
}

/// The name operator messages are posted under; no member may take it, in
/// any case or look-alike spelling.
pub const OPERATOR_NAME: &str = "system";

/// Checks a username and returns it as it will be shown: trimmed, in
/// Unicode NFC (so two spellings of "é" are one name), 1–32 characters.
///
/// Refused, so nobody can pass for someone else or for nobody: control
/// characters; bidirectional controls (which reorder what follows them);
/// zero-width and other invisible characters; names that are only blank
/// characters; names that read as [`OPERATOR_NAME`] (any case, Cyrillic or
/// Greek look-alikes, fullwidth forms, punctuation between the letters); and
/// names that mix Latin letters with Cyrillic or Greek ones (the classic
/// look-alike trick: "аlice" with a Cyrillic "а").
pub fn check_username(username: &str) -> Result<String, Invalid> {
    use unicode_normalization::UnicodeNormalization;

    let name: String = username.trim().nfc().collect();
    let chars = name.chars().count();
    if name.is_empty() {
        return Err(invalid(ErrorCode::BadUsername, "username is empty: choose a name of 1 to 32 characters".into()));
    }
    if chars > MAX_USERNAME_CHARS {
        return Err(invalid(
            ErrorCode::BadUsername,
            format!("username is {chars} characters long: at most {MAX_USERNAME_CHARS} are allowed"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            ErrorCode::BadUsername,
            "username contains control characters (newlines, tabs and the like): use letters, digits and spaces".into(),
        ));
    }
    if name.chars().any(is_bidi_control) {
        return Err(invalid(
            ErrorCode::BadUsername,
            "username contains right-to-left or left-to-right control characters, which can make a name read as \
             another: remove them"
                .into(),
        ));
    }
    if name.chars().any(is_invisible) {
        return Err(invalid(
            ErrorCode::BadUsername,
            "username contains zero-width or invisible characters: use only characters that show".into(),
        ));
    }
    if name.chars().all(is_blank) {
        return Err(invalid(ErrorCode::BadUsername, "username shows nothing: use letters or digits".into()));
    }
    if skeleton(&name) == OPERATOR_NAME {
        return Err(invalid(
            ErrorCode::BadUsername,
            format!("{OPERATOR_NAME:?} is the name of operator messages and cannot be taken: choose another name"),
        ));
    }
    if mixes_lookalike_scripts(&name) {
        return Err(invalid(
            ErrorCode::BadUsername,
            "username mixes Latin letters with Cyrillic or Greek ones, which can look the same: use one alphabet"
                .into(),
        ));
    }
    Ok(name)
}

/// Bidirectional formatting characters (Unicode's Bidi_Control property).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that take no room or show nothing, in any context: zero-width
/// spaces and joiners, the word joiner and invisible operators, the byte
/// order mark, the soft hyphen, the combining grapheme joiner, Hangul and
/// Khmer fillers, the Mongolian vowel separator and the tag characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{17B4}'
            | '\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2064}'
            | '\u{206A}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Characters that show as empty space: white space, the Braille blank and
/// variation selectors (which only change how the character before them
/// looks, so are fine after one).
fn is_blank(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{2800}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}')
}

/// Cyrillic and Greek letters that look like Latin ones, and the Latin
/// letter they pass for.
const LOOKALIKES: &[(char, char)] = &[
    ('а', 'a'),
    ('в', 'b'),
    ('е', 'e'),
    ('ё', 'e'),
    ('һ', 'h'),
    ('і', 'i'),
    ('ј', 'j'),
    ('к', 'k'),
    ('м', 'm'),
    ('н', 'h'),
    ('о', 'o'),
    ('р', 'p'),
    ('с', 'c'),
    ('ѕ', 's'),
    ('т', 't'),
    ('у', 'y'),
    ('х', 'x'),
    ('ԁ', 'd'),
    ('ԛ', 'q'),
    ('ԝ', 'w'),
    ('α', 'a'),
    ('β', 'b'),
    ('ε', 'e'),
    ('η', 'n'),
    ('ι', 'i'),
    ('κ', 'k'),
    ('ν', 'v'),
    ('ο', 'o'),
    ('ρ', 'p'),
    ('τ', 't'),
    ('υ', 'u'),
    ('χ', 'x'),
    ('γ', 'y'),
];

/// What a name reads as: compatibility forms folded (fullwidth "ｓ" is "s"),
/// lower case, look-alike letters replaced by the Latin letter they pass
/// for, and everything but letters and digits dropped.
pub fn skeleton(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    name.nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| LOOKALIKES.iter().find(|(from, _)| *from == c).map_or(c, |(_, to)| *to))
        .filter(|c| c.is_alphanumeric())
        .collect()
}

fn mixes_lookalike_scripts(name: &str) -> bool {
    let latin = name.chars().any(|c| c.is_ascii_alphabetic() || matches!(c, '\u{00C0}'..='\u{024F}'));
    let cyrillic_or_greek =
        name.chars().any(|c| c.is_alphabetic() && matches!(c, '\u{0370}'..='\u{03FF}' | '\u{0400}'..='\u{052F}'));
    latin && cyrillic_or_greek
}

/// Checks a message text: 1–4096 bytes, not only white space.
pub fn check_text(text: &str) -> Result<(), Invalid> {
    if text.trim().is_empty() {
        return Err(invalid(ErrorCode::EmptyText, "message text is empty".into()));
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(invalid(
            ErrorCode::TextTooLong,
            format!("message text is {} bytes: at most {MAX_TEXT_BYTES} bytes are allowed", text.len()),
        ));
    }
    Ok(())
}

/// Checks an optional client message id: at most 64 characters.
pub fn check_client_id(client_id: &str) -> Result<(), Invalid> {
    if client_id.chars().count() > MAX_CLIENT_ID_CHARS {
        return Err(invalid(
            ErrorCode::BadClientId,
            format!("client_id is longer than {MAX_CLIENT_ID_CHARS} characters"),
        ));
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
            ErrorCode::BadMemberId,
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
        assert_eq!(check_username("  ada  "), Ok("ada".to_owned()));
        assert_eq!(check_username(&"é".repeat(32)).map(|n| n.len()), Ok(64));
        for bad in ["", "   ", "a\nb", &"x".repeat(33)] {
            assert_eq!(check_username(bad).map_err(|e| e.code), Err(ErrorCode::BadUsername), "{bad:?}");
        }
    }

    #[test]
    fn names_that_pass_for_someone_else_or_nobody_are_refused() {
        let cases = [
            ("system", "operator"),
            ("SYSTEM", "operator"),
            ("SyStEm", "operator"),
            ("s y s t e m", "operator"),
            ("[system]", "operator"),
            ("ｓｙｓｔｅｍ", "operator"),
            ("ѕуѕтем", "operator"),
            ("sуstem", "operator"),
            ("bоb", "mixes"),
            ("аlice", "mixes"),
            ("ali\u{200B}ce", "invisible"),
            ("\u{200D}", "invisible"),
            ("\u{3164}", "invisible"),
            ("\u{2800}\u{2800}", "shows nothing"),
            ("bob\u{202E}ecila", "right-to-left"),
            ("\u{2067}alice", "right-to-left"),
            ("ali\tce", "control"),
        ];
        for (name, words) in cases {
            let err = check_username(name).expect_err(name);
            assert_eq!(err.code, ErrorCode::BadUsername, "{name:?}");
            assert!(err.message.contains(words), "{name:?}: {:?} should say {words:?}", err.message);
        }
    }

    #[test]
    fn names_are_stored_in_nfc() {
        // "é" as e + combining acute becomes the one precomposed character.
        assert_eq!(check_username("Rene\u{301}"), Ok("Ren\u{e9}".to_owned()));
        for fine in ["Zoë", "Анна", "Ἀλέξανδρος", "李雷", "ada ❤\u{FE0F}", "systems", "o'brien"] {
            assert!(check_username(fine).is_ok(), "{fine:?} is a fine name: {:?}", check_username(fine));
        }
    }

    proptest::proptest! {
        /// Whatever comes in, a name that passes is shown as it was stored
        /// and breaks none of the rules; nothing panics.
        #[test]
        fn an_accepted_name_keeps_every_rule(input in "\\PC{0,40}|[a-zA-Z\u{0400}-\u{04FF}\u{200B}-\u{200F}\u{202A}-\u{202E} ]{0,40}") {
            use unicode_normalization::UnicodeNormalization;
            if let Ok(name) = check_username(&input) {
                proptest::prop_assert!(!name.is_empty() && name.chars().count() <= MAX_USERNAME_CHARS);
                proptest::prop_assert_eq!(name.nfc().collect::<String>(), name.clone());
                proptest::prop_assert!(!name.chars().any(|c| c.is_control() || is_bidi_control(c) || is_invisible(c)));
                proptest::prop_assert_ne!(skeleton(&name), OPERATOR_NAME);
                proptest::prop_assert_eq!(check_username(&name), Ok(name.clone()), "checking twice changes nothing");
            }
        }

        /// "system" in any case, with any punctuation or spaces between its
        /// letters, is never a member's name.
        #[test]
        fn the_operator_name_cannot_be_taken(upper in proptest::collection::vec(proptest::bool::ANY, 6), sep in "[ ._*-]{0,2}") {
            let name: String = OPERATOR_NAME
                .chars()
                .zip(upper)
                .map(|(c, up)| if up { c.to_ascii_uppercase().to_string() } else { c.to_string() })
                .collect::<Vec<_>>()
                .join(&sep);
            proptest::prop_assert!(check_username(&name).is_err(), "{:?} was accepted", name);
        }

        /// A zero-width or direction character anywhere in a good name makes it bad.
        #[test]
        fn a_hidden_character_anywhere_is_refused(
            at in 0usize..4,
            hidden in proptest::sample::select(vec!['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{202E}', '\u{2066}', '\u{200F}']),
        ) {
            let mut name: Vec<char> = "alice".chars().collect();
            name.insert(at, hidden);
            let name: String = name.into_iter().collect();
            proptest::prop_assert!(check_username(&name).is_err(), "{:?} was accepted", name);
        }
    }

    #[test]
    fn texts() {
        assert!(check_text("hi").is_ok());
        assert!(check_text(&"x".repeat(4096)).is_ok());
        assert_eq!(check_text(" \n").map_err(|e| e.code), Err(ErrorCode::EmptyText));
        assert_eq!(check_text(&"x".repeat(4097)).map_err(|e| e.code), Err(ErrorCode::TextTooLong));
    }

    #[test]
    fn long_values_are_not_echoed_whole() {
        let err = check_room(&"!".repeat(10_000)).unwrap_err();
        assert!(err.message.len() < 300, "{}", err.message);
    }
}
