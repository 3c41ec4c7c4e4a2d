//! Who a message mentions: `@name` of a member of the room, matched
//! case-insensitively and followed by the end of the text, a space or
//! punctuation, so `@ada,` mentions ada but `@adam` does not. Names may
//! hold spaces (`@ada lovelace`); of the names that match at one `@` the
//! longest wins. Pure: the caller hands in the room's members (the first
//! [`MEMBERS_READ`] by name) and gets user ids back.

use chat_proto::v1::Member;

/// Members a message's mentions are looked up among: the room's first
/// this many in name order (a mention of someone further down is missed).
pub(crate) const MEMBERS_READ: usize = 1000;
/// Distinct users one message may mention; more are ignored.
pub(crate) const MAX_MENTIONED: usize = 10;

/// The user ids `text` mentions among `members`, in the order first
/// mentioned, without `sender` (nobody mentions themself), at most
/// [`MAX_MENTIONED`].
pub(crate) fn mentioned(text: &str, members: &[Member], sender: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    if !text.contains('@') {
        return found;
    }
    let names: Vec<(String, &Member)> = members
        .iter()
        .filter(|m| !m.user_id.is_empty() && !m.username.is_empty())
        .map(|m| (m.username.to_lowercase(), m))
        .collect();
    for (at, _) in text.match_indices('@') {
        let rest = &text[at + 1..];
        // The longest name matching here, then every user going by it.
        let longest = names.iter().filter_map(|(name, _)| matches(rest, name).map(|_| name.len())).max();
        let Some(longest) = longest else { continue };
        for (_, member) in names.iter().filter(|(name, _)| name.len() == longest && matches(rest, name).is_some()) {
            if member.user_id != sender && !found.contains(&member.user_id) {
                if found.len() == MAX_MENTIONED {
                    return found;
                }
                found.push(member.user_id.clone());
            }
        }
    }
    found
}

/// Whether `rest` starts with `name` (already lowercase) ignoring case and
/// the name ends there; the length in bytes of `rest` it took.
fn matches(rest: &str, name: &str) -> Option<usize> {
    let mut wanted = name.chars().peekable();
    let mut taken = 0;
    for c in rest.chars() {
        if wanted.peek().is_none() {
            break;
        }
        for lower in c.to_lowercase() {
            if wanted.next() != Some(lower) {
                return None;
            }
        }
        taken += c.len_utf8();
    }
    if wanted.peek().is_some() {
        return None;
    }
    match rest[taken..].chars().next() {
        None => Some(taken),
        Some(c) if ends_name(c) => Some(taken),
        Some(_) => None,
    }
}

/// A character after which a name has ended: space or punctuation (but
/// not `_` or `-`, which names use inside a word).
fn ends_name(c: char) -> bool {
    !(c.is_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(user_id: &str, name: &str) -> Member {
        Member { user_id: user_id.into(), username: name.into(), ..Member::default() }
    }

    fn room() -> Vec<Member> {
        vec![
            member("u-ada", "Ada"),
            member("u-adl", "Ada Lovelace"),
            member("u-bob", "bob"),
            member("u-cy", "Cy"),
            member("u-zoe", "Zoë"),
        ]
    }

    #[test]
    fn a_name_is_matched_whatever_its_case() {
        assert_eq!(mentioned("hi @BOB", &room(), "u-cy"), ["u-bob"]);
        assert_eq!(mentioned("hi @zOË!", &room(), "u-cy"), ["u-zoe"]);
    }

    #[test]
    fn a_name_ends_at_the_end_a_space_or_punctuation() {
        for text in ["@bob", "@bob hi", "@bob, hi", "(@bob)", "@bob?", "@bob."] {
            assert_eq!(mentioned(text, &room(), "u-cy"), ["u-bob"], "{text:?}");
        }
        for text in ["@bobby", "@bob_x", "@bob-x", "bob", "@ bob", "email bob@example"] {
            assert!(mentioned(text, &room(), "u-cy").is_empty(), "{text:?} mentions nobody");
        }
    }

    #[test]
    fn names_with_spaces_win_over_their_first_word() {
        assert_eq!(mentioned("@ada lovelace: look", &room(), "u-cy"), ["u-adl"]);
        assert_eq!(mentioned("@ada look", &room(), "u-cy"), ["u-ada"]);
    }

    #[test]
    fn the_sender_never_mentions_themself_and_repeats_count_once() {
        assert!(mentioned("@bob", &room(), "u-bob").is_empty());
        assert_eq!(mentioned("@bob @Bob @cy", &room(), "u-ada"), ["u-bob", "u-cy"]);
    }

    #[test]
    fn at_most_ten_users_are_mentioned() {
        let members: Vec<Member> = (0..20).map(|i| member(&format!("u{i}"), &format!("p{i}"))).collect();
        let text: String = (0..20).map(|i| format!("@p{i} ")).collect();
        let found = mentioned(&text, &members, "nobody");
        assert_eq!(found.len(), MAX_MENTIONED);
        assert_eq!(found[0], "u0");
    }

    #[test]
    fn members_without_a_user_id_are_never_mentioned() {
        assert!(mentioned("@ghost", &[member("", "ghost")], "u-ada").is_empty());
    }
}
