//! One browser: connect, join one room, then read every frame until the
//! connection ends, recording what it saw in its [`Seen`].
//!
//! Reading is kept cheap, so the bench's clients are not what saturates the
//! box: the frame type is sliced out of the text without parsing (the
//! servers write `{"type":"…"` first), only `message` frames are parsed, into
//! a borrowed struct of the two fields needed (`seq`, `text`), and a bench
//! message is matched against a per-sender bitset rather than a set of ids.
//! Every other frame is only counted by type (so presence frames of any shape
//! are counted, not interpreted).
//!
//! The bench's messages carry `"<step> <sender> <n> <sent µs>"` as text: the
//! measurement step, the sender's index in its room, its running number in
//! that step, and when it was written (µs after [`Shared::epoch`]), so a
//! receiver knows latency, duplicates, and exactly which messages it has.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
pub type Writer = SplitSink<Socket, Message>;

/// Read chunk of a client connection: holds dozens of chat frames, and is
/// small enough that zeroing it per read costs little.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// What all browsers of a run share.
#[derive(Debug)]
pub struct Shared {
    /// Send times in messages are µs after this.
    pub epoch: Instant,
    /// The step being measured; messages of it are counted in `delivered`.
    pub step: AtomicUsize,
    /// Deliveries of the current step's messages so far (for the drain).
    pub delivered: AtomicU64,
}

impl Shared {
    pub fn new() -> Arc<Self> {
        Arc::new(Self { epoch: Instant::now(), step: AtomicUsize::new(0), delivered: AtomicU64::new(0) })
    }

    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// What one browser saw of one step's messages.
#[derive(Debug, Default, Clone)]
pub struct StepSeen {
    /// Per sender in the room, bit `n` set when message `n` arrived.
    pub bits: Vec<Vec<u64>>,
    pub received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Messages of this browser's own (when it is a sender) that came back.
    pub own_echoes: u64,
    /// Send-to-receive latency of each first arrival, µs.
    pub latencies_us: Vec<u32>,
    /// When the last one arrived, µs after the epoch.
    pub last_at_us: u64,
}

/// Everything one browser saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Connect started to `joined` received.
    pub join_time: Option<Duration>,
    /// Frames received, by `type`.
    pub frames: Vec<(Box<str>, u64)>,
    /// `error` frames received, by `code`.
    pub error_codes: Vec<(Box<str>, u64)>,
    /// Close code the server sent (0: the connection ended without one).
    pub closed: Option<u16>,
    /// The step that was running when it closed.
    pub closed_in_step: Option<usize>,
    /// This browser's index among its room's senders, if it sends.
    pub sender_index: Option<u32>,
    last_seq: u64,
    steps: Vec<StepSeen>,
}

impl Seen {
    pub fn step(&mut self, step: usize) -> Option<&StepSeen> {
        self.steps.get(step)
    }

    fn step_mut(&mut self, step: usize) -> &mut StepSeen {
        if self.steps.len() <= step {
            self.steps.resize_with(step + 1, StepSeen::default);
        }
        &mut self.steps[step]
    }
}

fn bump(counts: &mut Vec<(Box<str>, u64)>, key: &str) {
    match counts.iter_mut().find(|(k, _)| &**k == key) {
        Some((_, n)) => *n += 1,
        None => counts.push((key.into(), 1)),
    }
}

pub type SeenCell = Arc<Mutex<Seen>>;

pub fn lock(seen: &SeenCell) -> MutexGuard<'_, Seen> {
    seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How a join ended.
pub enum JoinOutcome {
    Joined(Writer),
    /// An `error` frame answered the join; its code.
    Refused(String),
    /// The server closed first; its close code (0: none).
    Closed(u16),
    /// Could not connect (e.g. HTTP 503 at the connection limit).
    Failed(String),
}

/// The `type` of a server frame, sliced out without parsing when the frame
/// starts with it (as serde writes a tagged enum).
fn frame_type(text: &str) -> Cow<'_, str> {
    if let Some(rest) = text.strip_prefix(r#"{"type":""#)
        && let Some(end) = rest.find('"')
    {
        return Cow::Borrowed(&rest[..end]);
    }
    #[derive(Deserialize)]
    struct Typed<'a> {
        #[serde(rename = "type", borrow)]
        kind: Cow<'a, str>,
    }
    serde_json::from_str::<Typed>(text).map(|t| t.kind).unwrap_or(Cow::Borrowed("(not json)"))
}

#[derive(Deserialize)]
struct MessageFrame<'a> {
    seq: u64,
    #[serde(borrow)]
    text: Cow<'a, str>,
}

#[derive(Deserialize)]
struct ErrorFrame<'a> {
    #[serde(borrow)]
    code: Cow<'a, str>,
}

/// `"<step> <sender> <n> <sent µs>"`.
fn bench_text(text: &str) -> Option<(usize, u32, u64, u64)> {
    let mut parts = text.split_ascii_whitespace();
    Some((
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    ))
}

/// The text of bench message `n` of `sender` in `step`, written now.
pub fn bench_message(room: &str, step: usize, sender: u32, n: u64, sent_us: u64) -> String {
    format!(r#"{{"type":"send","room":"{room}","text":"{step} {sender} {n} {sent_us}"}}"#)
}

fn on_message(text: &str, seen: &SeenCell, shared: &Shared) {
    let frame = serde_json::from_str::<MessageFrame>(text).ok();
    let now_us = shared.now_us();
    let mut seen = lock(seen);
    bump(&mut seen.frames, "message");
    let Some(frame) = frame else { return };
    let Some((step, sender, n, sent_us)) = bench_text(&frame.text) else { return };
    let out_of_order = frame.seq <= seen.last_seq;
    let own = seen.sender_index == Some(sender);
    let log = seen.step_mut(step);
    let sender = sender as usize;
    if log.bits.len() <= sender {
        log.bits.resize_with(sender + 1, Vec::new);
    }
    let (word, bit) = ((n / 64) as usize, 1u64 << (n % 64));
    let bits = &mut log.bits[sender];
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    if bits[word] & bit != 0 {
        log.duplicates += 1;
        return;
    }
    bits[word] |= bit;
    log.received += 1;
    log.out_of_order += u64::from(out_of_order);
    log.own_echoes += u64::from(own);
    log.latencies_us.push(now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32);
    log.last_at_us = now_us;
    seen.last_seq = seen.last_seq.max(frame.seq);
    drop(seen);
    if step == shared.step.load(Ordering::Relaxed) {
        shared.delivered.fetch_add(1, Ordering::Relaxed);
    }
}

/// Starts one browser: connects to `url`, joins `room` as `username`, then
/// keeps reading into `seen` until the connection ends. The receiver gets the
/// outcome of the join (with the write half when joined).
pub fn spawn(
    url: String,
    room: Arc<str>,
    username: String,
    seen: SeenCell,
    shared: Arc<Shared>,
) -> (tokio::task::JoinHandle<()>, oneshot::Receiver<JoinOutcome>) {
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
        let ws = match tokio_tungstenite::connect_async_with_config(&url, Some(config), true).await {
            Ok((ws, _)) => ws,
            Err(e) => {
                let _ = tx.send(JoinOutcome::Failed(e.to_string()));
                return;
            }
        };
        let (mut write, mut read) = ws.split();
        let join = format!(r#"{{"type":"join","room":"{room}","username":"{username}"}}"#);
        if let Err(e) = write.send(Message::text(join)).await {
            let _ = tx.send(JoinOutcome::Failed(e.to_string()));
            return;
        }
        let mut pending = Some((tx, write));
        let mut close_code = 0;
        while let Some(frame) = read.next().await {
            let text = match frame {
                Ok(Message::Text(text)) => text,
                Ok(Message::Close(close)) => {
                    close_code = close.map_or(0, |c| u16::from(c.code));
                    break;
                }
                Ok(_) => continue,
                Err(_) => break,
            };
            let kind = frame_type(&text);
            if kind == "message" {
                on_message(&text, &seen, &shared);
                continue;
            }
            let mut guard = lock(&seen);
            bump(&mut guard.frames, &kind);
            if kind == "joined" && guard.join_time.is_none() {
                guard.join_time = Some(started.elapsed());
                drop(guard);
                if let Some((tx, write)) = pending.take() {
                    let _ = tx.send(JoinOutcome::Joined(write));
                }
            } else if kind == "error" {
                let code = serde_json::from_str::<ErrorFrame>(&text).map(|e| e.code).unwrap_or(Cow::Borrowed("?"));
                bump(&mut guard.error_codes, &code);
                drop(guard);
                if let Some((tx, _)) = pending.take() {
                    let _ = tx.send(JoinOutcome::Refused(code.into_owned()));
                }
            }
        }
        let mut guard = lock(&seen);
        guard.closed = Some(close_code);
        guard.closed_in_step = Some(shared.step.load(Ordering::Relaxed));
        drop(guard);
        if let Some((tx, _)) = pending.take() {
            let _ = tx.send(JoinOutcome::Closed(close_code));
        }
    });
    (task, rx)
}
