//! Rules for a message's later life that both ends of the wire share:
//! which strings are emoji, how many reactions a message may carry, how a
//! reply quotes what it answers, and how a message id names a message.

use crate::ErrorCode;
use crate::names::Invalid;

/// The longest emoji string a reaction takes, in bytes: the longest
/// sequences (families, flags of subdivisions) fit.
pub const MAX_EMOJI_BYTES: usize = 32;

/// Distinct emoji on one message (GitHub allows 8, Slack 23 by default):
/// a message's reactions travel with it in every history page.
pub const MAX_REACTIONS: usize = 20;

/// Characters of the replied-to text a reply keeps as its quote.
pub const QUOTE_CHARS: usize = 100;

/// The longest reason a moderator may give, in characters.
pub const MAX_REASON_CHARS: usize = 200;

/// Accepts one emoji as Unicode lists it (with or without its variation
/// selector, with a skin tone where it takes one).
pub fn check_emoji(emoji: &str) -> Result<(), Invalid> {
    if emoji.len() > MAX_EMOJI_BYTES {
        return Err(invalid(ErrorCode::BadEmoji, format!("emoji is {} bytes: at most {MAX_EMOJI_BYTES}", emoji.len())));
    }
    if emojis::get(emoji).is_some() || emojis::get(emoji.trim_end_matches('\u{fe0f}')).is_some() {
        return Ok(());
    }
    Err(invalid(ErrorCode::BadEmoji, format!("{emoji:?} is not an emoji: react with one emoji, such as \"👍\"")))
}

/// The start of `text` a reply quotes: at most [`QUOTE_CHARS`] characters,
/// with "…" when cut, on one line.
pub fn quote(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(QUOTE_CHARS) {
        None => flat,
        Some((cut, _)) => format!("{}…", &flat[..cut]),
    }
}

/// A message id, `<epoch>:<seq>`, split into its epoch and seq.
pub fn parse_message_id(id: &str) -> Result<(&str, u64), Invalid> {
    let bad = || {
        invalid(
            ErrorCode::BadMessage,
            format!("{id:?} is not a message id: give a message's \"id\", such as \"k3j9x2:43\""),
        )
    };
    let (epoch, seq) = id.rsplit_once(':').ok_or_else(bad)?;
    let seq: u64 = seq.parse().map_err(|_| bad())?;
    if epoch.is_empty() || epoch.len() > 64 || seq == 0 {
        return Err(bad());
    }
    Ok((epoch, seq))
}

fn invalid(code: ErrorCode, message: String) -> Invalid {
    Invalid { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_are_told_from_other_strings() {
        for emoji in ["👍", "❤️", "❤", "👍🏽", "🎉", "👨‍👩‍👧‍👦", "🏳️‍🌈"] {
            assert!(check_emoji(emoji).is_ok(), "{emoji} is an emoji");
        }
        for not in ["", "a", ":+1:", "👍👍", "👍 ", "<b>", "\u{200d}"] {
            assert!(check_emoji(not).is_err(), "{not:?} is not one emoji");
        }
        assert!(check_emoji(&"👍".repeat(9)).unwrap_err().message.contains("at most 32"));
    }

    #[test]
    fn quotes_are_cut_on_characters_and_flattened() {
        assert_eq!(quote("hi\n  there"), "hi there");
        let long = "é".repeat(150);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), QUOTE_CHARS + 1);
        assert!(quoted.ends_with('…'));
        assert_eq!(quote(&"a".repeat(100)), "a".repeat(100));
    }

    #[test]
    fn message_ids_split_into_epoch_and_seq() {
        assert_eq!(parse_message_id("k3j9x2:43").unwrap(), ("k3j9x2", 43));
        for bad in ["", "43", ":43", "k3j9x2:", "k3j9x2:0", "k3j9x2:-1", "k3j9x2:x"] {
            assert!(parse_message_id(bad).is_err(), "{bad:?}");
        }
    }
}
