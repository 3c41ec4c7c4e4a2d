//! The session's part in people (`inbox.rs`): who the connection is as a
//! user, its inbox listener, and the calls for `open_dm`, `read` and
//! `rooms`.
//!
//! A session listens on its user's inbox room from start to end. Its first
//! call, right after `welcome`, is the `rooms` snapshot: it waits for the
//! inbox feed to be open, so every update after the snapshot reaches the
//! browser. The snapshot is taken again whenever the inbox feed says updates
//! may have been missed (`rooms_due`), as the next call the session makes.

use std::sync::Arc;

use chat_proto::people::{direct_room, inbox_room};
use chat_proto::v1::{MarkReadRequest, OpenDirectRequest, Person, UserRoomsRequest};
use chat_proto::{ErrorCode, RoomName};

use super::Session;
use super::calls::{Answer, Call, traced};
use crate::feed::{Feed, Listener};
use crate::frame::{Refusal, check_direct, refusal_of};
use crate::hub::Hub;
use crate::limits::READY_WAIT;

/// Who a connection is as a person, and the inbox it follows.
#[derive(Debug)]
pub(super) struct User {
    /// The token's `sub`, or (without tokens) the session's member id.
    pub user_id: Arc<str>,
    /// The token's `name`, if any.
    pub name: Option<Arc<str>>,
    /// `inbox_room(user_id)`.
    pub inbox_room: Arc<str>,
    /// The inbox room's feed, with this connection listening on it.
    pub inbox: Arc<Feed>,
    /// A `rooms` snapshot is owed (at start, and after an inbox resync).
    pub rooms_due: bool,
}

impl User {
    /// Starts listening on the inbox of `listener`'s user.
    pub(super) fn listen(hub: &Hub, conn: u64, name: Option<&str>, listener: Listener) -> Self {
        let user_id = Arc::clone(&listener.user_id);
        let inbox_room: Arc<str> = Arc::from(inbox_room(&user_id));
        let inbox = hub.add(&inbox_room, conn, listener);
        Self { user_id, name: name.map(Arc::from), inbox_room, inbox, rooms_due: true }
    }
}

impl Session {
    /// The call for `open_dm`: the direct conversation of this user with `users`.
    pub(super) fn open_dm(&mut self, users: &[String]) -> Result<Call, Refusal> {
        let with = check_direct(users, &self.person.user_id)?;
        self.caller.limits.join("").map_err(|refusal| Refusal { room: None, ..refusal })?;
        let mut everyone = with.clone();
        everyone.push(self.person.user_id.to_string());
        let room = direct_room(&everyone);
        let request = OpenDirectRequest {
            opener: Some(Person { user_id: self.person.user_id.to_string(), name: self.display_name() }),
            with,
        };
        let shared = Arc::clone(&self.shared);
        Ok(traced(tracing::debug_span!("call", rpc = "open_direct", %room), async move {
            let reply =
                shared.hub.services().call(&room, request, |mut c, r| async move { c.open_direct(r).await }).await;
            Answer::Read(reply.map(|direct| crate::inbox::direct(&direct)).map_err(|status| {
                let mut refusal = refusal_of(&status, &room);
                refusal.room = None; // the room is the answer's to name, not the error's
                refusal
            }))
        }))
    }

    /// The call for `read`: nothing comes back on success but the inbox update.
    pub(super) fn mark_read(&mut self, room: String, seq: u64) -> Result<Call, Refusal> {
        let room = RoomName::try_from(room).map_err(Refusal::from)?;
        self.caller.read(&room)?;
        let request = MarkReadRequest { user_id: self.person.user_id.to_string(), room: room.to_string(), seq };
        let shared = Arc::clone(&self.shared);
        Ok(traced(tracing::debug_span!("call", rpc = "mark_read", %room, seq), async move {
            let reply =
                shared.hub.services().call(&room, request, |mut c, r| async move { c.mark_read(r).await }).await;
            Answer::Done(reply.map(drop).map_err(|status| refusal_of(&status, &room)))
        }))
    }

    /// The call for a `rooms` frame the browser sent: counted as a read.
    pub(super) fn rooms_asked(&mut self) -> Result<Call, Refusal> {
        self.caller.limits.read("").map_err(|refusal| Refusal { room: None, ..refusal })?;
        Ok(self.snapshot())
    }

    /// The `rooms` snapshot, once the inbox feed is open (so no update
    /// after it is missed).
    pub(super) fn snapshot(&self) -> Call {
        let request = UserRoomsRequest { user_id: self.person.user_id.to_string(), limit: 0 };
        let (shared, inbox, inbox_room) =
            (Arc::clone(&self.shared), Arc::clone(&self.person.inbox), Arc::clone(&self.person.inbox_room));
        traced(tracing::debug_span!("call", rpc = "user_rooms"), async move {
            if !inbox.wait_ready(READY_WAIT).await {
                return Answer::Read(Err(Refusal::new(
                    ErrorCode::Unavailable,
                    "your rooms cannot be followed now: no room-service could be reached; send {\"type\":\"rooms\"} to ask again",
                )));
            }
            let services = shared.hub.services();
            let reply = services.call(&inbox_room, request, |mut c, r| async move { c.user_rooms(r).await }).await;
            Answer::Read(reply.map(|reply| crate::inbox::rooms(&reply.rooms)).map_err(|status| {
                let mut refusal = refusal_of(&status, &inbox_room);
                refusal.room = None; // the inbox room is no room of the browser's
                refusal
            }))
        })
    }

    /// The name this user is known by: the token's, or the one they last joined with.
    fn display_name(&self) -> String {
        self.person.name.as_deref().or(self.last_username.as_deref()).unwrap_or_default().to_owned()
    }
}
