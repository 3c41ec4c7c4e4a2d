//! One room's events on this gateway: one upstream Subscribe stream, shared
//! by every local browser in the room.
//!
//! The feed task holds the stream to the room's current room-service. Each
//! event is turned into a JSON frame once and the same bytes are queued for
//! every local listener. A listener whose queue is full is a browser that
//! cannot keep up: it is dropped from the feed and its session closes with
//! 4008, instead of the gateway buffering without bound. Presence events are
//! gathered in the room's [`PresenceWindow`] and go out as at most one
//! `presence` frame per window. When the stream
//! breaks, the feed subscribes again — on the next room-service if that one is
//! gone — resuming after the last sequence number it saw, so nothing is lost.
//! The feed also sends the heartbeats that keep its listeners present.
//!
//! An inbox room's feed (`inbox.rs`) is the same stream with less: its
//! listeners are not members (no joins, heartbeats or presence), each
//! update goes only to the listeners of the user it names, and since
//! updates are not stored, a stream opened again tells every listener to
//! resync (a [`Delivery`] with `resync`) instead of replaying.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{HeartbeatRequest, InboxUpdate, JoinRequest, Member, RoomEvent, SessionMoved, SubscribeRequest};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::frame::{EventView, encode};
use crate::limits::{CALL_TIMEOUT, HEARTBEAT_CHUNK, PRESENCE_EVERY};
use crate::metrics::GatewayMetrics;
use crate::presence::PresenceWindow;
use crate::upstream::{RoomServices, is_unreachable};

/// A room event ready to write to browsers: made once per event and shared
/// by every local listener of the room.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub room: Arc<str>,
    pub epoch: Arc<str>,
    /// 0 for ephemeral events (presence, typing).
    pub seq: u64,
    /// For typing: who is typing, so they don't see themselves.
    pub from: Option<Arc<str>>,
    pub frame: Utf8Bytes,
    /// Inbox feeds only: updates may have been missed (the stream was
    /// opened again); the session sends a fresh `rooms` snapshot. No frame.
    pub resync: bool,
}

/// One local browser connection in the room.
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    pub member_id: Arc<str>,
    /// The person behind the member: what joins carry, and whose inbox
    /// updates this listener gets.
    pub user_id: Arc<str>,
    pub username: Arc<str>,
    /// The connection, as room-services know it (`Member::connection`).
    pub connection: Arc<str>,
    pub queue: mpsc::Sender<Arc<Delivery>>,
    /// Notified when the listener was dropped for being too slow.
    pub too_slow: Arc<Notify>,
    /// Notified when its session was resumed on another connection.
    pub moved: Arc<Notify>,
}

#[derive(Debug)]
pub(crate) struct Feed {
    room: Arc<str>,
    /// An inbox room's feed: no members, updates per user, resync on reopen.
    inbox: bool,
    listeners: Mutex<HashMap<u64, Listener>>,
    /// The last (epoch, seq) this gateway has seen for the room.
    position: Mutex<(Arc<str>, u64)>,
    ready: watch::Sender<bool>,
    stop: CancellationToken,
}

impl Feed {
    pub(crate) fn new(room: &str) -> Arc<Self> {
        Arc::new(Self {
            room: Arc::from(room),
            inbox: chat_proto::people::is_inbox(room),
            listeners: Mutex::new(HashMap::new()),
            position: Mutex::new((Arc::from(""), 0)),
            ready: watch::channel(false).0,
            stop: CancellationToken::new(),
        })
    }

    fn listeners(&self) -> MutexGuard<'_, HashMap<u64, Listener>> {
        self.listeners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn add(&self, conn: u64, listener: Listener) {
        self.listeners().insert(conn, listener);
    }

    /// Removes a listener; true when none are left.
    pub(crate) fn remove(&self, conn: u64) -> bool {
        let mut listeners = self.listeners();
        listeners.remove(&conn);
        listeners.is_empty()
    }

    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until the upstream stream is open (or `limit` passes).
    pub(crate) async fn wait_ready(&self, limit: Duration) -> bool {
        let mut ready = self.ready.subscribe();
        matches!(tokio::time::timeout(limit, ready.wait_for(|r| *r)).await, Ok(Ok(_)))
    }

    /// Takes the stream's starting point as the feed's position, when the feed
    /// has none yet: a stream that breaks before its first event then resumes
    /// from there. Only the stream moves the position, never a join: a join's
    /// snapshot can be ahead of events still on their way to other listeners.
    fn start_at(&self, start: Option<(String, u64)>) {
        let mut position = self.position.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((epoch, seq)) = start
            && position.0.is_empty()
        {
            *position = (Arc::from(epoch.as_str()), seq);
        }
    }

    /// Whether `member_id` still has a connection in this room here.
    fn has_member(&self, member_id: &str) -> bool {
        self.listeners().values().any(|l| &*l.member_id == member_id)
    }

    /// Drops the listeners whose sessions moved to another connection and
    /// tells their sessions to close.
    fn moved(&self, moved: &[SessionMoved]) {
        self.listeners().retain(|conn, listener| {
            let gone = moved.iter().any(|m| *m.member_id == *listener.member_id && *m.connection == *listener.connection);
            if gone {
                tracing::info!(room = %self.room, conn, member = %listener.member_id, "session resumed on another connection; closing this one");
                listener.moved.notify_one();
            }
            !gone
        });
    }

    /// Queues one event for every local listener; returns how many got it.
    fn deliver(&self, event: &RoomEvent, metrics: &GatewayMetrics) -> usize {
        if let Some(Kind::Inbox(update)) = &event.kind {
            return self.deliver_update(update, metrics);
        }
        let Some(view) = EventView::of(event) else {
            return 0;
        };
        let epoch = {
            let mut position = self.position.lock().unwrap_or_else(PoisonError::into_inner);
            if event.seq > 0 {
                if *position.0 == *event.epoch && event.seq <= position.1 {
                    return 0; // seen already (a replay overlapping what we had)
                }
                *position = (Arc::from(event.epoch.as_str()), event.seq);
            }
            Arc::clone(&position.0)
        };
        let from = match &event.kind {
            Some(Kind::Typing(t)) => Some(Arc::from(t.member_id.as_str())),
            _ => None,
        };
        self.fan_out(
            Delivery { room: Arc::clone(&self.room), epoch, seq: event.seq, from, frame: encode(&view), resync: false },
            metrics,
        )
    }

    /// Queues an inbox update for the listeners of the user it names only.
    fn deliver_update(&self, update: &InboxUpdate, metrics: &GatewayMetrics) -> usize {
        let Some(frame) = crate::inbox::update(update) else {
            return 0;
        };
        let delivery =
            Delivery { room: Arc::clone(&self.room), epoch: self.epoch(), seq: 0, from: None, frame, resync: false };
        self.fan_out_to(delivery, |listener| *listener.user_id == *update.user_id, metrics)
    }

    /// Tells every listener of an inbox feed that updates may have been missed.
    fn resync(&self, metrics: &GatewayMetrics) -> usize {
        let delivery = Delivery {
            room: Arc::clone(&self.room),
            epoch: self.epoch(),
            seq: 0,
            from: None,
            frame: Utf8Bytes::default(),
            resync: true,
        };
        self.fan_out_to(delivery, |_| true, metrics)
    }

    /// Queues a presence frame for every local listener.
    fn deliver_presence(&self, window: &mut PresenceWindow, metrics: &GatewayMetrics) -> usize {
        let Some(frame) = window.take(&self.room) else {
            return 0;
        };
        let epoch = Arc::clone(&self.position.lock().unwrap_or_else(PoisonError::into_inner).0);
        self.fan_out(
            Delivery { room: Arc::clone(&self.room), epoch, seq: 0, from: None, frame, resync: false },
            metrics,
        )
    }

    fn fan_out(&self, delivery: Delivery, metrics: &GatewayMetrics) -> usize {
        self.fan_out_to(delivery, |_| true, metrics)
    }

    /// Queues `delivery` for the listeners `wanted` picks; a listener whose
    /// queue is full is dropped and its session closed (4008).
    fn fan_out_to(&self, delivery: Delivery, wanted: impl Fn(&Listener) -> bool, metrics: &GatewayMetrics) -> usize {
        let delivery = Arc::new(delivery);
        let mut delivered = 0;
        self.listeners().retain(|conn, listener| {
            if !wanted(listener) {
                return true;
            }
            match listener.queue.try_send(Arc::clone(&delivery)) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(room = %self.room, conn, "browser too slow: queue full, disconnecting it (4008)");
                    listener.too_slow.notify_one();
                    metrics.slow_consumers.increment(1);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        delivered
    }

    fn members(&self) -> Vec<Listener> {
        self.listeners().values().cloned().collect()
    }

    fn epoch(&self) -> Arc<str> {
        Arc::clone(&self.position.lock().unwrap_or_else(PoisonError::into_inner).0)
    }
}

/// Keeps the room's upstream stream open until the feed is stopped.
pub(crate) async fn run(
    feed: Arc<Feed>,
    services: Arc<RoomServices>,
    gateway: Arc<str>,
    heartbeat_every: Duration,
    metrics: Arc<GatewayMetrics>,
) {
    let mut heartbeat = heartbeat_timer(heartbeat_every);
    heartbeat.tick().await;
    let upstream = Upstream { room: feed.room.to_string(), feed, services, gateway, metrics };
    let mut backoff = Duration::from_millis(50);
    let mut opened_before = false;
    while !upstream.feed.stop.is_cancelled() {
        let Some((endpoint, stream)) = upstream.open().await else {
            upstream.metrics.upstream_errors.increment(1);
            upstream.feed.ready.send_replace(false);
            if upstream.feed.stop.run_until_cancelled(tokio::time::sleep(backoff)).await.is_none() {
                break;
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
            continue;
        };
        backoff = Duration::from_millis(50);
        // Inbox updates are not stored: what came while the stream was
        // down is only in the snapshot each listener now asks for.
        if upstream.feed.inbox && std::mem::replace(&mut opened_before, true) {
            let told = upstream.feed.resync(&upstream.metrics);
            tracing::info!(room = upstream.room, told, "inbox stream opened again; listeners resync");
        }
        upstream.follow(endpoint, stream, &mut heartbeat).await;
    }
    tracing::debug!(room = upstream.room, "feed stopped");
}

/// The feed's heartbeat clock. After a stall (a busy runtime, a stream
/// that took long to reopen) the ticks it missed are not fired back to
/// back — each would be a heartbeat call for every member — but the next
/// comes one period after the late one.
fn heartbeat_timer(every: Duration) -> tokio::time::Interval {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer
}

/// What one turn of a feed's loop woke up for.
enum Wake {
    Stop,
    Heartbeat,
    PresenceDue,
    Message(Result<Option<RoomEvent>, tonic::Status>),
}

/// A feed's task: the room's stream from a room-service to its listeners.
struct Upstream {
    room: String,
    feed: Arc<Feed>,
    services: Arc<RoomServices>,
    gateway: Arc<str>,
    metrics: Arc<GatewayMetrics>,
}

impl Upstream {
    /// Opens the stream, resuming after the last event the feed saw.
    async fn open(&self) -> Option<(&crate::upstream::RoomServiceEndpoint, tonic::Streaming<RoomEvent>)> {
        let (epoch, after_seq) = {
            let position = self.feed.position.lock().unwrap_or_else(PoisonError::into_inner);
            (position.0.to_string(), position.1)
        };
        let request = SubscribeRequest { room: self.room.clone(), after_seq, epoch, gateway: self.gateway.to_string() };
        let (endpoint, start, stream) = open(&self.services, &self.room, request).await?;
        self.feed.start_at(start);
        tracing::info!(room = self.room, room_service = endpoint.url, after_seq, "room stream open");
        self.feed.ready.send_replace(true);
        Some((endpoint, stream))
    }

    /// Hands the stream's events to the listeners until it ends or the feed stops.
    async fn follow(
        &self,
        endpoint: &crate::upstream::RoomServiceEndpoint,
        mut stream: tonic::Streaming<RoomEvent>,
        heartbeat: &mut tokio::time::Interval,
    ) {
        let mut presence = Presence { window: PresenceWindow::default(), due: None, last_sent: None };
        loop {
            let wake = tokio::select! {
                () = self.feed.stop.cancelled() => Wake::Stop,
                _ = heartbeat.tick() => Wake::Heartbeat,
                () = presence.closes() => Wake::PresenceDue,
                message = stream.message() => Wake::Message(message),
            };
            match wake {
                Wake::Stop => break,
                // An inbox's listeners are not members: nothing to keep present.
                Wake::Heartbeat if self.feed.inbox => {}
                Wake::Heartbeat => send_heartbeats(&self.feed, &self.services, &self.gateway),
                Wake::PresenceDue => self.flush(&mut presence),
                Wake::Message(Ok(Some(event))) => self.on_event(&mut presence, event),
                Wake::Message(Ok(None)) => {
                    tracing::info!(
                        room = self.room,
                        room_service = endpoint.url,
                        "room stream ended; subscribing again"
                    );
                    break;
                }
                Wake::Message(Err(status)) => {
                    stream_broke(endpoint, &self.room, &status, &self.metrics);
                    break;
                }
            }
        }
        // Changes gathered but not sent: send them before resubscribing.
        self.feed.deliver_presence(&mut presence.window, &self.metrics);
    }

    fn flush(&self, presence: &mut Presence) {
        let delivered = self.feed.deliver_presence(&mut presence.window, &self.metrics);
        presence.sent();
        tracing::debug!(room = self.room, delivered, "presence delivered to local clients");
    }

    fn on_event(&self, presence: &mut Presence, event: RoomEvent) {
        // A new history (Redis restarted empty): its presence went too, so
        // put this gateway's members back now.
        let epoch = self.feed.epoch();
        if event.seq > 0 && !epoch.is_empty() && *epoch != *event.epoch && !self.feed.inbox {
            tracing::warn!(room = self.room, "the room's history started over; restoring its members");
            send_heartbeats(&self.feed, &self.services, &self.gateway);
        }
        presence.on_event(&self.feed, event, &self.metrics);
    }
}

/// The presence changes waiting to go out, and when they may.
struct Presence {
    window: PresenceWindow,
    /// When the waiting changes go out.
    due: Option<Instant>,
    last_sent: Option<Instant>,
}

impl Presence {
    /// Hands a stream event on: presence into the window (sent at once after
    /// a quiet spell), anything else straight to the listeners.
    fn on_event(&mut self, feed: &Feed, event: RoomEvent, metrics: &GatewayMetrics) {
        if let Some(Kind::Presence(diff)) = event.kind {
            if !diff.moved.is_empty() {
                feed.moved(&diff.moved);
            }
            self.window.add(diff);
            let now = Instant::now();
            let earliest = self.last_sent.map_or(now, |at| at + PRESENCE_EVERY);
            self.due.get_or_insert(earliest.max(now));
            return;
        }
        let delivered = feed.deliver(&event, metrics);
        metrics.observe_latency(event.ts_ms, chat_runtime::clock::now_ms());
        tracing::debug!(room = %feed.room, seq = event.seq, delivered, "delivered to local clients");
    }

    /// Resolves when the waiting changes are due; never while none wait.
    async fn closes(&self) {
        match self.due {
            Some(due) => tokio::time::sleep_until(due).await,
            None => std::future::pending().await,
        }
    }

    fn sent(&mut self) {
        self.due = None;
        self.last_sent = Some(Instant::now());
    }
}

fn stream_broke(
    endpoint: &crate::upstream::RoomServiceEndpoint,
    room: &str,
    status: &tonic::Status,
    metrics: &GatewayMetrics,
) {
    metrics.upstream_errors.increment(1);
    tracing::warn!(room, room_service = endpoint.url, %status, "room stream broke; subscribing again");
    if is_unreachable(status) {
        endpoint.mark_down();
    }
}

fn send_heartbeats(feed: &Arc<Feed>, services: &Arc<RoomServices>, gateway: &Arc<str>) {
    tokio::spawn(send_heartbeat(Arc::clone(feed), Arc::clone(services), Arc::clone(gateway)));
}

/// Opens the room's stream on the best reachable room-service.
async fn open<'a>(
    services: &'a RoomServices,
    room: &str,
    request: SubscribeRequest,
) -> Option<(&'a crate::upstream::RoomServiceEndpoint, Option<(String, u64)>, tonic::Streaming<RoomEvent>)> {
    for endpoint in services.ranked(room) {
        let mut client = endpoint.client();
        match tokio::time::timeout(CALL_TIMEOUT, client.subscribe(request.clone())).await {
            Ok(Ok(response)) => {
                let header = |name| response.metadata().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let start = header(chat_proto::EPOCH_HEADER)
                    .zip(header(chat_proto::LAST_SEQ_HEADER).and_then(|s| s.parse::<u64>().ok()));
                return Some((endpoint, start, response.into_inner()));
            }
            Ok(Err(status)) if crate::upstream::is_busy(&status) => {
                tracing::warn!(room, room_service = endpoint.url, %status, "room-service busy; opening the stream later");
                return None;
            }
            Ok(Err(status)) if !is_unreachable(&status) => {
                tracing::error!(room, room_service = endpoint.url, %status, "room-service refused the room stream");
                return None;
            }
            Ok(Err(status)) => {
                tracing::warn!(room, room_service = endpoint.url, %status, "cannot open room stream");
                endpoint.mark_down();
            }
            Err(_) if endpoint.answers_health().await => {
                tracing::warn!(room, room_service = endpoint.url, "room stream slow to open; the room-service is busy");
                return None;
            }
            Err(_) => endpoint.mark_down(),
        }
    }
    None
}

/// Keeps this gateway's members of the room present; joins again any the
/// room-service forgot (their presence ran out while it could not be reached).
async fn send_heartbeat(feed: Arc<Feed>, services: Arc<RoomServices>, gateway: Arc<str>) {
    let room = feed.room.to_string();
    let members = feed.members();
    for chunk in members.chunks(HEARTBEAT_CHUNK) {
        let request = HeartbeatRequest {
            room: room.clone(),
            gateway: gateway.to_string(),
            member_ids: chunk.iter().map(|l| l.member_id.to_string()).collect(),
        };
        let heartbeat = services.call(&room, request, |mut c, r| async move { c.heartbeat(r).await });
        let unknown = match heartbeat.await {
            Ok(reply) => reply.unknown_member_ids,
            Err(status) => {
                tracing::warn!(room, %status, "heartbeat failed");
                return;
            }
        };
        for listener in chunk.iter().filter(|l| unknown.iter().any(|u| **u == *l.member_id)) {
            let member_id = &listener.member_id;
            // Left or disconnected since the list was taken: not a lost member.
            if !feed.has_member(member_id) {
                continue;
            }
            // Put back silently: the member never left, so nobody is told
            // it joined (Redis restarted empty, or it was unreachable for
            // longer than the presence TTL).
            let join = JoinRequest {
                room: room.clone(),
                member: Some(Member {
                    member_id: member_id.to_string(),
                    username: listener.username.to_string(),
                    gateway: gateway.to_string(),
                    joined_at_ms: 0,
                    connection: listener.connection.to_string(),
                    user_id: listener.user_id.to_string(),
                }),
                history_limit: 1,
                restore: true,
                ..JoinRequest::default()
            };
            match services.call(&room, join, |mut c, r| async move { c.join(r).await }).await {
                Ok(_) => tracing::info!(room, %member_id, "joined again a member whose presence had run out"),
                Err(status) => tracing::warn!(room, %member_id, %status, "could not join again"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::UserRoom;
    use futures_util::FutureExt;

    fn listener(user_id: &str, queue: mpsc::Sender<Arc<Delivery>>) -> Listener {
        Listener {
            member_id: Arc::from(user_id),
            user_id: Arc::from(user_id),
            username: Arc::from(user_id),
            connection: Arc::from(user_id),
            queue,
            too_slow: Arc::default(),
            moved: Arc::default(),
        }
    }

    #[test]
    fn an_inbox_update_goes_only_to_the_listeners_of_its_user_and_a_resync_to_all() {
        let feed = Feed::new("inbox.3");
        let metrics = GatewayMetrics::new("gw-test");
        let (ada, mut to_ada) = mpsc::channel(4);
        let (bob, mut to_bob) = mpsc::channel(4);
        let (bob_phone, mut to_bob_phone) = mpsc::channel(4);
        feed.add(1, listener("ada", ada));
        feed.add(2, listener("bob", bob));
        feed.add(3, listener("bob", bob_phone));
        let update = InboxUpdate {
            user_id: "bob".into(),
            room: Some(Box::new(UserRoom { room: "general".into(), ..UserRoom::default() })),
            reason: "read".into(),
        };
        let event = RoomEvent { room: "inbox.3".into(), kind: Some(Kind::Inbox(update)), ..RoomEvent::default() };
        assert_eq!(feed.deliver(&event, &metrics), 2, "both of bob's connections");
        assert!(to_ada.try_recv().is_err(), "not ada's");
        for queue in [&mut to_bob, &mut to_bob_phone] {
            let delivery = queue.try_recv().expect("bob's update");
            assert!(delivery.frame.as_str().starts_with(r#"{"type":"inbox","reason":"read""#), "{}", delivery.frame);
        }
        assert_eq!(feed.resync(&metrics), 3);
        assert!(to_ada.try_recv().expect("a resync").resync);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_heartbeat_fires_once_not_once_per_missed_tick() {
        let every = Duration::from_secs(10);
        let mut heartbeat = heartbeat_timer(every);
        heartbeat.tick().await; // the first tick is immediate
        tokio::time::advance(every * 5 + Duration::from_secs(1)).await; // stalled for five periods
        let mut fired = 0;
        while heartbeat.tick().now_or_never().is_some() {
            fired += 1;
        }
        assert_eq!(fired, 1, "one heartbeat for the stall, not one per missed period");
    }
}
