//! The floor: the least a server must do to fan chat messages out, with no
//! gRPC, no Redis and no presence — the limit the topology is compared with.
//!
//! Just enough of docs/protocol.md for the bench's browsers: `welcome` on
//! connect; `join` → `joined` (no history, no member list); `send` → the
//! room's next `seq` and a `message` frame with the same fields the gateway
//! writes, serialised once and the same bytes queued to every member of the
//! room (the sender included). Kept as careful as a real server would be:
//! - each connection's queue is bounded (1024 frames, as the gateway's); a
//!   member whose queue is full is closed with 4008, nobody else waits;
//! - a connection's writer drains whatever is queued, feeds it all, and
//!   flushes once (one syscall per batch, not per frame);
//! - a room's order is its lock: the seq is taken and the frame queued to
//!   every member under the room's mutex, so all members see one order; rooms
//!   do not share a lock on the message path;
//! - small read buffers (a chat connection reads tiny frames).
//!
//! Run as its own process (`bench --serve-floor --floor-port P`, started by
//! the bench like the gateways) so its CPU is read from /proc like theirs.
//! It serves on 127.0.0.1:P until stopped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};

/// Frames queued for one browser before it counts as a slow consumer.
const QUEUE_FRAMES: usize = 1024;
/// Most frames written per flush.
const BATCH_FRAMES: usize = 256;
/// Read chunk per connection: browser frames are small.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Largest frame accepted from a browser (as the gateway's limit).
const MAX_FRAME_BYTES: usize = 64 * 1024;
const SLOW_CONSUMER: u16 = 4008;
/// Connections waiting to be accepted (the kernel caps it at somaxconn).
const ACCEPT_BACKLOG: u32 = 4096;

struct Member {
    id: u64,
    queue: mpsc::Sender<Utf8Bytes>,
    cut: Arc<Notify>,
}

#[derive(Default)]
struct Room {
    seq: u64,
    members: Vec<Member>,
}

#[derive(Default)]
struct Hub {
    rooms: Mutex<HashMap<String, Arc<Mutex<Room>>>>,
    next_id: AtomicU64,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Hub {
    fn room(&self, name: &str) -> Arc<Mutex<Room>> {
        Arc::clone(locked(&self.rooms).entry(name.to_owned()).or_default())
    }
}

/// A browser frame; only the fields the floor uses.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    room: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    username: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    text: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    client_id: std::borrow::Cow<'a, str>,
}

/// The gateway's `message` frame, field for field.
#[derive(Serialize)]
struct MessageFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    seq: u64,
    id: &'a str,
    username: &'a str,
    member_id: &'a str,
    text: &'a str,
    client_id: &'a str,
    ts: u64,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

pub async fn serve(port: u16) -> anyhow::Result<()> {
    // A storm of connects must not overflow the accept queue (tokio's
    // `bind` listens with a backlog of 1024).
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(([127, 0, 0, 1], port).into())?;
    let listener = socket.listen(ACCEPT_BACKLOG)?;
    println!("listening on {}", listener.local_addr()?);
    let app = Router::new().route("/ws", get(upgrade)).with_state(Arc::new(Hub::default()));
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(ws: WebSocketUpgrade, State(hub): State<Arc<Hub>>) -> Response {
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| connection(socket, hub))
}

async fn connection(socket: WebSocket, hub: Arc<Hub>) {
    let id = hub.next_id.fetch_add(1, Ordering::Relaxed);
    let member_id = format!("floor/{id}");
    let (queue, mut outbox) = mpsc::channel::<Utf8Bytes>(QUEUE_FRAMES);
    let cut = Arc::new(Notify::new());
    let (mut sink, mut stream) = socket.split();
    let _ = queue.try_send(Utf8Bytes::from_static(
        r#"{"type":"welcome","gateway":"floor","limits":{"max_text_bytes":4096,"max_username_chars":32,"max_rooms":32}}"#,
    ));

    let cut_writer = Arc::clone(&cut);
    let mut writer = tokio::spawn(async move {
        loop {
            let first = tokio::select! {
                biased;
                () = cut_writer.notified() => {
                    let close = CloseFrame { code: SLOW_CONSUMER, reason: Utf8Bytes::from_static("slow consumer") };
                    let _ = sink.send(Message::Close(Some(close))).await;
                    return;
                }
                frame = outbox.recv() => match frame { Some(f) => f, None => return },
            };
            if sink.feed(Message::Text(first)).await.is_err() {
                return;
            }
            for _ in 1..BATCH_FRAMES {
                let Ok(frame) = outbox.try_recv() else { break };
                if sink.feed(Message::Text(frame)).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });

    let mut joined: Vec<(String, Arc<Mutex<Room>>, String)> = Vec::new();
    loop {
        let text = tokio::select! {
            _ = &mut writer => break,
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                _ => break,
            },
        };
        let Ok(frame) = serde_json::from_str::<Incoming>(&text) else {
            let _ = queue.try_send(error("bad_json", "not a frame"));
            continue;
        };
        match &*frame.kind {
            "join" => {
                let room = hub.room(&frame.room);
                let last_seq = {
                    let mut r = locked(&room);
                    r.members.push(Member { id, queue: queue.clone(), cut: Arc::clone(&cut) });
                    r.seq
                };
                let reply = format!(
                    r#"{{"type":"joined","room":{},"member_id":"{member_id}","epoch":"floor","last_seq":{last_seq},"history":[],"members":[]}}"#,
                    quoted(&frame.room)
                );
                let _ = queue.try_send(reply.into());
                joined.push((frame.room.into_owned(), room, frame.username.into_owned()));
            }
            "send" => {
                let Some((name, room, username)) = joined.iter().find(|(name, ..)| *name == frame.room) else {
                    let _ = queue.try_send(error("not_joined", "join the room first"));
                    continue;
                };
                let mut r = locked(room);
                r.seq += 1;
                let seq = r.seq;
                let event_id = format!("floor:{seq}");
                let encoded = serde_json::to_string(&MessageFrame {
                    kind: "message",
                    room: name,
                    seq,
                    id: &event_id,
                    username,
                    member_id: &member_id,
                    text: &frame.text,
                    client_id: &frame.client_id,
                    ts: now_ms(),
                })
                .unwrap_or_default();
                let shared = Utf8Bytes::from(encoded);
                r.members.retain(|m| match m.queue.try_send(shared.clone()) {
                    Ok(()) => true,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        m.cut.notify_one();
                        false
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                });
            }
            _ => {
                let _ = queue.try_send(error("unknown_type", "the floor knows join and send"));
            }
        }
    }
    for (_, room, _) in joined {
        locked(&room).members.retain(|m| m.id != id);
    }
    writer.abort();
}

fn error(code: &str, message: &str) -> Utf8Bytes {
    format!(r#"{{"type":"error","code":"{code}","message":{}}}"#, quoted(message)).into()
}

/// A JSON string literal.
fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}
