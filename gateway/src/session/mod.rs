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
//! the socket, up to [`crate::limits::SEND_BATCH`], to the same room — into one call that
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

use chat_proto::{ErrorCode, LeaveReason};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use chat_proto::names;
use chat_proto::v1::LeaveRequest;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::caller::Caller;
use crate::closing::CloseCode;
use crate::feed::{Delivery, Recipient};
use crate::frame::{self, ClientFrame, Limits, Refusal, ServerFrame};
use crate::hub::Hub;
use crate::limits::{MAX_ROOMS, QUEUE_FRAMES, WRITE_STALL, frame_fits};
use crate::liveness::{Due, Liveness};
use crate::metrics::GatewayMetrics;
use crate::session_token::SessionToken;

// The session's parts: the calls it makes and what their answers send
// back (`calls`), the reads of stored messages (`history`), how it ends
// (`ending`), and how it writes (`writing`).
mod calls;
mod changes;
mod ending;
mod history;
mod moderation;
mod people;
mod writing;

use calls::{Answer, Batch, Call, Room, answered};
use ending::{Departure, End, close, read_failed, stalled, write_failed};
use people::User;

/// What every session shares.
#[derive(Debug)]
pub(crate) struct Shared {
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
    /// `MAX_UPLOAD_BYTES`, told to browsers in `welcome`.
    pub max_upload_bytes: u64,
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

pub(crate) struct Session {
    shared: Arc<Shared>,
    conn: u64,
    /// The browser session's token, and whether this connection resumed it.
    token: SessionToken,
    resumed: bool,
    /// The member this session is in every room: from the token.
    member_id: Arc<str>,
    rooms: HashMap<Arc<str>, Room>,
    /// This connection as its feeds see it: its member and connection ids
    /// (unique per connection, as room-services know it), the queue feeds
    /// put its events on, and the notices of a feed that found that queue
    /// full or saw the session resumed elsewhere.
    recipient: Arc<Recipient>,
    liveness: Liveness,
    call: Option<Call>,
    /// Sends being gathered into one call.
    batch: Option<Batch>,
    /// A frame read while gathering that was not a send to the batch's room:
    /// acted on next, before the socket is read again.
    stashed: Option<Incoming>,
    /// Who this connection is (from its token, if any) and its rate limits.
    caller: Caller,
    /// This connection as a user, and the inbox it follows (`people.rs`).
    person: User,
    /// The name of the last join, for `open_dm` without a token's name.
    last_username: Option<Arc<str>>,
}

/// Runs a connection until the browser leaves, is too slow, goes silent, or
/// the gateway drains. `resume`: the session token the browser came back with.
/// Everything it logs, and every call it makes, is inside its `conn` span
/// (at debug: a span entered on every wake-up of every connection costs
/// latency under load, measured; the info lines carry `conn` themselves).
pub(crate) async fn run(
    socket: WebSocket,
    shared: Arc<Shared>,
    conn: u64,
    caller: Caller,
    resume: Option<SessionToken>,
) {
    let span = tracing::debug_span!("conn", conn, member = tracing::field::Empty, user = tracing::field::Empty);
    serve(socket, shared, conn, caller, resume).instrument(span).await;
}

async fn serve(mut socket: WebSocket, shared: Arc<Shared>, conn: u64, caller: Caller, resume: Option<SessionToken>) {
    let (queue, mut deliveries) = mpsc::channel(QUEUE_FRAMES);
    let resumed = resume.is_some();
    let token = resume.unwrap_or_default();
    let member_id: Arc<str> =
        Arc::from(token.member_id(caller.identity.as_ref().map(|identity| identity.user.as_str())));
    let span = tracing::Span::current();
    span.record("member", &*member_id);
    if let Some(identity) = &caller.identity {
        span.record("user", identity.user.as_str());
    }
    let connection: Arc<str> = Arc::from(format!("{}/{}-{conn}", shared.gateway, shared.run_id));
    let liveness = Liveness::new(shared.ping_every);
    // A user is the token's `sub`; without tokens, this browser session.
    let identity = caller.identity.as_ref();
    let user_id: Arc<str> =
        identity.map_or_else(|| Arc::clone(&member_id), |identity| Arc::from(identity.user.as_str()));
    let name = identity.map(|identity| identity.name.as_str());
    let recipient = Arc::new(Recipient {
        member_id: Arc::clone(&member_id),
        user_id,
        connection,
        queue,
        too_slow: Notify::new(),
        moved: Notify::new(),
    });
    let person = User::listen(&shared.hub, conn, name, &recipient);
    let mut session = Session {
        shared,
        conn,
        token,
        resumed,
        member_id,
        rooms: HashMap::new(),
        recipient,
        liveness,
        call: None,
        batch: None,
        stashed: None,
        caller,
        person,
        last_username: None,
    };
    let end = session.run(&mut socket, &mut deliveries).await;
    session.shared.metrics.session_ended(end.how());
    session.leave_all(end.departure());
    if let End::Close(code) = end {
        close(socket, code).await;
    }
}

impl Session {
    async fn run(&mut self, socket: &mut WebSocket, deliveries: &mut mpsc::Receiver<Arc<Delivery>>) -> End {
        let welcome = self.welcome();
        // A new browser session without a token is a user nobody could
        // know before this welcome named it: its rooms are none, and go out
        // with the welcome instead of costing a UserRooms call per connect.
        let known = self.resumed || self.caller.identity.is_some();
        let first = if known { vec![welcome] } else { vec![welcome, crate::inbox::rooms(&[])] };
        if let Err(end) = self.write(socket, first).await {
            return end;
        }
        if known {
            self.snapshot_soon();
        }
        let recipient = Arc::clone(&self.recipient);
        let (too_slow, moved) = (&recipient.too_slow, &recipient.moved);
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
                Step::TooSlow => return End::Close(CloseCode::SlowConsumer),
                Step::Moved => return End::Close(CloseCode::SessionMoved),
                Step::Live(Due::Silent) => {
                    tracing::info!(conn = self.conn, "browser silent for 2 × PING_SECS; closing");
                    return End::Close(CloseCode::Timeout);
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
                max_upload_bytes: self.shared.max_upload_bytes,
                max_attachments: chat_proto::files::MAX_ATTACHMENTS,
            },
            session: self.token.as_str(),
            resumed: self.resumed,
            ping_ms: millis(self.shared.ping_every),
            resume_grace_ms: millis(self.shared.resume_grace),
            user_id: &self.person.user_id,
            name: self.person.name.as_deref(),
        })
    }

    async fn drain(&mut self, socket: &mut WebSocket) -> End {
        let notice = frame::encode(&ServerFrame::Reconnect { reason: "gateway shutting down", after_ms: 500 });
        match self.write(socket, vec![notice]).await {
            Ok(()) => End::Close(CloseCode::Restart),
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
            Some(Ok(Message::Text(text))) if !frame_fits(text.len()) => {
                return Err(End::Close(CloseCode::TooBig));
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(bytes))) if !frame_fits(bytes.len()) => {
                return Err(End::Close(CloseCode::TooBig));
            }
            Some(Ok(Message::Binary(_))) => {
                let refusal = Refusal::new(
                    ErrorCode::BinaryFrame,
                    "binary frames are not part of the protocol: send JSON text frames",
                );
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
        // With traces on, the call runs in the frame's span (a send's is
        // opened by its batch, `store`). Entered while the call is built, so
        // the call's own spans are its children.
        let span = match &request {
            ClientFrame::Send { .. } => tracing::Span::none(),
            _ if self.shared.hub.services().is_traced() => {
                crate::traced::frame_span(request.kind(), crate::traced::room_of(&request), self.conn)
            }
            _ => tracing::Span::none(),
        };
        let in_frame = span.enter();
        let call: Call = match request {
            ClientFrame::Join { room, username, after_seq, epoch } => self.join(room, &username, after_seq, epoch)?,
            ClientFrame::Leave { room } => self.leave(&room)?,
            ClientFrame::Send { room, text, client_id, attachments, reply_to } => {
                return self.send(&room, text, client_id, attachments, reply_to.as_deref());
            }
            ClientFrame::Edit { room, id, text } => self.edit(&room, &id, text)?,
            ClientFrame::Delete { room, id, reason } => self.delete(&room, &id, reason)?,
            ClientFrame::React { room, id, emoji, add } => self.react(&room, &id, emoji, add)?,
            ClientFrame::Typing { room } => match self.typing(&room)? {
                Some(call) => call,
                None => return Ok(()),
            },
            ClientFrame::Members { room, after } => self.members(&room, after)?,
            ClientFrame::History { room, before_seq, limit } => self.history(&room, before_seq, limit)?,
            ClientFrame::Search { room, query, before_seq, limit } => self.search(&room, query, before_seq, limit)?,
            ClientFrame::OpenDm { users } => self.open_dm(&users)?,
            ClientFrame::Read { room, seq } => self.mark_read(room, seq)?,
            ClientFrame::Rooms => self.rooms_asked()?,
            ClientFrame::Moderate { room, action, user_id, duration, reason, role } => {
                self.moderate(&room, action, user_id, duration, reason, role)?
            }
        };
        drop(in_frame);
        self.call = Some(if span.is_none() { call } else { Box::pin(call.instrument(span)) });
        Ok(())
    }

    /// Detaches from every room and tells the room-services how the session
    /// leaves them, without making the closing connection wait for them.
    fn leave_all(&mut self, departure: Departure) {
        let leaving = match departure {
            Departure::Now(reason) => Some((reason, 0)),
            Departure::Grace => Some((LeaveReason::Disconnected, millis(self.shared.resume_grace))),
            Departure::Stay => None, // another connection holds the session now
        };
        self.shared.hub.detach(self.person.inbox.room(), self.conn);
        for (room, _) in self.rooms.drain() {
            self.shared.hub.detach(&room, self.conn);
            let Some((reason, grace_ms)) = leaving else {
                continue;
            };
            let shared = Arc::clone(&self.shared);
            let request = LeaveRequest {
                room: room.to_string(),
                member_id: self.member_id.to_string(),
                reason: reason.as_str().into(),
                connection: self.recipient.connection.to_string(),
                grace_ms,
            };
            self.shared.tasks.spawn(
                async move {
                    let left = shared.hub.services().call(&room, request, |mut c, r| async move { c.leave(r).await });
                    if let Err(status) = left.await {
                        tracing::warn!(room = %room, %status, "could not report a disconnect; presence will expire");
                    }
                }
                .in_current_span(),
            );
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
