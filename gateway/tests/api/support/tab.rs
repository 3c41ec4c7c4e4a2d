//! A browser tab that behaves like the page across failures: it keeps its
//! session token and its room's epoch and last seq; when its connection
//! drops (or the test tells it to drop) it reconnects to a live gateway with
//! `?session=`, joins with `after_seq`/`epoch`, and sends again, under the
//! same `client_id`, whatever it sent that did not come back. A drop comes
//! just as it sends, and half the drops reset the connection, so that send
//! may or may not have reached the room; while away it writes a message that
//! goes out after the resume. Everything it sees goes in its [`Ledger`], for
//! the test to check that nothing was lost or seen twice.
//!
//! A tab runs as a task of its own; the test steers it with [`Order`]s and,
//! at the end, tells it the seq to reach before it hands back its ledger.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A send not echoed after this long on one connection is sent again.
const RESEND_AFTER: Duration = Duration::from_millis(1500);
/// How long a connect or a welcome may take before the tab tries elsewhere.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);
/// How long a join may go unanswered before it counts as a fault.
const JOIN_WITHIN: Duration = Duration::from_secs(15);

/// What the test tells a tab.
#[derive(Debug)]
pub enum Order {
    /// Lose the connection abruptly (no Close frame), stay away this long,
    /// then reconnect and resume.
    Drop(Duration),
    /// Send nothing new; once every send is echoed, say so in `settled`.
    Finish,
}

/// What a tab saw and did.
#[derive(Debug, Default)]
pub struct Ledger {
    pub name: String,
    pub room: String,
    pub member_id: String,
    pub epoch: String,
    /// The room's last seq when the tab first joined: it answers for
    /// every message after it.
    pub first_after: u64,
    /// Every message seen since the first join, in order of arrival.
    pub seen: Vec<Seen>,
    pub sent: u64,
    /// Sends whose echo arrived.
    pub acked: u64,
    /// Sends made again under the same client id.
    pub resent: u64,
    /// Messages written while the connection was down, sent after the resume.
    pub written_offline: u64,
    /// Drops that reset the connection (RST) rather than closing it (FIN).
    pub resets: u64,
    /// Connections after the first, by whatever cause.
    pub reconnects: u64,
    /// Joins with `after_seq` answered `recovered: true`.
    pub resumes: u64,
    /// Echoes of this tab's own message that came again after a re-send
    /// (the protocol allows this: "the echo comes again").
    pub repeated_echoes: u64,
    /// Connections closed by the gateway, by close code.
    pub close_codes: BTreeMap<u16, u64>,
    /// Upgrades answered 503 (draining or full: the page tries again).
    pub unavailable_upgrades: u64,
    /// Client ids never echoed.
    pub unacked: Vec<String>,
    /// Everything that broke the protocol's promises.
    pub faults: Vec<String>,
}

/// A message as a tab saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub seq: u64,
    pub id: String,
    pub client_id: String,
}

impl Seen {
    pub fn of(message: &Value) -> Self {
        let text = |key: &str| message[key].as_str().unwrap_or_default().to_owned();
        Self { seq: message["seq"].as_u64().unwrap_or_default(), id: text("id"), client_id: text("client_id") }
    }
}

/// A running tab.
pub struct TabHandle {
    pub name: String,
    orders: mpsc::UnboundedSender<Order>,
    joined: Arc<AtomicBool>,
    settled: Arc<AtomicBool>,
    task: JoinHandle<Ledger>,
}

impl TabHandle {
    pub fn order(&self, order: Order) {
        let _ = self.orders.send(order);
    }

    /// Whether its first join has been answered.
    pub fn has_joined(&self) -> bool {
        self.joined.load(Ordering::Relaxed)
    }

    /// After [`Order::Finish`]: joined, and every send echoed.
    pub fn is_settled(&self) -> bool {
        self.settled.load(Ordering::Relaxed)
    }

    /// The ledger, once the tab has seen the seq the test set for its room.
    pub async fn ledger(self, within: Duration) -> Ledger {
        tokio::time::timeout(within, self.task)
            .await
            .unwrap_or_else(|_| panic!("{} did not reach its room's last seq within {within:?}", self.name))
            .expect("the tab's task does not panic")
    }
}

/// How a tab is set up.
pub struct TabConfig {
    pub name: String,
    pub room: String,
    /// The gateways a reconnect may choose from, kept current by the test.
    pub gateways: Arc<Mutex<Vec<SocketAddr>>>,
    /// The first connection goes here.
    pub first_gateway: SocketAddr,
    /// How often it sends a new message; `None`: it only listens.
    pub send_every: Option<Duration>,
    /// Per room, the seq to reach before finishing (set by the test at the end).
    pub targets: watch::Receiver<BTreeMap<String, u64>>,
    pub seed: u64,
}

/// A send not yet echoed.
struct Pending {
    text: String,
    /// `None`: written while offline, not sent yet.
    last_attempt: Option<Instant>,
}

/// Why one connection ended.
enum Ended {
    /// The test asked for a drop; stay away this long.
    Dropped(Duration),
    /// The connection failed or was closed by the gateway.
    Lost,
    /// The tab is done.
    Done,
}

struct Tab {
    config: TabConfig,
    rng: StdRng,
    session: Option<String>,
    /// Seq of the last message seen; `None` before the first `joined`.
    last_seq: Option<u64>,
    pending: BTreeMap<String, Pending>,
    next_message: u64,
    finishing: bool,
    joined: Arc<AtomicBool>,
    settled: Arc<AtomicBool>,
    ledger: Ledger,
}

/// Starts a tab: it connects, joins its room and runs until the test
/// finishes it.
pub fn spawn(config: TabConfig) -> TabHandle {
    let (orders, inbox) = mpsc::unbounded_channel();
    let settled = Arc::new(AtomicBool::new(false));
    let joined = Arc::new(AtomicBool::new(false));
    let ledger = Ledger { name: config.name.clone(), room: config.room.clone(), ..Ledger::default() };
    let name = config.name.clone();
    let tab = Tab {
        rng: StdRng::seed_from_u64(config.seed),
        config,
        session: None,
        last_seq: None,
        pending: BTreeMap::new(),
        next_message: 0,
        finishing: false,
        joined: joined.clone(),
        settled: settled.clone(),
        ledger,
    };
    TabHandle { name, orders, joined, settled, task: tokio::spawn(tab.run(inbox)) }
}

impl Tab {
    async fn run(mut self, mut orders: mpsc::UnboundedReceiver<Order>) -> Ledger {
        let mut first = true;
        loop {
            let addr = if first { self.config.first_gateway } else { self.pick_gateway() };
            let Some(mut ws) = self.connect(addr).await else {
                tokio::time::sleep(Duration::from_millis(self.rng.random_range(50..200))).await;
                continue;
            };
            if !first {
                self.ledger.reconnects += 1;
            }
            first = false;
            match self.converse(&mut ws, &mut orders).await {
                Ended::Done => {
                    let _ = ws.close(None).await;
                    break;
                }
                Ended::Dropped(away) => {
                    // Half the drops reset the connection: a send written
                    // just before may then never be read by the gateway.
                    if self.rng.random_bool(0.5)
                        && let MaybeTlsStream::Plain(tcp) = ws.get_ref()
                    {
                        let _ = tcp.set_zero_linger();
                        self.ledger.resets += 1;
                    }
                    drop(ws);
                    tokio::time::sleep(away / 2).await;
                    if !self.finishing && self.config.send_every.is_some() {
                        self.write_offline();
                    }
                    tokio::time::sleep(away - away / 2).await;
                }
                Ended::Lost => {
                    drop(ws);
                    // The page's backoff, with jitter.
                    tokio::time::sleep(Duration::from_millis(self.rng.random_range(100..500))).await;
                }
            }
        }
        self.ledger.unacked = self.pending.keys().cloned().collect();
        self.ledger
    }

    fn pick_gateway(&mut self) -> SocketAddr {
        let live = self.config.gateways.lock().expect("gateway list").clone();
        live[self.rng.random_range(0..live.len())]
    }

    /// Opens `/ws` (with the session once there is one) and reads the welcome.
    async fn connect(&mut self, addr: SocketAddr) -> Option<Socket> {
        let query = self.session.as_ref().map(|s| format!("?session={s}")).unwrap_or_default();
        let url = format!("ws://{addr}/ws{query}");
        let mut ws = match tokio::time::timeout(CONNECT_WITHIN, tokio_tungstenite::connect_async(url)).await {
            Ok(Ok((ws, _))) => ws,
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) if response.status() == 503 => {
                self.ledger.unavailable_upgrades += 1;
                return None;
            }
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(response))) => {
                self.fault(format!("the upgrade on {addr} was refused: HTTP {}", response.status()));
                return None;
            }
            Ok(Err(_)) | Err(_) => return None, // a gateway going away
        };
        let welcome = loop {
            match tokio::time::timeout(CONNECT_WITHIN, ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                    if frame["type"] == "welcome" {
                        break frame;
                    }
                    self.fault(format!("a frame before the welcome: {frame}"));
                }
                Ok(Some(Ok(_))) => {}
                _ => return None,
            }
        };
        let token = welcome["session"].as_str().unwrap_or_default().to_owned();
        if let Some(session) = self.session.clone() {
            if welcome["resumed"] != true {
                self.fault(format!("a reconnect with ?session= was not resumed: {welcome}"));
            }
            if token != session {
                self.fault(format!("a resumed session came back with another token: {welcome}"));
            }
        }
        if token.is_empty() {
            self.fault(format!("welcome without a session token: {welcome}"));
        }
        self.session = Some(token);
        Some(ws)
    }

    /// One connection's life: join, then chat until it ends.
    async fn converse(&mut self, ws: &mut Socket, orders: &mut mpsc::UnboundedReceiver<Order>) -> Ended {
        let resuming = self.last_seq.is_some();
        if !self.join(ws).await {
            return Ended::Lost;
        }
        let mut joined = false;
        let join_deadline = tokio::time::sleep(JOIN_WITHIN);
        tokio::pin!(join_deadline);
        let mut join_again: Option<Instant> = None;
        let send_every = self.config.send_every.unwrap_or(Duration::from_secs(3600));
        let first_send = Instant::now() + send_every.mul_f64(self.rng.random_range(0.0..1.0));
        let mut send_tick = tokio::time::interval_at(first_send, send_every);
        send_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut resend_tick = tokio::time::interval(Duration::from_millis(250));
        let mut targets = self.config.targets.clone();
        let mut targets_open = true;
        let mut orders_open = true;
        self.settled.store(false, Ordering::Relaxed);
        loop {
            if joined && self.finishing {
                let settled = self.pending.is_empty();
                self.settled.store(settled, Ordering::Relaxed);
                let target = targets.borrow().get(&self.config.room).copied();
                if settled && target.is_some_and(|t| self.last_seq.is_some_and(|s| s >= t)) {
                    return Ended::Done;
                }
            }
            tokio::select! {
                order = orders.recv(), if orders_open => match order {
                    Some(Order::Drop(away)) => {
                        self.settled.store(false, Ordering::Relaxed);
                        // The network goes just as the user hits send: the
                        // send may or may not reach the room.
                        if joined && !self.finishing {
                            let _ = self.send_new(ws).await;
                        }
                        return Ended::Dropped(away);
                    }
                    Some(Order::Finish) => self.finishing = true,
                    None => orders_open = false,
                },
                incoming = ws.next() => match incoming {
                    Some(Ok(Message::Text(text))) => {
                        let frame: Value = serde_json::from_str(&text).expect("frames are JSON");
                        match self.on_frame(&frame, resuming, &mut joined) {
                            Step::Go => {}
                            Step::JoinAgainAfter(wait) => join_again = Some(Instant::now() + wait),
                            Step::Joined => {
                                if !self.resend(ws, Duration::ZERO).await {
                                    return Ended::Lost;
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Close(close))) => {
                        let code = close.map_or(1005, |c| u16::from(c.code));
                        *self.ledger.close_codes.entry(code).or_default() += 1;
                        if code == 4009 {
                            self.fault("closed with 4009 though no other connection had its session".into());
                        }
                        return Ended::Lost;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return Ended::Lost,
                },
                () = &mut join_deadline, if !joined => {
                    self.fault(format!("no joined within {JOIN_WITHIN:?}"));
                    return Ended::Lost;
                }
                () = tokio::time::sleep_until(join_again.unwrap_or_else(Instant::now)), if join_again.is_some() => {
                    join_again = None;
                    if !self.join(ws).await {
                        return Ended::Lost;
                    }
                }
                _ = send_tick.tick(), if joined && !self.finishing && self.config.send_every.is_some() => {
                    if !self.send_new(ws).await {
                        return Ended::Lost;
                    }
                }
                _ = resend_tick.tick(), if joined => {
                    if !self.resend(ws, RESEND_AFTER).await {
                        return Ended::Lost;
                    }
                }
                changed = targets.changed(), if targets_open => targets_open = changed.is_ok(),
            }
        }
    }

    async fn join(&mut self, ws: &mut Socket) -> bool {
        let (room, name) = (&self.config.room, &self.config.name);
        let frame = match (self.last_seq, self.ledger.epoch.as_str()) {
            (Some(after_seq), epoch) if !epoch.is_empty() => {
                json!({"type": "join", "room": room, "username": name, "after_seq": after_seq, "epoch": epoch})
            }
            _ => json!({"type": "join", "room": room, "username": name}),
        };
        ws.send(Message::Text(frame.to_string().into())).await.is_ok()
    }

    fn on_frame(&mut self, frame: &Value, resuming: bool, joined: &mut bool) -> Step {
        let room = self.config.room.clone();
        match frame["type"].as_str().unwrap_or_default() {
            "joined" if frame["room"] == room => {
                self.on_joined(frame, resuming);
                *joined = true;
                Step::Joined
            }
            "message" if frame["room"] == room => {
                self.on_message(frame);
                Step::Go
            }
            "error" => {
                let code = frame["code"].as_str().unwrap_or_default();
                let wait = frame["retry_after_ms"].as_u64().unwrap_or(300);
                match code {
                    // The room-service or Redis is away: a join is asked
                    // again; a refused send stays pending and goes again.
                    "unavailable" | "internal" if !*joined => {
                        Step::JoinAgainAfter(Duration::from_millis(wait + self.rng.random_range(0..=wait)))
                    }
                    "unavailable" | "internal" => Step::Go,
                    _ => {
                        self.fault(format!("error frame: {frame}"));
                        Step::Go
                    }
                }
            }
            // A user's rooms and their updates (issue 17) are not this tab's concern.
            "presence" | "typing" | "members" | "reconnect" | "rooms" | "inbox" => Step::Go,
            _ => {
                self.fault(format!("unexpected frame: {frame}"));
                Step::Go
            }
        }
    }

    fn on_joined(&mut self, joined: &Value, resuming: bool) {
        let member_id = joined["member_id"].as_str().unwrap_or_default().to_owned();
        let epoch = joined["epoch"].as_str().unwrap_or_default().to_owned();
        let history = joined["history"].as_array().cloned().unwrap_or_default();
        if !resuming {
            self.ledger.member_id = member_id;
            self.ledger.epoch = epoch;
            let last_seq = joined["last_seq"].as_u64().unwrap_or_default();
            self.ledger.first_after = last_seq;
            self.last_seq = Some(last_seq);
            self.joined.store(true, Ordering::Relaxed);
            return;
        }
        if member_id != self.ledger.member_id {
            self.fault(format!("resumed as member {member_id}, was {}", self.ledger.member_id));
        }
        if epoch != self.ledger.epoch {
            self.fault(format!("the room's epoch changed from {} to {epoch}", self.ledger.epoch));
            self.ledger.epoch = epoch;
        }
        if joined["recovered"] == true {
            self.ledger.resumes += 1;
        } else {
            self.fault(format!(
                "recovered: false after seq {:?} (history {}..={})",
                self.last_seq,
                history.first().map_or(0, |m| m["seq"].as_u64().unwrap_or_default()),
                joined["last_seq"]
            ));
        }
        for message in &history {
            self.on_message(message);
        }
    }

    fn on_message(&mut self, message: &Value) {
        let seen = Seen::of(message);
        let seq = seen.seq;
        let last = self.last_seq.unwrap_or_default();
        if seq <= last {
            let mine = seen.client_id.starts_with(&format!("{}-", self.config.name));
            let earlier = self.ledger.seen.binary_search_by_key(&seq, |s| s.seq).ok().map(|i| &self.ledger.seen[i]);
            if mine && earlier == Some(&seen) {
                self.ledger.repeated_echoes += 1;
            } else {
                self.fault(format!("seq {seq} again (last seen {last}): {message}"));
            }
            return;
        }
        if seq > last + 1 {
            self.fault(format!("seqs {}..={} never arrived (next was {seq})", last + 1, seq - 1));
        }
        self.last_seq = Some(seq);
        if self.pending.remove(&seen.client_id).is_some() {
            self.ledger.acked += 1;
        }
        self.ledger.seen.push(seen);
    }

    async fn send_new(&mut self, ws: &mut Socket) -> bool {
        let client_id = format!("{}-{}", self.config.name, self.next_message);
        let text = format!("{} says {}", self.config.name, self.next_message);
        self.next_message += 1;
        self.ledger.sent += 1;
        let frame = json!({"type": "send", "room": self.config.room, "text": text, "client_id": client_id});
        self.pending.insert(client_id, Pending { text, last_attempt: Some(Instant::now()) });
        ws.send(Message::Text(frame.to_string().into())).await.is_ok()
    }

    /// A message written while the connection is down: it waits, pending,
    /// and goes out once the room is joined again.
    fn write_offline(&mut self) {
        let client_id = format!("{}-{}", self.config.name, self.next_message);
        let text = format!("{} says {} (offline)", self.config.name, self.next_message);
        self.next_message += 1;
        self.ledger.sent += 1;
        self.ledger.written_offline += 1;
        self.pending.insert(client_id, Pending { text, last_attempt: None });
    }

    /// Sends again, under the same client ids, the sends last tried at
    /// least `older_than` ago.
    async fn resend(&mut self, ws: &mut Socket, older_than: Duration) -> bool {
        let now = Instant::now();
        let mut frames = Vec::new();
        let mut again = 0;
        for (client_id, pending) in &mut self.pending {
            if pending.last_attempt.is_none_or(|last| now.duration_since(last) >= older_than) {
                again += u64::from(pending.last_attempt.is_some());
                pending.last_attempt = Some(now);
                frames.push(
                    json!({"type": "send", "room": self.config.room, "text": pending.text, "client_id": client_id}),
                );
            }
        }
        self.ledger.resent += again;
        for frame in frames {
            if ws.feed(Message::Text(frame.to_string().into())).await.is_err() {
                return false;
            }
        }
        ws.flush().await.is_ok()
    }

    fn fault(&mut self, fault: String) {
        self.ledger.faults.push(fault);
    }
}

/// What a frame asks of the connection's loop.
enum Step {
    Go,
    /// A refused join: ask again after this long.
    JoinAgainAfter(Duration),
    /// The room is joined: send again what is pending.
    Joined,
}
