//! OpenDirect, UserRooms and MarkRead, and the rule every other call keeps
//! for direct conversations: only their members get in. The state is in
//! `crate::people`; this file checks requests and maps refusals to a status
//! with `chat-error-code` metadata naming the [`ErrorCode`].

use chat_proto::people::{MAX_DIRECT_MEMBERS, check_user_id, direct_room, is_direct};
use chat_proto::v1::{
    Direct, MarkReadRequest, MarkReadResponse, OpenDirectRequest, Person, UserRoomsRequest, UserRoomsResponse,
};
use chat_proto::{ErrorCode, RoomName, Username};
use chat_runtime::clock::now_ms;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use super::{Rooms, invalid};
use crate::broker::Broker;
use crate::people::{Directory, Reason, RoomAdd};

/// Rooms UserRooms lists when the request asks for 0, and at most.
const DEFAULT_USER_ROOMS: usize = 200;
const MAX_USER_ROOMS: usize = 500;
/// The longest `with` list looked at; a direct conversation has at most
/// [`MAX_DIRECT_MEMBERS`] users anyway.
const MAX_WITH: usize = 64;

/// A refusal with the [`ErrorCode`] a gateway passes on in its metadata.
pub(crate) fn refusal(code: Code, error: ErrorCode, message: impl Into<String>) -> Status {
    let mut status = Status::new(code, message);
    status.metadata_mut().insert(chat_proto::ERROR_CODE_HEADER, MetadataValue::from_static(error.as_str()));
    status
}

fn bad_direct(message: impl Into<String>) -> Status {
    refusal(Code::InvalidArgument, ErrorCode::BadDirect, message)
}

fn bad_read(message: impl Into<String>) -> Status {
    refusal(Code::InvalidArgument, ErrorCode::BadRead, message)
}

fn forbidden(room: &str) -> Status {
    refusal(
        Code::PermissionDenied,
        ErrorCode::Forbidden,
        format!("room {room} is a direct conversation you are not in"),
    )
}

/// A user id as a request gives it, refused with `code` when malformed.
fn user_id(user_id: &str, code: ErrorCode) -> Result<(), Status> {
    check_user_id(user_id).map_err(|e| refusal(Code::InvalidArgument, code, e.message))
}

impl<B: Broker + Directory> Rooms<B> {
    /// Refuses `user_id` a direct conversation they are not in; any other
    /// room, and an empty `user_id` (the operator), pass.
    pub(super) async fn check_direct(&self, room: &str, user_id: &str) -> Result<(), Status> {
        if !is_direct(room) || user_id.is_empty() {
            return Ok(());
        }
        self.check_direct_member(room, user_id).await
    }

    /// Refuses anyone but a member of the direct conversation `room`: a
    /// name with no record is refused too (nobody creates one by joining).
    pub(super) async fn check_direct_member(&self, room: &str, user_id: &str) -> Result<(), Status> {
        let members = self.inbox.people().direct(room).await?;
        match members {
            Some(members) if !user_id.is_empty() && members.iter().any(|p| p.user_id == user_id) => Ok(()),
            _ => Err(forbidden(room)),
        }
    }

    pub(super) async fn open_direct_room(&self, request: OpenDirectRequest) -> Result<Direct, Status> {
        let OpenDirectRequest { opener, with } = request;
        let Some(Person { user_id: opener_id, name }) = opener else {
            return Err(bad_direct("opener is missing: give the opener's user_id and name"));
        };
        user_id(&opener_id, ErrorCode::BadDirect)?;
        let name = Username::try_from(name).map_err(|e| bad_direct(format!("opener's name: {}", e.message)))?;
        if with.len() > MAX_WITH {
            return Err(bad_direct(format!(
                "{} users: a direct conversation has at most {MAX_DIRECT_MEMBERS}",
                with.len()
            )));
        }
        for id in &with {
            user_id(id, ErrorCode::BadDirect)?;
        }
        let mut others: Vec<String> = with.into_iter().filter(|id| *id != opener_id).collect();
        others.sort_unstable();
        others.dedup();
        if others.is_empty() {
            return Err(bad_direct("a conversation with yourself only: name at least one other user in `with`"));
        }
        if others.len() + 1 > MAX_DIRECT_MEMBERS {
            return Err(bad_direct(format!(
                "{} users in all: a direct conversation has 2 to {MAX_DIRECT_MEMBERS}, the opener included",
                others.len() + 1
            )));
        }
        let people = self.inbox.people();
        let opener = Person { user_id: opener_id, name: name.into() };
        people.put_profiles(std::slice::from_ref(&opener)).await?;
        let mut names = people.profiles(&others).await?;
        if names.iter().any(Option::is_none)
            && let Some(recorded) = self.inbox.recording().wait_all()
        {
            // Someone who joined a moment ago may be being recorded still.
            recorded.await;
            names = people.profiles(&others).await?;
        }
        let mut members = vec![opener];
        for (id, name) in others.into_iter().zip(names) {
            let Some(name) = name else {
                return Err(bad_direct(format!(
                    "user id {id:?} is nobody known here: a user exists once they joined a room"
                )));
            };
            members.push(Person { user_id: id, name });
        }
        members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        let room = direct_room(&members.iter().map(|p| p.user_id.as_str()).collect::<Vec<_>>());
        let created = people.put_direct(&room, &members).await?;
        if !created && let Some(recorded) = people.direct(&room).await? {
            members = recorded;
        }
        // Every member has it, the marker at 0 (idempotent: a present one stays).
        let joined_at_ms = now_ms();
        let adds: Vec<RoomAdd> = members
            .iter()
            .map(|p| RoomAdd { user_id: p.user_id.clone(), room: room.clone(), read_seq: 0, joined_at_ms })
            .collect();
        let added = people.add_rooms(&adds).await?;
        for (add, _) in adds.into_iter().zip(added).filter(|(_, added)| *added) {
            let inbox = std::sync::Arc::clone(&self.inbox);
            let state =
                crate::people::UserRoomState { room: add.room, read_seq: 0, joined_at_ms, mentions: Vec::new() };
            self.inbox.spawn(async move { inbox.tell(&add.user_id, state, Reason::Direct).await });
        }
        if created {
            tracing::info!(%room, members = members.len(), "direct conversation opened");
        }
        Ok(Direct { room, members, created })
    }

    pub(super) async fn user_rooms_page(&self, request: UserRoomsRequest) -> Result<UserRoomsResponse, Status> {
        let UserRoomsRequest { user_id: user, limit } = request;
        user_id(&user, ErrorCode::BadRequest)?;
        let limit = match limit {
            0 => DEFAULT_USER_ROOMS,
            n => (n as usize).min(MAX_USER_ROOMS),
        };
        // Joins this process applied a moment ago may be being recorded
        // still (off their path): a snapshot waits for those records.
        if let Some(recorded) = self.inbox.recording().wait_all() {
            recorded.await;
        }
        let states = self.inbox.people().user_rooms(&user).await?;
        let entries = futures_util::future::join_all(states.into_iter().map(|s| self.inbox.entry(s))).await;
        let mut rooms = entries.into_iter().collect::<Result<Vec<_>, Status>>()?;
        rooms.sort_by(|a, b| b.activity_ms.cmp(&a.activity_ms).then_with(|| a.room.cmp(&b.room)));
        rooms.truncate(limit);
        Ok(UserRoomsResponse { rooms })
    }

    pub(super) async fn mark_room_read(&self, request: MarkReadRequest) -> Result<MarkReadResponse, Status> {
        let MarkReadRequest { user_id: user, room, seq } = request;
        user_id(&user, ErrorCode::BadRead)?;
        let room = RoomName::try_from(room).map_err(invalid)?;
        let people = self.inbox.people();
        if people.user_room(&user, &room).await?.is_none() {
            // Right after a join the room may still be being recorded as
            // the user's (off the join's path): wait for that, look again.
            if let Some(recorded) = self.inbox.recording().wait(room.as_str()) {
                recorded.await;
            }
        }
        if people.user_room(&user, &room).await?.is_none() {
            return Err(bad_read(format!("room {room} is not one of your rooms: join it (or open it) first")));
        }
        let position = self.position(&room).await?;
        if seq > position.last_seq {
            return Err(bad_read(format!(
                "seq {seq} is past the last message of room {room} ({}): mark a seq you were shown",
                position.last_seq
            )));
        }
        let state = people
            .mark_read(&user, &room, seq)
            .await?
            .ok_or_else(|| bad_read(format!("room {room} is not one of your rooms: join it (or open it) first")))?;
        let entry = self.inbox.entry(state).await?;
        self.inbox.publish(&user, entry.clone(), Reason::Read).await;
        Ok(MarkReadResponse { room: Some(entry) })
    }
}
