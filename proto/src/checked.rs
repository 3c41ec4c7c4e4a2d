//! Names that have passed their rule, as types: a function that takes a
//! [`RoomName`], [`Username`] or [`MemberId`] needs no check of its own, and
//! one that forgets to check does not compile. Each is made only by
//! `TryFrom` (which runs the rule in [`crate::names`]) and reads as a `&str`.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;

use crate::names::{self, Invalid};

/// Implements the read side shared by the three name types.
macro_rules! reads_as_str {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        /// Quoted like the text it holds, so `{room:?}` in a message
        /// reads `"general"`.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl TryFrom<&str> for $name {
            type Error = Invalid;
            fn try_from(text: &str) -> Result<Self, Invalid> {
                Self::try_from(text.to_owned())
            }
        }
    };
}

/// A room name: 1–64 characters of `[A-Za-z0-9_.-]` ([`names::check_room`]).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(String);

impl TryFrom<String> for RoomName {
    type Error = Invalid;
    fn try_from(room: String) -> Result<Self, Invalid> {
        names::check_room(&room)?;
        Ok(Self(room))
    }
}

reads_as_str!(RoomName);

/// A display name as it is shown: trimmed, NFC, 1–32 characters, passing
/// the impersonation rules of [`names::check_username`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl TryFrom<String> for Username {
    type Error = Invalid;
    fn try_from(name: String) -> Result<Self, Invalid> {
        names::check_username(&name).map(Self)
    }
}

reads_as_str!(Username);

/// A member id chosen by a gateway: 1–128 printable characters
/// ([`names::check_member_id`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MemberId(String);

impl TryFrom<String> for MemberId {
    type Error = Invalid;
    fn try_from(id: String) -> Result<Self, Invalid> {
        names::check_member_id(&id)?;
        Ok(Self(id))
    }
}

reads_as_str!(MemberId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_holds_only_what_its_rule_allows() {
        assert_eq!(RoomName::try_from("general").map(String::from), Ok("general".to_owned()));
        assert_eq!(RoomName::try_from("no spaces").map_err(|e| e.code), Err(crate::ErrorCode::BadRoom));
        assert_eq!(Username::try_from("  ada ").map(String::from), Ok("ada".to_owned()), "trimmed");
        assert_eq!(Username::try_from("sуstem").map_err(|e| e.code), Err(crate::ErrorCode::BadUsername), "look-alike");
        assert_eq!(MemberId::try_from("5f3a9c1e").map(String::from), Ok("5f3a9c1e".to_owned()));
        assert_eq!(MemberId::try_from("").map_err(|e| e.code), Err(crate::ErrorCode::BadMemberId));
    }

    #[test]
    fn a_checked_name_reads_as_its_text() {
        let room = RoomName::try_from("dev").expect("valid");
        assert_eq!((&*room, room.as_str(), room.to_string()), ("dev", "dev", "dev".to_owned()));
        assert_eq!(format!("{room:?}"), r#""dev""#, "debug-printed as its quoted text");
        let rooms: std::collections::HashSet<RoomName> = [room].into();
        assert!(rooms.contains("dev"), "looked up by &str");
    }
}
