//! The room-service calls a session makes, one in flight at a time, and
//! what their answers send back to the browser.

use chat_proto::{ErrorCode, LeaveReason};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{
    BatchedMessage, JoinRequest, JoinResponse, LeaveRequest, Member, MembersRequest, MembersResponse, SendBatchRequest,
    SendBatchResponse, SendRequest, TypingRequest,
};
use chat_proto::{RoomName, names};
use futures_util::FutureExt;
use tonic::Code;
use tracing::Instrument;

use crate::feed::{Delivery, Listener};
use crate::frame::{self, ClientFrame, EventView, MemberView, Refusal, ServerFrame, refusal_of, unavailable};

use super::Session;
use crate::limits::{JOIN_HISTORY, MAX_EPOCH_BYTES, MAX_ROOMS, SEND_BATCH, TYPING_EVERY, frame_fits};

/// A room-service call in flight, and what it comes back as. It is `Send`
/// but not `Sync`, so the session's async methods take `&mut self`.
pub(super) type Call = Pin<Box<dyn Future<Output = Answer> + Send>>;

pub(super) enum Answer {
    Joined(Arc<str>, Result<JoinResponse, Refusal>),
    Left(Arc<str>, Result<(), Refusal>),
    Members(Arc<str>, Result<MembersResponse, Refusal>),
    /// Sent or typing: nothing to write unless it failed.
    Done(Result<(), Refusal>),
    /// A batch of sends stored: the repeats among them are echoed here,
    /// since only new messages are published.
    Stored(Result<SendBatchResponse, Refusal>),
    /// An answer its call encoded: `history`, `search`, `rooms`, `dm`.
    Read(Result<Utf8Bytes, Refusal>),
}

/// A room this connection is in, or is joining.
pub(super) enum Room {
    /// The join is in flight; events that arrive meanwhile wait here.
    Joining { username: Arc<str>, held: Vec<Arc<Delivery>>, resuming: bool },
    Joined {
        username: Arc<str>,
        epoch: Arc<str>,
        /// The last sequence number the `joined` snapshot held.
        snapshot_seq: u64,
        last_typing: Option<Instant>,
    },
}

/// `send` frames read from the browser, to one room, not yet handed on.
pub(super) struct Batch {
    room: Arc<str>,
    username: Arc<str>,
    messages: Vec<BatchedMessage>,
    /// A send with attachments goes alone, as one `Send` (`store`).
    attachment_ids: Vec<String>,
}

impl Session {
    /// This connection as a room member under `username`.
    pub(super) fn member(&self, username: &str) -> Member {
        Member {
            member_id: self.member_id.to_string(),
            username: username.to_owned(),
            gateway: self.shared.gateway.to_string(),
            joined_at_ms: 0,
            connection: self.recipient.connection.to_string(),
            user_id: self.person.user_id.to_string(),
        }
    }

    /// The room's name and state, if joined (not only joining).
    pub(super) fn joined(&mut self, room: &str) -> Result<(Arc<str>, &mut Room), Refusal> {
        let name = match self.rooms.get_key_value(room) {
            Some((name, Room::Joined { .. })) => Arc::clone(name),
            _ => {
                return Err(Refusal::new(
                    ErrorCode::NotJoined,
                    format!(
                        "you have not joined room {room:?}; send {{\"type\":\"join\",\"room\":{room:?},\"username\":\"…\"}} first"
                    ),
                )
                .in_room(room));
            }
        };
        let state = self.rooms.get_mut(room).ok_or_else(|| Refusal::new(ErrorCode::NotJoined, "not in the room"))?;
        Ok((name, state))
    }

    pub(super) fn join(
        &mut self,
        room: String,
        username: &str,
        after_seq: Option<u64>,
        epoch: Option<String>,
    ) -> Result<Call, Refusal> {
        // A bad room name is not echoed back as `room`: it names no room.
        let room = RoomName::try_from(room).map_err(Refusal::from)?;
        if chat_proto::people::is_inbox(&room) {
            return Err(Refusal::new(
                ErrorCode::BadRoom,
                format!(
                    "{room:?} is an inbox room and cannot be joined: your updates come by themselves (`inbox` frames)"
                ),
            ));
        }
        let resume = match (after_seq, epoch) {
            (None, None) => None,
            (Some(after_seq), Some(epoch)) if epoch.len() <= MAX_EPOCH_BYTES => Some((after_seq, epoch)),
            _ => {
                return Err(Refusal::new(
                    ErrorCode::BadJson,
                    format!("give both after_seq and epoch (an epoch of at most {MAX_EPOCH_BYTES} bytes) to resume, or neither"),
                )
                .in_room(&room));
            }
        };
        // The join rate limit, the token's rooms, and the name: the token's,
        // or the requested one checked.
        let username: Arc<str> = Arc::from(self.caller.join(&room, username)?.as_str());
        if self.rooms.contains_key(room.as_str()) {
            return Err(
                Refusal::new(ErrorCode::AlreadyJoined, format!("you are already in room {room:?}")).in_room(&room)
            );
        }
        if self.rooms.len() >= MAX_ROOMS {
            return Err(Refusal::new(
                ErrorCode::TooManyRooms,
                format!("one connection may be in at most {MAX_ROOMS} rooms; leave one first"),
            )
            .in_room(&room));
        }
        let name = room;
        let room: Arc<str> = Arc::from(name.as_str());
        let listener = Listener { recipient: Arc::clone(&self.recipient), username: Arc::clone(&username) };
        let resuming = resume.is_some();
        let (after_seq, epoch) = resume.unwrap_or_default();
        let request = JoinRequest {
            room: room.to_string(),
            member: Some(self.member(&username)),
            history_limit: JOIN_HISTORY,
            after_seq,
            epoch,
            restore: false,
            moderates_everywhere: self.caller.identity.as_ref().is_some_and(|i| i.moderates_everywhere),
        };
        self.last_username = Some(Arc::clone(&username));
        self.rooms.insert(Arc::clone(&room), Room::Joining { username, held: Vec::new(), resuming });
        let (shared, conn) = (Arc::clone(&self.shared), self.conn);
        Ok(traced(tracing::debug_span!("call", rpc = "join", %room), async move {
            let hub = &shared.hub;
            if !hub.attach(&name, conn, listener).await {
                return Answer::Joined(room.clone(), Err(unavailable(&room)));
            }
            let reply = hub.services().call(&room, request, |mut c, r| async move { c.join(r).await }).await;
            if reply.is_err() {
                hub.detach(&room, conn);
            }
            let reply = reply.map_err(|status| refusal_of(&status, &room));
            Answer::Joined(room, reply)
        }))
    }

    pub(super) fn leave(&mut self, room: &str) -> Result<Call, Refusal> {
        let (room, _) = self.joined(room)?;
        self.rooms.remove(&room);
        self.shared.hub.detach(&room, self.conn);
        let request = LeaveRequest {
            room: room.to_string(),
            member_id: self.member_id.to_string(),
            reason: LeaveReason::Left.as_str().into(),
            connection: self.recipient.connection.to_string(),
            grace_ms: 0,
        };
        let shared = Arc::clone(&self.shared);
        Ok(traced(tracing::debug_span!("call", rpc = "leave", %room), async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.leave(r).await }).await;
            let reply = reply.map(drop).map_err(|status| refusal_of(&status, &room));
            Answer::Left(room, reply)
        }))
    }

    /// Checks a send and starts a batch with it.
    pub(super) fn send(
        &mut self,
        room: &str,
        text: String,
        client_id: String,
        attachment_ids: Vec<String>,
        reply_to: Option<&str>,
    ) -> Result<(), Refusal> {
        let (room, state) = self.joined(room)?;
        let username = match state {
            Room::Joined { username, .. } | Room::Joining { username, .. } => Arc::clone(username),
        };
        // The text first: a message refused for what it says takes no token.
        check_attachments(&attachment_ids).map_err(|r| r.in_room(&room))?;
        let message = if attachment_ids.is_empty() || !text.is_empty() {
            checked_message(&room, text, client_id)?
        } else {
            // Files alone: no text to check.
            checked_message(&room, "-".into(), client_id).map(|m| BatchedMessage { text, ..m })?
        };
        let reply_to_seq = reply_to.map(|id| message_seq(&room, id)).transpose()?.unwrap_or(0);
        let message = BatchedMessage { reply_to_seq, ..message };
        self.caller.send(&room)?;
        tracing::debug!(conn = self.conn, %room, client_id = message.client_id, bytes = message.text.len(), "message from client");
        // A message ends its sender's typing line in every other view, so
        // the next keystroke starts a new one: the throttle starts over.
        if let Some(Room::Joined { last_typing, .. }) = self.rooms.get_mut(&*room) {
            *last_typing = None;
        }
        self.batch = Some(Batch { room, username, messages: vec![message], attachment_ids });
        Ok(())
    }

    /// Adds to the batch the `send` frames to its room that the socket has
    /// already read, then starts the call that stores them. Any other frame
    /// met on the way is kept for next.
    pub(super) fn gather(&mut self, socket: &mut WebSocket) {
        let Some(mut batch) = self.batch.take() else {
            return;
        };
        while batch.attachment_ids.is_empty() && batch.messages.len() < SEND_BATCH {
            let Some(frame) = socket.recv().now_or_never() else {
                break; // nothing more has arrived
            };
            self.liveness.heard();
            // Only a well-formed send to the batch's room, within the frame
            // limit, with acceptable text and a rate-limit token to spare
            // joins the batch. Anything else is acted on as a frame of its
            // own (`on_frame`), which closes, refuses or handles it exactly
            // as when it comes alone — and takes no second token.
            let same_room = match &frame {
                Some(Ok(Message::Text(text))) if frame_fits(text.len()) => match frame::parse(text) {
                    Ok(ClientFrame::Send { room, text, client_id, attachments, reply_to })
                        if *room == *batch.room && attachments.is_empty() =>
                    {
                        let reply_to_seq = match reply_to.as_deref().map(|id| message_seq(&room, id)) {
                            None => Some(0),
                            Some(parsed) => parsed.ok(),
                        };
                        reply_to_seq
                            .and_then(|reply_to_seq| {
                                checked_message(&batch.room, text, client_id)
                                    .ok()
                                    .map(|m| BatchedMessage { reply_to_seq, ..m })
                            })
                            .filter(|_| self.caller.send(&room).is_ok())
                    }
                    _ => None,
                },
                _ => None,
            };
            match same_room {
                Some(message) => {
                    self.shared.metrics.frame_in("send");
                    batch.messages.push(message);
                }
                None => {
                    self.stashed = Some(frame);
                    break;
                }
            }
        }
        self.call = Some(self.store(batch));
    }

    /// The call that stores a batch of sends.
    pub(super) fn store(&self, batch: Batch) -> Call {
        let Batch { room, username, messages, attachment_ids } = batch;
        let user_id = self.person.user_id.to_string();
        let request = SendBatchRequest {
            room: room.to_string(),
            member_id: self.member_id.to_string(),
            messages,
            user_id: user_id.clone(),
        };
        let rejoin = JoinRequest {
            room: room.to_string(),
            member: Some(self.member(&username)),
            history_limit: 1,
            restore: true,
            ..JoinRequest::default()
        };
        let shared = Arc::clone(&self.shared);
        // With traces on, the batch is the `send` frame's span (a batch of
        // several frames is one span, `messages` saying how many).
        let frame = match shared.hub.services().is_traced() {
            true => crate::traced::frame_span("send", &room, self.conn),
            false => tracing::Span::none(),
        };
        let span = frame
            .in_scope(|| tracing::debug_span!("call", rpc = "send_batch", %room, messages = request.messages.len()));
        frame.record("messages", request.messages.len());
        let call = traced(span, async move {
            let services = shared.hub.services();
            let send = |request: SendBatchRequest| {
                let (attachment_ids, user_id) = (attachment_ids.clone(), user_id.clone());
                let room = &room;
                async move {
                    if attachment_ids.is_empty() {
                        return services.call(room, request, |mut c, r| async move { c.send_batch(r).await }).await;
                    }
                    // With attachments: one `Send`, its answer as a batch of one.
                    let message = request.messages.into_iter().next().unwrap_or_default();
                    let single = SendRequest {
                        room: request.room,
                        member_id: request.member_id,
                        text: message.text,
                        client_id: message.client_id,
                        attachment_ids,
                        user_id,
                        reply_to_seq: message.reply_to_seq,
                    };
                    let reply = services.call(room, single, |mut c, r| async move { c.send(r).await }).await?;
                    Ok(SendBatchResponse { events: reply.event.into_iter().collect(), repeats: vec![reply.repeat] })
                }
            };
            let reply = match send(request.clone()).await {
                Err(status) if status.code() == Code::FailedPrecondition => {
                    // This connection is in the room but the room-service no
                    // longer lists it (Redis restarted empty, or its presence
                    // ran out while unreachable): put it back silently, send
                    // once more (the client ids make a repeat store nothing twice).
                    tracing::info!(%room, "presence was lost; joining again before sending");
                    match services.call(&room, rejoin, |mut c, r| async move { c.join(r).await }).await {
                        Ok(_) => send(request).await,
                        Err(status) => Err(status),
                    }
                }
                reply => reply,
            };
            Answer::Stored(reply.map_err(|status| refusal_of(&status, &room)))
        });
        if frame.is_none() { call } else { Box::pin(call.instrument(frame)) }
    }

    /// A typing call, or none when this one comes too soon after the last.
    pub(super) fn typing(&mut self, room: &str) -> Result<Option<Call>, Refusal> {
        let (room, state) = self.joined(room)?;
        let Room::Joined { last_typing, .. } = state else {
            return Ok(None);
        };
        let now = Instant::now();
        if last_typing.is_some_and(|at| now.duration_since(at) < TYPING_EVERY) {
            self.shared.metrics.typing_dropped.increment(1);
            return Ok(None);
        }
        *last_typing = Some(now);
        let request = TypingRequest { room: room.to_string(), member_id: self.member_id.to_string() };
        let shared = Arc::clone(&self.shared);
        Ok(Some(traced(tracing::debug_span!("call", rpc = "typing", %room), async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.typing(r).await }).await;
            Answer::Done(reply.map(drop).map_err(|status| refusal_of(&status, &room)))
        })))
    }

    pub(super) fn members(&mut self, room: &str, after: String) -> Result<Call, Refusal> {
        let (room, _) = self.joined(room)?;
        let request =
            MembersRequest { room: room.to_string(), after, limit: 0, user_id: self.person.user_id.to_string() };
        let shared = Arc::clone(&self.shared);
        Ok(traced(tracing::debug_span!("call", rpc = "members", %room), async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.members(r).await }).await;
            Answer::Members(room.clone(), reply.map_err(|status| refusal_of(&status, &room)))
        }))
    }

    /// The frames a finished call sends back.
    pub(super) fn on_answer(&mut self, answer: Answer) -> Vec<Utf8Bytes> {
        match answer {
            Answer::Joined(room, Ok(reply)) => self.on_joined(room, &reply),
            Answer::Joined(room, Err(refusal)) => {
                self.rooms.remove(&room);
                vec![self.refuse(&refusal)]
            }
            Answer::Left(room, Ok(())) => vec![frame::encode(&ServerFrame::Left { room: &room, reason: None })],
            Answer::Members(room, Ok(page)) => vec![frame::encode(&ServerFrame::Members {
                room: &room,
                members: page.members.iter().map(MemberView::from).collect(),
                member_count: page.member_count,
                next: Some(page.next.as_str()).filter(|next| !next.is_empty()),
            })],
            Answer::Done(Ok(())) => Vec::new(),
            Answer::Stored(Ok(reply)) => self.echo_repeats(&reply),
            Answer::Read(Ok(frame)) => vec![frame],
            Answer::Left(_, Err(refusal))
            | Answer::Members(_, Err(refusal))
            | Answer::Done(Err(refusal))
            | Answer::Stored(Err(refusal))
            | Answer::Read(Err(refusal)) => {
                vec![self.refuse(&refusal)]
            }
        }
    }

    /// The echo of each send that was a repeat of one stored before (the
    /// same client id, e.g. re-sent after a reconnect): it is not published
    /// again, so it comes back to its sender here (the page drops it by `id`
    /// if it already showed it).
    fn echo_repeats(&self, reply: &SendBatchResponse) -> Vec<Utf8Bytes> {
        reply
            .events
            .iter()
            .zip(&reply.repeats)
            .filter(|(event, repeat)| {
                **repeat && matches!(self.rooms.get(event.room.as_str()), Some(Room::Joined { .. }))
            })
            .filter_map(|(event, _)| EventView::of(event, self.shared.hub.signer()).map(|view| frame::encode(&view)))
            .collect()
    }

    /// `joined`, then the room's events that came while it was in flight.
    pub(super) fn on_joined(&mut self, room: Arc<str>, reply: &JoinResponse) -> Vec<Utf8Bytes> {
        let Some(Room::Joining { username, held, resuming }) = self.rooms.remove(&room) else {
            return Vec::new();
        };
        let snapshot_seq = reply.history.iter().map(|e| e.seq).chain([reply.last_seq]).max().unwrap_or(0);
        if resuming {
            self.shared.metrics.resumed(reply.recovered);
        }
        tracing::debug!(conn = self.conn, %room, %username, seq = snapshot_seq, "joined");
        let mut frames = vec![frame::encode(&ServerFrame::Joined {
            room: &room,
            member_id: &self.member_id,
            epoch: &reply.epoch,
            last_seq: snapshot_seq,
            recovered: reply.recovered,
            // A resume gets everything it missed, changes to messages it
            // shows included; a first join only messages, changes applied.
            history: reply
                .history
                .iter()
                .filter(|e| reply.recovered || matches!(e.kind, Some(Kind::Message(_) | Kind::Moderation(_))))
                .filter_map(|e| EventView::of(e, self.shared.hub.signer()))
                .collect(),
            members: reply.members.iter().map(MemberView::from).collect(),
            member_count: reply.member_count,
            members_next: Some(reply.members_next.as_str()).filter(|next| !next.is_empty()),
            role: if reply.role.is_empty() { "member" } else { &reply.role },
        })];
        let state = Room::Joined { username, epoch: Arc::from(reply.epoch.as_str()), snapshot_seq, last_typing: None };
        self.rooms.insert(room, state);
        frames.extend(held.into_iter().filter(|d| self.wants(d)).map(|d| d.frame.clone()));
        frames
    }

    pub(super) fn refuse(&self, refusal: &Refusal) -> Utf8Bytes {
        self.shared.metrics.error_sent(refusal.code);
        frame::refusal(refusal)
    }
}

/// A send's text and client id, checked; every send gets a client id, so a
/// retry on another room-service is stored once.
/// At most [`MAX_ATTACHMENTS`] well-formed ids; whether they exist is the
/// room-service's to say.
fn check_attachments(ids: &[String]) -> Result<(), Refusal> {
    use chat_proto::files::{MAX_ATTACHMENTS, is_attachment_id};
    if ids.len() > MAX_ATTACHMENTS {
        return Err(Refusal::new(
            ErrorCode::BadAttachment,
            format!("a message carries at most {MAX_ATTACHMENTS} attachments; this one has {}", ids.len()),
        ));
    }
    if let Some(bad) = ids.iter().find(|id| !is_attachment_id(id)) {
        return Err(Refusal::new(ErrorCode::BadAttachment, format!("{bad:?} is not an attachment id")));
    }
    Ok(())
}

/// The seq of a message `id` (`<epoch>:<seq>`) a frame names.
pub(super) fn message_seq(room: &str, id: &str) -> Result<u64, Refusal> {
    let (_, seq) = chat_proto::changes::parse_message_id(id).map_err(|e| Refusal::from(e).in_room(room))?;
    Ok(seq)
}

pub(super) fn checked_message(room: &str, text: String, client_id: String) -> Result<BatchedMessage, Refusal> {
    names::check_text(&text).map_err(|e| Refusal::from(e).in_room(room))?;
    names::check_client_id(&client_id).map_err(|e| Refusal::from(e).in_room(room))?;
    let client_id = if client_id.is_empty() { format!("g{}", rand::random::<u64>()) } else { client_id };
    Ok(BatchedMessage { text, client_id, ..BatchedMessage::default() })
}

/// A call's future, boxed, inside its span: the calls of one connection
/// (whose span is their parent) can then be told apart in the logs. The
/// spans are at `debug`, so at the default `info` they cost nothing.
pub(super) fn traced(span: tracing::Span, call: impl Future<Output = Answer> + Send + 'static) -> Call {
    Box::pin(call.instrument(span))
}

/// Resolves when the call in flight is answered (and clears it); never while
/// there is none.
pub(super) async fn answered(call: &mut Option<Call>) -> Answer {
    let Some(pending) = call.as_mut() else {
        return std::future::pending().await;
    };
    let answer = pending.await;
    *call = None;
    answer
}
