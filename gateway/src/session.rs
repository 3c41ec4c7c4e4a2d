//! One browser connection: frames in, calls out, room events back.
//!
//! A single task owns the socket; [`Session`] holds the connection's state
//! and [`Session::run`] its life. The loop waits on five things at once and
//! hands each to one method: the gateway draining, the browser falling too
//! far behind, the room-service call in flight finishing, the browser's next
//! frame, and room events the feeds queued. Frames are acted on in order —
//! the next one is read only once the call of the last one is answered — but
//! a slow call never holds up deliveries: while a `join` waits on a
//! room-service, events keep being written. Events of a room whose join is
//! in flight are held and written right after its `joined`, without those
//! its snapshot already showed. A browser that sends faster than one round
//! trip per message has its `send` frames gathered — those already read from
//! the socket, up to [`SEND_BATCH`], to the same room — into one call that
//! stores them in order.
//!
//! The connection is a browser session (`session_token`): its member id comes
//! from the session token, so a browser that reconnects with the token —
//! to any gateway — is the same member, and a join with `after_seq`/`epoch`
//! gets exactly what it missed. How the session ends decides how it leaves
//! its rooms ([`Departure`]): at once when the browser closed or went
//! silent, after the resume grace when it vanished, not at all when the
//! session moved to another connection. A ping goes out every `PING_SECS`
//! ([`Liveness`]); a write that makes no progress for [`WRITE_STALL`] ends
//! the connection instead of holding it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use chat_proto::v1::{
    BatchedMessage, JoinRequest, JoinResponse, LeaveRequest, Member, MembersRequest, MembersResponse, SendBatchRequest,
    TypingRequest,
};
use chat_proto::{RoomName, names};
use futures_util::{FutureExt, SinkExt};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Code;

use crate::caller::Caller;
use crate::feed::{Delivery, Listener};
use crate::frame::{
    self, ClientFrame, EventView, Limits, MemberView, Refusal, ServerFrame, close, refusal_of, unavailable,
};
use crate::hub::Hub;
use crate::liveness::{Due, Liveness};
use crate::metrics::GatewayMetrics;
use crate::session_token::SessionToken;

/// Rooms one connection may be in at once.
pub const MAX_ROOMS: usize = 32;
/// Frames waiting to be written to one browser before it counts as too slow.
pub const QUEUE_FRAMES: usize = 1024;
/// The largest frame a browser may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// What the socket reads at a time. Chat frames are small; a larger one is
/// read into a buffer of its own size, for that frame only.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Bytes of frames gathered before they are written to the socket.
pub const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// Typing frames closer together than this are dropped.
const TYPING_EVERY: Duration = Duration::from_secs(2);
/// How long a closing session waits for the browser's Close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Events written per flush at most.
const WRITE_BATCH: usize = 64;
/// History sent with `joined`.
const JOIN_HISTORY: u32 = 50;
/// `send` frames stored in one call at most (the room-service's bound).
pub const SEND_BATCH: usize = 64;
/// How long a write may make no progress before the connection is dropped:
/// the browser is not reading (its buffers are full), and holding the
/// socket would hold its memory too.
pub const WRITE_STALL: Duration = Duration::from_secs(10);

/// What every session shares.
#[derive(Debug)]
pub struct Shared {
    pub hub: Hub,
    pub metrics: Arc<GatewayMetrics>,
    pub gateway: Arc<str>,
    /// Random per process start, so member ids of a restarted gateway never
    /// repeat those of its previous run (whose presence may still linger).
    pub run_id: String,
    /// Cancelled when the gateway drains: sessions tell browsers to reconnect.
    pub draining: CancellationToken,
    /// Work that must finish before the gateway exits (leave notices).
    pub tasks: TaskTracker,
    /// How often browsers are pinged (`PING_SECS`).
    pub ping_every: Duration,
    /// How long a vanished session stays in its rooms (`RESUME_GRACE_SECS`).
    pub resume_grace: Duration,
}

/// A room-service call in flight, and what it comes back as. It is `Send`
/// but not `Sync`, so the session's async methods take `&mut self`.
type Call = Pin<Box<dyn Future<Output = Answer> + Send>>;

enum Answer {
    Joined(Arc<str>, Result<JoinResponse, Refusal>),
    Left(Arc<str>, Result<(), Refusal>),
    Members(Arc<str>, Result<MembersResponse, Refusal>),
    /// Sent or typing: nothing to write unless it failed.
    Done(Result<(), Refusal>),
}

/// A room this connection is in, or is joining.
enum Room {
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
struct Batch {
    room: Arc<str>,
    username: Arc<str>,
    messages: Vec<BatchedMessage>,
}

/// A frame as the socket gave it.
type Incoming = Option<Result<Message, axum::Error>>;

/// One thing the loop woke up for.
enum Step {
    Drain,
    TooSlow,
    Moved,
    Live(Due),
    Answer(Answer),
    Frame(Incoming),
    Deliver(Arc<Delivery>),
}

/// How the session ended: the close frame to send, and how it leaves its rooms.
enum End {
    /// The browser closed the socket itself: nothing to send; it leaves.
    Closed,
    /// The browser vanished (the socket failed) or stopped reading: nothing
    /// can be sent; it may come back.
    Gone,
    Close(u16, &'static str),
}

/// How a session that ended leaves its rooms.
enum Departure {
    /// At once, for this reason.
    Now(&'static str),
    /// After the resume grace, unless its session resumes on another connection.
    Grace,
    /// Not at all: another connection holds its session now.
    Stay,
}

impl End {
    /// For the `chat_gateway_sessions_ended_total` metric.
    fn how(&self) -> &'static str {
        match self {
            End::Closed => "closed",
            End::Gone => "gone",
            End::Close(close::SLOW_CONSUMER, _) => "slow_consumer",
            End::Close(close::RESTART, _) => "drained",
            End::Close(close::SESSION_MOVED, _) => "session_moved",
            End::Close(close::TIMEOUT, _) => "timeout",
            End::Close(..) => "protocol_error",
        }
    }

    fn departure(&self) -> Departure {
        match self {
            End::Closed => Departure::Now("disconnected"),
            End::Gone => Departure::Grace,
            End::Close(close::SLOW_CONSUMER | close::RESTART, _) => Departure::Grace,
            End::Close(close::SESSION_MOVED, _) => Departure::Stay,
            End::Close(close::TIMEOUT, _) => Departure::Now("timeout"),
            End::Close(..) => Departure::Now("disconnected"),
        }
    }
}

pub struct Session {
    shared: Arc<Shared>,
    conn: u64,
    /// The browser session's token, and whether this connection resumed it.
    token: SessionToken,
    resumed: bool,
    /// The member this session is in every room: from the token.
    member_id: Arc<str>,
    /// This connection, as room-services know it: unique per connection.
    connection: Arc<str>,
    rooms: HashMap<Arc<str>, Room>,
    /// Where feeds queue this connection's events.
    queue: mpsc::Sender<Arc<Delivery>>,
    /// Notified by a feed that found `queue` full.
    too_slow: Arc<Notify>,
    /// Notified by a feed when the session was resumed on another connection.
    moved: Arc<Notify>,
    liveness: Liveness,
    call: Option<Call>,
    /// Sends being gathered into one call.
    batch: Option<Batch>,
    /// A frame read while gathering that was not a send to the batch's room:
    /// acted on next, before the socket is read again.
    stashed: Option<Incoming>,
    /// Who this connection is (from its token, if any) and its rate limits.
    caller: Caller,
}

/// Runs a connection until the browser leaves, is too slow, goes silent, or
/// the gateway drains. `resume`: the session token the browser came back with.
pub async fn run(mut socket: WebSocket, shared: Arc<Shared>, conn: u64, caller: Caller, resume: Option<SessionToken>) {
    let (queue, mut deliveries) = mpsc::channel(QUEUE_FRAMES);
    let resumed = resume.is_some();
    let token = resume.unwrap_or_default();
    let member_id = Arc::from(token.member_id(caller.identity.as_ref().map(|identity| identity.user.as_str())));
    let connection = Arc::from(format!("{}/{}-{conn}", shared.gateway, shared.run_id));
    let liveness = Liveness::new(shared.ping_every);
    let mut session = Session {
        shared,
        conn,
        token,
        resumed,
        member_id,
        connection,
        rooms: HashMap::new(),
        queue,
        too_slow: Arc::default(),
        moved: Arc::default(),
        liveness,
        call: None,
        batch: None,
        stashed: None,
        caller,
    };
    let end = session.run(&mut socket, &mut deliveries).await;
    session.shared.metrics.session_ended(end.how());
    session.leave_all(end.departure());
    if let End::Close(code, reason) = end {
        close(socket, code, reason).await;
    }
}

impl Session {
    async fn run(&mut self, socket: &mut WebSocket, deliveries: &mut mpsc::Receiver<Arc<Delivery>>) -> End {
        let welcome = self.welcome();
        if let Err(end) = self.write(socket, vec![welcome]).await {
            return end;
        }
        let (too_slow, moved) = (Arc::clone(&self.too_slow), Arc::clone(&self.moved));
        let draining = self.shared.draining.clone();
        // Made once, not per turn of the loop: each turn would register and
        // unregister a waiter for each, per delivery batch.
        let mut drained = std::pin::pin!(draining.cancelled());
        let (mut slow, mut elsewhere) = (std::pin::pin!(too_slow.notified()), std::pin::pin!(moved.notified()));
        loop {
            let stashed = if self.call.is_none() { self.stashed.take() } else { None };
            let step = match stashed {
                Some(frame) => Step::Frame(frame),
                None => tokio::select! {
                    () = &mut drained => Step::Drain,
                    () = &mut slow => Step::TooSlow,
                    () = &mut elsewhere => Step::Moved,
                    // Not while a call is in flight: the socket is not read then.
                    due = self.liveness.due(), if self.call.is_none() => Step::Live(due),
                    answer = answered(&mut self.call) => Step::Answer(answer),
                    frame = socket.recv(), if self.call.is_none() => Step::Frame(frame),
                    Some(delivery) = deliveries.recv() => Step::Deliver(delivery),
                },
            };
            let written = match step {
                Step::Drain => return self.drain(socket).await,
                Step::TooSlow => return End::Close(close::SLOW_CONSUMER, "slow consumer: too many frames waiting"),
                Step::Moved => return End::Close(close::SESSION_MOVED, "session resumed on another connection"),
                Step::Live(Due::Silent) => {
                    tracing::info!(conn = self.conn, "browser silent for 2 × PING_SECS; closing");
                    return End::Close(close::TIMEOUT, "timeout: nothing heard for 2 × PING_SECS");
                }
                Step::Live(Due::Ping) => self.ping(socket).await,
                Step::Answer(answer) => {
                    let frames = self.on_answer(answer);
                    self.write(socket, frames).await
                }
                Step::Frame(frame) => {
                    self.liveness.heard();
                    match self.on_frame(frame) {
                        Ok(frames) => {
                            self.gather(socket);
                            self.write(socket, frames).await
                        }
                        Err(end) => return end,
                    }
                }
                Step::Deliver(first) => self.write_batch(socket, first, deliveries).await,
            };
            if let Err(end) = written {
                return end;
            }
        }
    }

    fn welcome(&self) -> Utf8Bytes {
        frame::encode(&ServerFrame::Welcome {
            gateway: &self.shared.gateway,
            limits: Limits {
                max_text_bytes: names::MAX_TEXT_BYTES,
                max_username_chars: names::MAX_USERNAME_CHARS,
                max_rooms: MAX_ROOMS,
            },
            session: self.token.as_str(),
            resumed: self.resumed,
            ping_ms: millis(self.shared.ping_every),
            resume_grace_ms: millis(self.shared.resume_grace),
        })
    }

    async fn drain(&mut self, socket: &mut WebSocket) -> End {
        let notice = frame::encode(&ServerFrame::Reconnect { reason: "gateway shutting down", after_ms: 500 });
        match self.write(socket, vec![notice]).await {
            Ok(()) => End::Close(close::RESTART, "gateway restarting: reconnect"),
            Err(end) => end,
        }
    }

    async fn ping(&mut self, socket: &mut WebSocket) -> Result<(), End> {
        match tokio::time::timeout(WRITE_STALL, socket.send(Message::Ping(Default::default()))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(write_failed(socket, &error)),
            Err(_) => Err(stalled(self.conn)),
        }
    }

    /// Acts on one frame from the browser: the frames to send back at once,
    /// or how the connection ends. A frame that needs a room-service starts
    /// the call and sends nothing yet.
    fn on_frame(&mut self, frame: Incoming) -> Result<Vec<Utf8Bytes>, End> {
        let text = match frame {
            None => return Err(End::Gone),
            Some(Ok(Message::Close(_))) => return Err(End::Closed),
            Some(Err(error)) => return Err(read_failed(self.conn, &error)),
            Some(Ok(Message::Text(text))) if text.len() > MAX_FRAME_BYTES => {
                return Err(End::Close(close::TOO_BIG, "frame over 64 KiB"));
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(bytes))) if bytes.len() > MAX_FRAME_BYTES => {
                return Err(End::Close(close::TOO_BIG, "frame over 64 KiB"));
            }
            Some(Ok(Message::Binary(_))) => {
                let refusal =
                    Refusal::new("binary_frame", "binary frames are not part of the protocol: send JSON text frames");
                return Ok(vec![self.refuse(&refusal)]);
            }
            Some(Ok(_)) => return Ok(Vec::new()), // ping/pong are answered by the socket
        };
        let metrics = &self.shared.metrics;
        let started = match frame::parse(&text) {
            Ok(request) => {
                metrics.frame_in(request.kind());
                self.start(request)
            }
            Err(refusal) => {
                metrics.frame_in("invalid");
                Err(refusal)
            }
        };
        Ok(match started {
            Ok(()) => Vec::new(),
            Err(refusal) => vec![self.refuse(&refusal)],
        })
    }

    /// Checks a request and starts its call (a send starts a batch instead).
    fn start(&mut self, request: ClientFrame) -> Result<(), Refusal> {
        let call: Call = match request {
            ClientFrame::Join { room, username, after_seq, epoch } => self.join(room, &username, after_seq, epoch)?,
            ClientFrame::Leave { room } => self.leave(&room)?,
            ClientFrame::Send { room, text, client_id } => return self.send(&room, text, client_id),
            ClientFrame::Typing { room } => match self.typing(&room)? {
                Some(call) => call,
                None => return Ok(()),
            },
            ClientFrame::Members { room, after } => self.members(&room, after)?,
        };
        self.call = Some(call);
        Ok(())
    }

    /// This connection as a room member under `username`.
    fn member(&self, username: &str) -> Member {
        Member {
            member_id: self.member_id.to_string(),
            username: username.to_owned(),
            gateway: self.shared.gateway.to_string(),
            joined_at_ms: 0,
            connection: self.connection.to_string(),
        }
    }

    /// The room's name and state, if joined (not only joining).
    fn joined(&mut self, room: &str) -> Result<(Arc<str>, &mut Room), Refusal> {
        let name = match self.rooms.get_key_value(room) {
            Some((name, Room::Joined { .. })) => Arc::clone(name),
            _ => {
                return Err(Refusal::new(
                    "not_joined",
                    format!(
                        "you have not joined room {room:?}; send {{\"type\":\"join\",\"room\":{room:?},\"username\":\"…\"}} first"
                    ),
                )
                .in_room(room));
            }
        };
        let state = self.rooms.get_mut(room).ok_or_else(|| Refusal::new("not_joined", "not in the room"))?;
        Ok((name, state))
    }

    fn join(
        &mut self,
        room: String,
        username: &str,
        after_seq: Option<u64>,
        epoch: Option<String>,
    ) -> Result<Call, Refusal> {
        // A bad room name is not echoed back as `room`: it names no room.
        let room = RoomName::try_from(room).map_err(Refusal::from)?;
        let resume = match (after_seq, epoch) {
            (None, None) => None,
            (Some(after_seq), Some(epoch)) if epoch.len() <= MAX_EPOCH_BYTES => Some((after_seq, epoch)),
            _ => {
                return Err(Refusal::new(
                    "bad_json",
                    format!("give both after_seq and epoch (an epoch of at most {MAX_EPOCH_BYTES} bytes) to resume, or neither"),
                )
                .in_room(&room));
            }
        };
        // The join rate limit, the token's rooms, and the name: the token's,
        // or the requested one checked.
        let username: Arc<str> = Arc::from(self.caller.join(&room, username)?.as_str());
        if self.rooms.contains_key(room.as_str()) {
            return Err(Refusal::new("already_joined", format!("you are already in room {room:?}")).in_room(&room));
        }
        if self.rooms.len() >= MAX_ROOMS {
            return Err(Refusal::new(
                "too_many_rooms",
                format!("one connection may be in at most {MAX_ROOMS} rooms; leave one first"),
            )
            .in_room(&room));
        }
        let name = room;
        let room: Arc<str> = Arc::from(name.as_str());
        let listener = Listener {
            member_id: Arc::clone(&self.member_id),
            username: Arc::clone(&username),
            connection: Arc::clone(&self.connection),
            queue: self.queue.clone(),
            too_slow: Arc::clone(&self.too_slow),
            moved: Arc::clone(&self.moved),
        };
        let resuming = resume.is_some();
        let (after_seq, epoch) = resume.unwrap_or_default();
        let request = JoinRequest {
            room: room.to_string(),
            member: Some(self.member(&username)),
            history_limit: JOIN_HISTORY,
            after_seq,
            epoch,
            restore: false,
        };
        self.rooms.insert(Arc::clone(&room), Room::Joining { username, held: Vec::new(), resuming });
        let (shared, conn) = (Arc::clone(&self.shared), self.conn);
        Ok(Box::pin(async move {
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

    fn leave(&mut self, room: &str) -> Result<Call, Refusal> {
        let (room, _) = self.joined(room)?;
        self.rooms.remove(&room);
        self.shared.hub.detach(&room, self.conn);
        let request = LeaveRequest {
            room: room.to_string(),
            member_id: self.member_id.to_string(),
            reason: "left".into(),
            connection: self.connection.to_string(),
            grace_ms: 0,
        };
        let shared = Arc::clone(&self.shared);
        Ok(Box::pin(async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.leave(r).await }).await;
            let reply = reply.map(drop).map_err(|status| refusal_of(&status, &room));
            Answer::Left(room, reply)
        }))
    }

    /// Checks a send and starts a batch with it.
    fn send(&mut self, room: &str, text: String, client_id: String) -> Result<(), Refusal> {
        let (room, state) = self.joined(room)?;
        let username = match state {
            Room::Joined { username, .. } | Room::Joining { username, .. } => Arc::clone(username),
        };
        self.caller.send(&room)?;
        let message = checked_message(&room, text, client_id)?;
        tracing::debug!(conn = self.conn, %room, client_id = message.client_id, bytes = message.text.len(), "message from client");
        self.batch = Some(Batch { room, username, messages: vec![message] });
        Ok(())
    }

    /// Adds to the batch the `send` frames to its room that the socket has
    /// already read, then starts the call that stores them. Any other frame
    /// met on the way is kept for next.
    fn gather(&mut self, socket: &mut WebSocket) {
        let Some(mut batch) = self.batch.take() else {
            return;
        };
        while batch.messages.len() < SEND_BATCH {
            let Some(frame) = socket.recv().now_or_never() else {
                break; // nothing more has arrived
            };
            self.liveness.heard();
            let same_room = match &frame {
                Some(Ok(Message::Text(text))) => match frame::parse(text) {
                    // Over the rate limit: acted on as a frame of its own,
                    // which refuses it.
                    Ok(ClientFrame::Send { room, text, client_id })
                        if *room == *batch.room && self.caller.send(&room).is_ok() =>
                    {
                        checked_message(&batch.room, text, client_id).ok()
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
    fn store(&self, batch: Batch) -> Call {
        let Batch { room, username, messages } = batch;
        let request = SendBatchRequest { room: room.to_string(), member_id: self.member_id.to_string(), messages };
        let rejoin = JoinRequest {
            room: room.to_string(),
            member: Some(self.member(&username)),
            history_limit: 1,
            restore: true,
            ..JoinRequest::default()
        };
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let services = shared.hub.services();
            let send = |request: SendBatchRequest| {
                services.call(&room, request, |mut c, r| async move { c.send_batch(r).await })
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
            Answer::Done(reply.map(drop).map_err(|status| refusal_of(&status, &room)))
        })
    }

    /// A typing call, or none when this one comes too soon after the last.
    fn typing(&mut self, room: &str) -> Result<Option<Call>, Refusal> {
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
        Ok(Some(Box::pin(async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.typing(r).await }).await;
            Answer::Done(reply.map(drop).map_err(|status| refusal_of(&status, &room)))
        })))
    }

    fn members(&mut self, room: &str, after: String) -> Result<Call, Refusal> {
        let (room, _) = self.joined(room)?;
        let request = MembersRequest { room: room.to_string(), after, limit: 0 };
        let shared = Arc::clone(&self.shared);
        Ok(Box::pin(async move {
            let reply = shared.hub.services().call(&room, request, |mut c, r| async move { c.members(r).await }).await;
            Answer::Members(room.clone(), reply.map_err(|status| refusal_of(&status, &room)))
        }))
    }

    /// The frames a finished call sends back.
    fn on_answer(&mut self, answer: Answer) -> Vec<Utf8Bytes> {
        match answer {
            Answer::Joined(room, Ok(reply)) => self.on_joined(room, &reply),
            Answer::Joined(room, Err(refusal)) => {
                self.rooms.remove(&room);
                vec![self.refuse(&refusal)]
            }
            Answer::Left(room, Ok(())) => vec![frame::encode(&ServerFrame::Left { room: &room })],
            Answer::Members(room, Ok(page)) => vec![frame::encode(&ServerFrame::Members {
                room: &room,
                members: page.members.iter().map(MemberView::from).collect(),
                member_count: page.member_count,
                next: Some(page.next.as_str()).filter(|next| !next.is_empty()),
            })],
            Answer::Done(Ok(())) => Vec::new(),
            Answer::Left(_, Err(refusal)) | Answer::Members(_, Err(refusal)) | Answer::Done(Err(refusal)) => {
                vec![self.refuse(&refusal)]
            }
        }
    }

    /// `joined`, then the room's events that came while it was in flight.
    fn on_joined(&mut self, room: Arc<str>, reply: &JoinResponse) -> Vec<Utf8Bytes> {
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
            history: reply.history.iter().filter_map(EventView::of).collect(),
            members: reply.members.iter().map(MemberView::from).collect(),
            member_count: reply.member_count,
            members_next: Some(reply.members_next.as_str()).filter(|next| !next.is_empty()),
        })];
        let state = Room::Joined { username, epoch: Arc::from(reply.epoch.as_str()), snapshot_seq, last_typing: None };
        self.rooms.insert(room, state);
        frames.extend(held.into_iter().filter(|d| self.wants(d)).map(|d| d.frame.clone()));
        frames
    }

    fn refuse(&self, refusal: &Refusal) -> Utf8Bytes {
        self.shared.metrics.error_sent(refusal.code);
        frame::refusal(refusal)
    }

    /// Writes frames and flushes; a write that fails or stalls ends the session.
    async fn write(&mut self, socket: &mut WebSocket, frames: Vec<Utf8Bytes>) -> Result<(), End> {
        if frames.is_empty() {
            return Ok(());
        }
        self.shared.metrics.frames_out.increment(frames.len() as u64);
        let written = async {
            for frame in frames {
                socket.feed(Message::Text(frame)).await?;
            }
            socket.flush().await
        };
        match tokio::time::timeout(WRITE_STALL, written).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(write_failed(socket, &error)),
            Err(_) => Err(stalled(self.conn)),
        }
    }

    /// Writes queued events (as [`Self::feed_batch`]) within [`WRITE_STALL`].
    async fn write_batch(
        &mut self,
        socket: &mut WebSocket,
        first: Arc<Delivery>,
        deliveries: &mut mpsc::Receiver<Arc<Delivery>>,
    ) -> Result<(), End> {
        let conn = self.conn;
        match tokio::time::timeout(WRITE_STALL, self.feed_batch(socket, first, deliveries)).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(error))) => Err(write_failed(socket, &error)),
            Ok(Err(end)) => Err(end),
            Err(_) => Err(stalled(conn)),
        }
    }

    /// Writes queued events (holding those of a room still joining, skipping
    /// what a `joined` snapshot already showed) and flushes once.
    async fn feed_batch(
        &mut self,
        socket: &mut WebSocket,
        first: Arc<Delivery>,
        deliveries: &mut mpsc::Receiver<Arc<Delivery>>,
    ) -> Result<Result<(), axum::Error>, End> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(delivery) = next.take() {
            if let Some(Room::Joining { held, .. }) = self.rooms.get_mut(&delivery.room) {
                if held.len() >= QUEUE_FRAMES {
                    return Err(End::Close(close::SLOW_CONSUMER, "slow consumer: too many frames waiting"));
                }
                held.push(delivery);
            } else if self.wants(&delivery) {
                if let Err(error) = socket.feed(Message::Text(delivery.frame.clone())).await {
                    return Ok(Err(error));
                }
                written += 1;
            } // else: left the room, or the snapshot held it
            if written < WRITE_BATCH {
                next = deliveries.try_recv().ok();
            }
        }
        self.shared.metrics.frames_out.increment(written as u64);
        Ok(socket.flush().await)
    }

    fn wants(&self, delivery: &Delivery) -> bool {
        let Some(Room::Joined { epoch, snapshot_seq, .. }) = self.rooms.get(&delivery.room) else {
            return false;
        };
        if delivery.seq == 0 {
            return delivery.from.as_deref() != Some(&*self.member_id);
        }
        !(delivery.epoch == *epoch && delivery.seq <= *snapshot_seq)
    }

    /// Detaches from every room and tells the room-services how the session
    /// leaves them, without making the closing connection wait for them.
    fn leave_all(&mut self, departure: Departure) {
        let leaving = match departure {
            Departure::Now(reason) => Some((reason, 0)),
            Departure::Grace => Some(("disconnected", millis(self.shared.resume_grace))),
            Departure::Stay => None, // another connection holds the session now
        };
        for (room, _) in self.rooms.drain() {
            self.shared.hub.detach(&room, self.conn);
            let Some((reason, grace_ms)) = leaving else {
                continue;
            };
            let shared = Arc::clone(&self.shared);
            let request = LeaveRequest {
                room: room.to_string(),
                member_id: self.member_id.to_string(),
                reason: reason.into(),
                connection: self.connection.to_string(),
                grace_ms,
            };
            self.shared.tasks.spawn(async move {
                let left = shared.hub.services().call(&room, request, |mut c, r| async move { c.leave(r).await });
                if let Err(status) = left.await {
                    tracing::warn!(room = %room, %status, "could not report a disconnect; presence will expire");
                }
            });
        }
    }
}

/// The longest epoch a resuming join may name (room epochs are 12 characters).
const MAX_EPOCH_BYTES: usize = 64;

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// How a failed write ends the session: a browser that closed the socket
/// itself (its Close frame is read, or waiting to be) leaves at once; one
/// that vanished gets the resume grace.
fn write_failed(socket: &mut WebSocket, error: &axum::Error) -> End {
    if crate::closing::closed_by_peer(error) {
        return End::Closed;
    }
    match socket.recv().now_or_never() {
        Some(Some(Ok(Message::Close(_)))) => End::Closed,
        _ => End::Gone,
    }
}

/// A write that made no progress for [`WRITE_STALL`]: the browser is not
/// reading. Nothing more can be sent to it; it may come back and resume.
fn stalled(conn: u64) -> End {
    tracing::info!(conn, "write stalled for {WRITE_STALL:?}; dropping the connection");
    End::Gone
}

/// A send's text and client id, checked; every send gets a client id, so a
/// retry on another room-service is stored once.
fn checked_message(room: &str, text: String, client_id: String) -> Result<BatchedMessage, Refusal> {
    names::check_text(&text).map_err(|e| Refusal::from(e).in_room(room))?;
    names::check_client_id(&client_id).map_err(|e| Refusal::from(e).in_room(room))?;
    let client_id = if client_id.is_empty() { format!("g{}", rand::random::<u64>()) } else { client_id };
    Ok(BatchedMessage { text, client_id })
}

/// Resolves when the call in flight is answered (and clears it); never while
/// there is none.
async fn answered(call: &mut Option<Call>) -> Answer {
    let Some(pending) = call.as_mut() else {
        return std::future::pending().await;
    };
    let answer = pending.await;
    *call = None;
    answer
}

/// How a failed socket read ends the session: a close code for a broken
/// frame (1007, 1002, 1009), nothing when the browser is simply gone.
fn read_failed(conn: u64, error: &axum::Error) -> End {
    tracing::debug!(conn, %error, "socket read failed");
    match crate::closing::close_for_read_error(error) {
        Some((code, reason)) => End::Close(code, reason),
        None => End::Gone,
    }
}

/// Sends the Close frame and waits (briefly) for the browser's answering
/// Close before the socket is dropped: dropping at once (the process may
/// exit right after a drain) can reset the connection before our last
/// frames leave, and the browser would see 1006 instead of the reconnect
/// notice.
async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let close = Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }));
    if socket.send(close).await.is_ok() {
        crate::closing::await_close(&mut socket, CLOSE_WAIT, |m| matches!(m, Message::Close(_))).await;
    }
}
