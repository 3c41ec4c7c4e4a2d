//! Who is on one connection and what they may do: the identity its token
//! gave (if tokens are in force) and its rate-limit buckets. Built at the
//! upgrade, handed to the session, asked before each `join`, `send`,
//! `history` and `search`.

use chat_proto::ErrorCode;
use chat_proto::{RoomName, Username};

use crate::auth::Identity;
use crate::frame::Refusal;
use crate::rate::Limits;

#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// `Some` when the gateway checks tokens.
    pub identity: Option<Identity>,
    pub limits: Limits,
}

impl Caller {
    /// May this connection join `room` under `requested`? The name to join
    /// under: the token's when there is one (what the frame asks for is
    /// ignored), else the requested one, checked and in NFC.
    pub(crate) fn join(&self, room: &RoomName, requested: &str) -> Result<Username, Refusal> {
        self.limits.join(room)?;
        let Some(identity) = &self.identity else {
            return Username::try_from(requested).map_err(|e| Refusal::from(e).in_room(room));
        };
        if let Some(rooms) = &identity.rooms
            && !rooms.iter().any(|r| *r == **room)
        {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                format!(
                    "your token does not let you into room {room:?}; it allows: {}",
                    if rooms.is_empty() { "no room".to_owned() } else { rooms.join(", ") }
                ),
            )
            .in_room(room));
        }
        Username::try_from(identity.name.as_str()).map_err(|e| {
            Refusal::new(ErrorCode::BadUsername, format!("the name in your token is not allowed: {}", e.message))
                .in_room(room)
        })
    }

    /// May this connection send a message to `room` now?
    pub(crate) fn send(&self, room: &str) -> Result<(), Refusal> {
        self.limits.send(room)
    }

    /// May this connection read `room`'s stored messages (`history`,
    /// `search`) now?
    pub(crate) fn read(&self, room: &str) -> Result<(), Refusal> {
        self.limits.read(room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_token(name: &str, rooms: Option<&[&str]>) -> Caller {
        Caller {
            identity: Some(Identity {
                user: "u1".into(),
                name: name.into(),
                rooms: rooms.map(|r| r.iter().map(|s| (*s).to_owned()).collect()),
                moderates_everywhere: false,
            }),
            limits: Limits::none(),
        }
    }

    /// Joins `room` as `caller`, asking for `name`: the name it gets.
    fn join(caller: &Caller, room: &str, name: &str) -> Result<String, ErrorCode> {
        let room = RoomName::try_from(room).expect("a valid room name");
        caller.join(&room, name).map(String::from).map_err(|refusal| refusal.code)
    }

    #[test]
    fn the_token_names_the_member_and_picks_the_rooms() {
        let caller = with_token("Ada", Some(&["general"]));
        assert_eq!(join(&caller, "general", "mallory"), Ok("Ada".to_owned()));
        assert_eq!(join(&caller, "dev", "Ada"), Err(ErrorCode::Forbidden));
        assert_eq!(join(&with_token("Ada", None), "anything", "x"), Ok("Ada".to_owned()));
    }

    #[test]
    fn without_a_token_the_frame_names_the_member_under_the_rules() {
        let caller = Caller { identity: None, limits: Limits::none() };
        assert_eq!(join(&caller, "general", " bob "), Ok("bob".to_owned()));
        assert_eq!(join(&caller, "general", "System"), Err(ErrorCode::BadUsername));
    }
}
