//! One browser connection: frames in, calls out, room events back.
//!
//! A single task owns the socket. It reads the browser's frames and acts on
//! them in order (a `join` is answered before the next frame is read), and
//! writes the room events its feeds queued for it, in batches with one flush.
//! Per room it remembers the sequence number its `joined` snapshot ended at,
//! so events the snapshot already held are not written twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use chat_proto::names;
use chat_proto::v1::{JoinRequest, LeaveRequest, Member, SendRequest, TypingRequest};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::Code;

use crate::feed::{Delivery, Listener};
use crate::frame::{
    self, ClientFrame, EventView, Limits, MemberView, Refusal, ServerFrame, close, refusal_of, unavailable,
};
use crate::hub::Hub;
use crate::metrics::GatewayMetrics;

/// Rooms one connection may be in at once.
pub const MAX_ROOMS: usize = 32;
/// Frames waiting to be written to one browser before it counts as too slow.
pub const QUEUE_FRAMES: usize = 1024;
/// The largest frame a browser may send.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Typing frames closer together than this are dropped.
const TYPING_EVERY: Duration = Duration::from_secs(2);
/// How long a closing session waits for the browser's Close.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Events written per flush at most.
const WRITE_BATCH: usize = 64;
/// History sent with `joined`.
const JOIN_HISTORY: u32 = 50;

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
}

struct JoinedRoom {
    username: String,
    epoch: Arc<str>,
    /// The last sequence number the `joined` snapshot held.
    snapshot_seq: u64,
    last_typing: Option<Instant>,
}

struct Session<'a> {
    shared: &'a Shared,
    conn: u64,
    member_id: String,
    rooms: HashMap<Arc<str>, JoinedRoom>,
    queue: mpsc::Sender<Delivery>,
    too_slow: Arc<Notify>,
    /// issue 10: the token's identity and this connection's rate limits.
    caller: crate::caller::Caller,
}

/// How the session ended, for the close frame.
enum End {
    /// The browser closed or vanished: nothing to send.
    Gone,
    Close(u16, &'static str),
}

/// Runs a connection until the browser leaves, is too slow, or the gateway drains.
pub async fn run(socket: WebSocket, shared: Arc<Shared>, conn: u64, caller: crate::caller::Caller) {
    let (sink, stream) = socket.split();
    serve(sink, stream, &shared, conn, caller).await;
}

/// The session over any message sink and stream, so it can be driven in tests.
pub async fn serve<W, R, E>(mut sink: W, mut stream: R, shared: &Shared, conn: u64, caller: crate::caller::Caller)
where
    W: Sink<Message> + Unpin,
    R: Stream<Item = Result<Message, E>> + Unpin,
    E: std::error::Error + 'static,
{
    let (queue, mut deliveries) = mpsc::channel(QUEUE_FRAMES);
    let mut session = Session {
        shared,
        conn,
        member_id: format!("{}/{}-{conn}", shared.gateway, shared.run_id),
        rooms: HashMap::new(),
        queue,
        too_slow: Arc::new(Notify::new()),
        caller,
    };
    let welcome = frame::encode(&ServerFrame::Welcome {
        gateway: &shared.gateway,
        limits: Limits {
            max_text_bytes: names::MAX_TEXT_BYTES,
            max_username_chars: names::MAX_USERNAME_CHARS,
            max_rooms: MAX_ROOMS,
        },
    });
    let end = if sink.send(Message::Text(welcome)).await.is_err() {
        End::Gone
    } else {
        let too_slow = Arc::clone(&session.too_slow);
        loop {
            // Unbiased: reading the browser's frames (each may wait on a call)
            // must not starve writing its queued events, nor the reverse.
            tokio::select! {
                () = shared.draining.cancelled() => {
                    let notice = frame::encode(&ServerFrame::Reconnect { reason: "gateway shutting down", after_ms: 500 });
                    let _ = sink.send(Message::Text(notice)).await;
                    break End::Close(close::RESTART, "gateway restarting: reconnect");
                }
                () = too_slow.notified() => break End::Close(close::SLOW_CONSUMER, "slow consumer: too many frames waiting"),
                incoming = stream.next() => match incoming {
                    None | Some(Ok(Message::Close(_))) => break End::Gone,
                    Some(Err(error)) => {
                        tracing::debug!(conn, %error, "socket read failed");
                        // issue 10: 1007 / 1002 / 1009 by the error's kind.
                        match crate::closing::close_for_read_error(&error) {
                            Some((code, reason)) => break End::Close(code, reason),
                            None => break End::Gone,
                        }
                    }
                    Some(Ok(message)) => {
                        let replies = match session.on_message(message).await {
                            Ok(replies) => replies,
                            Err(end) => break end,
                        };
                        let mut failed = false;
                        for reply in replies {
                            failed |= sink.send(Message::Text(reply)).await.is_err();
                        }
                        if failed {
                            break End::Gone;
                        }
                    }
                },
                Some(first) = deliveries.recv() => {
                    if session.write_batch(&mut sink, first, &mut deliveries).await.is_err() {
                        break End::Gone;
                    }
                }
            }
        }
    };
    session.leave_all();
    if let End::Close(code, reason) = end {
        let close = Message::Close(Some(CloseFrame { code, reason: Utf8Bytes::from_static(reason) }));
        if sink.send(close).await.is_ok() {
            // Wait for the browser's answering Close before the socket is
            // dropped: dropping at once (the process may exit right after a
            // drain) can reset the connection before our last frames leave,
            // and the browser would see 1006 instead of the reconnect notice.
            // issue 10: also when the stream can no longer be read.
            crate::closing::await_close(&mut stream, CLOSE_WAIT, |m| matches!(m, Message::Close(_))).await;
        }
    }
}

impl Session<'_> {
    /// Acts on one incoming message; the frames to send back, or how to end.
    async fn on_message(&mut self, message: Message) -> Result<Vec<Utf8Bytes>, End> {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(bytes) if bytes.len() > MAX_FRAME_BYTES => {
                return Err(End::Close(close::TOO_BIG, "frame over 64 KiB"));
            }
            Message::Binary(_) => {
                self.shared.metrics.error_sent("binary_frame");
                return Ok(vec![frame::refusal(&Refusal::new(
                    "binary_frame",
                    "binary frames are not part of the protocol: send JSON text frames",
                ))]);
            }
            _ => return Ok(Vec::new()), // ping/pong are answered by the socket
        };
        if text.len() > MAX_FRAME_BYTES {
            return Err(End::Close(close::TOO_BIG, "frame over 64 KiB"));
        }
        let metrics = &self.shared.metrics;
        let handled = match frame::parse(&text) {
            Ok(request) => {
                metrics.frame_in(request.kind());
                self.handle(request).await
            }
            Err(refusal) => {
                metrics.frame_in("invalid");
                Err(refusal)
            }
        };
        Ok(match handled {
            Ok(replies) => replies,
            Err(refusal) => {
                metrics.error_sent(refusal.code);
                vec![frame::refusal(&refusal)]
            }
        })
    }

    async fn handle(&mut self, request: ClientFrame) -> Result<Vec<Utf8Bytes>, Refusal> {
        match request {
            ClientFrame::Join { room, username } => self.join(&room, &username).await,
            ClientFrame::Leave { room } => self.leave(&room).await,
            ClientFrame::Send { room, text, client_id } => self.send(&room, text, client_id).await,
            ClientFrame::Typing { room } => self.typing(&room).await,
        }
    }

    /// This connection as a room member under `username`.
    fn member(&self, username: &str) -> Member {
        Member {
            member_id: self.member_id.clone(),
            username: username.to_owned(),
            gateway: self.shared.gateway.to_string(),
            joined_at_ms: 0,
        }
    }

    fn joined(&mut self, room: &str) -> Result<&mut JoinedRoom, Refusal> {
        self.rooms.get_mut(room).ok_or_else(|| {
            Refusal::new(
                "not_joined",
                format!("you have not joined room {room:?}; send {{\"type\":\"join\",\"room\":{room:?},\"username\":\"…\"}} first"),
            )
            .in_room(room)
        })
    }

    async fn join(&mut self, room: &str, username: &str) -> Result<Vec<Utf8Bytes>, Refusal> {
        // A bad room name is not echoed back as `room`: it names no room.
        names::check_room(room).map_err(Refusal::from)?;
        // issue 10: join rate limit, token rooms, token name or name rules.
        let username = &self.caller.join(room, username)?;
        if self.rooms.contains_key(room) {
            return Err(Refusal::new("already_joined", format!("you are already in room {room:?}")).in_room(room));
        }
        if self.rooms.len() >= MAX_ROOMS {
            return Err(Refusal::new(
                "too_many_rooms",
                format!("one connection may be in at most {MAX_ROOMS} rooms; leave one first"),
            )
            .in_room(room));
        }
        let listener = Listener {
            member_id: self.member_id.clone(),
            username: username.to_owned(),
            queue: self.queue.clone(),
            too_slow: Arc::clone(&self.too_slow),
        };
        let hub = &self.shared.hub;
        if !hub.attach(room, self.conn, listener).await {
            return Err(unavailable(room));
        };
        let request =
            JoinRequest { room: room.to_owned(), member: Some(self.member(username)), history_limit: JOIN_HISTORY };
        let reply = match crate::rpc!(hub.services(), room, join, request).await {
            Ok(reply) => reply,
            Err(status) => {
                hub.detach(room, self.conn);
                return Err(refusal_of(&status, room));
            }
        };
        let joined_seq = reply.joined.as_ref().map_or(0, |e| e.seq);
        let snapshot_seq = reply.history.iter().map(|e| e.seq).chain([joined_seq]).max().unwrap_or(0);
        let epoch = reply.joined.as_ref().map(|e| e.epoch.clone()).unwrap_or_default();
        tracing::debug!(conn = self.conn, room, username, seq = joined_seq, "joined");
        let frame = frame::encode(&ServerFrame::Joined {
            room,
            member_id: &self.member_id,
            epoch: &epoch,
            last_seq: snapshot_seq,
            history: reply.history.iter().filter_map(EventView::of).collect(),
            members: reply.members.iter().map(MemberView::from).collect(),
        });
        self.rooms.insert(
            Arc::from(room),
            JoinedRoom {
                username: username.to_owned(),
                epoch: Arc::from(epoch.as_str()),
                snapshot_seq,
                last_typing: None,
            },
        );
        Ok(vec![frame])
    }

    async fn leave(&mut self, room: &str) -> Result<Vec<Utf8Bytes>, Refusal> {
        self.joined(room)?;
        self.rooms.remove(room);
        self.shared.hub.detach(room, self.conn);
        let request = LeaveRequest { room: room.to_owned(), member_id: self.member_id.clone(), reason: "left".into() };
        crate::rpc!(self.shared.hub.services(), room, leave, request).await.map_err(|s| refusal_of(&s, room))?;
        Ok(vec![frame::encode(&ServerFrame::Left { room })])
    }

    async fn send(&mut self, room: &str, text: String, client_id: String) -> Result<Vec<Utf8Bytes>, Refusal> {
        self.joined(room)?;
        self.caller.send(room)?; // issue 10: rate limit
        names::check_text(&text).map_err(|e| Refusal::from(e).in_room(room))?;
        names::check_client_id(&client_id).map_err(|e| Refusal::from(e).in_room(room))?;
        // Every send gets an id, so a retry on another room-service is stored once.
        let client_id = if client_id.is_empty() { format!("g{}", rand::random::<u64>()) } else { client_id };
        tracing::debug!(conn = self.conn, room, client_id, bytes = text.len(), "message from client");
        let request = SendRequest { room: room.to_owned(), member_id: self.member_id.clone(), text, client_id };
        let services = self.shared.hub.services();
        match crate::rpc!(services, room, send, request.clone()).await {
            Ok(_) => Ok(Vec::new()),
            Err(status) if status.code() == Code::FailedPrecondition => {
                // This connection is in the room but the room-service no longer
                // lists it (Redis restarted empty, or its presence ran out while
                // unreachable): join again, then send once more.
                tracing::info!(conn = self.conn, room, "presence was lost; joining again before sending");
                let username = self.rooms.get(room).map(|r| r.username.clone()).unwrap_or_default();
                let join =
                    JoinRequest { room: room.to_owned(), member: Some(self.member(&username)), history_limit: 1 };
                crate::rpc!(services, room, join, join).await.map_err(|s| refusal_of(&s, room))?;
                crate::rpc!(services, room, send, request).await.map_err(|s| refusal_of(&s, room))?;
                Ok(Vec::new())
            }
            Err(status) => Err(refusal_of(&status, room)),
        }
    }

    async fn typing(&mut self, room: &str) -> Result<Vec<Utf8Bytes>, Refusal> {
        let joined = self.joined(room)?;
        let now = Instant::now();
        if joined.last_typing.is_some_and(|at| now.duration_since(at) < TYPING_EVERY) {
            self.shared.metrics.typing_dropped.increment(1);
            return Ok(Vec::new());
        }
        joined.last_typing = Some(now);
        let request = TypingRequest { room: room.to_owned(), member_id: self.member_id.clone() };
        crate::rpc!(self.shared.hub.services(), room, typing, request).await.map_err(|s| refusal_of(&s, room))?;
        Ok(Vec::new())
    }

    /// Writes queued events (skipping what a `joined` snapshot already
    /// showed) and flushes once.
    async fn write_batch<W: Sink<Message> + Unpin>(
        &self,
        sink: &mut W,
        first: Delivery,
        deliveries: &mut mpsc::Receiver<Delivery>,
    ) -> Result<(), W::Error> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(delivery) = next.take() {
            if self.wants(&delivery) {
                sink.feed(Message::Text(delivery.frame)).await?;
                written += 1;
            }
            if written < WRITE_BATCH {
                next = deliveries.try_recv().ok();
            }
        }
        self.shared.metrics.frames_out.increment(written as u64);
        sink.flush().await
    }

    fn wants(&self, delivery: &Delivery) -> bool {
        let Some(room) = self.rooms.get(&delivery.room) else {
            return false; // left the room, or still joining (the snapshot will hold it)
        };
        if delivery.seq == 0 {
            return delivery.from.as_deref() != Some(self.member_id.as_str());
        }
        !(delivery.epoch == room.epoch && delivery.seq <= room.snapshot_seq)
    }

    /// Detaches from every room and tells the room-services, without making
    /// the closing connection wait for them.
    fn leave_all(&mut self) {
        for (room, _) in self.rooms.drain() {
            self.shared.hub.detach(&room, self.conn);
            let services = Arc::clone(self.shared.hub.services());
            let request = LeaveRequest {
                room: room.to_string(),
                member_id: self.member_id.clone(),
                reason: "disconnected".into(),
            };
            self.shared.tasks.spawn(async move {
                if let Err(status) = crate::rpc!(services, &room, leave, request).await {
                    tracing::warn!(room = %room, %status, "could not report a disconnect; presence will expire");
                }
            });
        }
    }
}
