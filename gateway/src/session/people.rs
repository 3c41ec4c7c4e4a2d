//! The session's part in people (`inbox.rs`): who the connection is as a
//! user, its inbox listener, and the calls for `open_dm`, `read` and
//! `rooms`.
//!
//! A session listens on its user's inbox room from start to end. Right
//! after `welcome` it takes the `rooms` snapshot in a task of its own
//! ([`Session::snapshot_soon`]): the task waits for the inbox feed to be
//! open, so every update after the snapshot reaches the browser, and queues
//! the frame with the feeds' deliveries, so the browser's first frames
//! (its joins) are not held up by it. The same happens whenever the inbox
//! feed says updates may have been missed (a resync). The order of a
//! snapshot and updates around it does not matter: updates carry whole
//! entries, merged by the larger `last_seq` and `read_seq`.

use std::sync::Arc;

use chat_proto::people::{direct_room, inbox_room};
use chat_proto::v1::{MarkReadRequest, OpenDirectRequest, Person, UserRoomsRequest};
use chat_proto::{ErrorCode, RoomName};

use super::Session;
use super::calls::{Answer, Call, traced};
use std::future::Future;

use axum::extract::ws::Utf8Bytes;
use tracing::Instrument;

use crate::feed::{Delivery, Feed, Listener, Recipient};
use crate::frame::{self, Refusal, check_direct, refusal_of};
use crate::hub::Hub;
use crate::limits::READY_WAIT;

/// Who a connection is as a person, and the inbox it follows.
#[derive(Debug)]
pub(super) struct User {
    /// The token's `sub`, or (without tokens) the session's member id.
    pub user_id: Arc<str>,
    /// The token's `name`, if any.
    pub name: Option<Arc<str>>,
    /// The feed of `inbox_room(user_id)`, with this connection listening
    /// on it (the room's name is the feed's).
    pub inbox: Arc<Feed>,
}

impl User {
    /// Starts listening on the inbox of `recipient`'s user. Its listener
    /// has no name: inbox feeds have no members.
    pub(super) fn listen(hub: &Hub, conn: u64, name: Option<&str>, recipient: &Arc<Recipient>) -> Self {
        static NO_NAME: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
        let user_id = Arc::clone(&recipient.user_id);
        let listener = Listener { recipient: Arc::clone(recipient), username: Arc::clone(&NO_NAME) };
        let inbox = hub.add(&inbox_room(&user_id), conn, listener);
        Self { user_id, name: name.map(Arc::from), inbox }
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

    /// The call that answers a `rooms` frame.
    pub(super) fn snapshot(&self) -> Call {
        let take = self.take_snapshot();
        traced(tracing::debug_span!("call", rpc = "user_rooms"), async move { Answer::Read(take.await) })
    }

    /// Takes a `rooms` snapshot in a task of its own and queues it (or the
    /// error that says it could not) like a delivery: at most one per
    /// session start and per inbox resync. A session that ended meanwhile
    /// has dropped its queue, and the frame with it.
    pub(super) fn snapshot_soon(&self) {
        let (take, queue) = (self.take_snapshot(), self.recipient.queue.clone());
        let (room, epoch) = (Arc::clone(self.person.inbox.room()), Arc::from(""));
        let span = tracing::debug_span!("call", rpc = "user_rooms");
        tokio::spawn(
            async move {
                let frame = take.await.unwrap_or_else(|refusal| frame::refusal(&refusal));
                let delivery = Delivery { room, epoch, seq: 0, from: None, frame, resync: false, removed: false };
                let _ = queue.send(Arc::new(delivery)).await;
            }
            .instrument(span),
        );
    }

    /// The `rooms` frame, once the inbox feed is open (so no update after
    /// the snapshot is missed).
    fn take_snapshot(&self) -> impl Future<Output = Result<Utf8Bytes, Refusal>> + Send + 'static {
        let request = UserRoomsRequest { user_id: self.person.user_id.to_string(), limit: 0 };
        let (shared, inbox, inbox_room) =
            (Arc::clone(&self.shared), Arc::clone(&self.person.inbox), Arc::clone(self.person.inbox.room()));
        async move {
            if !inbox.wait_ready(READY_WAIT).await {
                return Err(Refusal::new(
                    ErrorCode::Unavailable,
                    "your rooms cannot be followed now: no room-service could be reached; send {\"type\":\"rooms\"} to ask again",
                ));
            }
            let services = shared.hub.services();
            let reply = services.call(&inbox_room, request, |mut c, r| async move { c.user_rooms(r).await }).await;
            reply.map(|reply| crate::inbox::rooms(&reply.rooms)).map_err(|status| {
                let mut refusal = refusal_of(&status, &inbox_room);
                refusal.room = None; // the inbox room is no room of the browser's
                refusal
            })
        }
    }

    /// The name this user is known by: the token's, or the one they last joined with.
    fn display_name(&self) -> String {
        self.person.name.as_deref().or(self.last_username.as_deref()).unwrap_or_default().to_owned()
    }
}
