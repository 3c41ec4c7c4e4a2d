//! A feed's task: the room's Subscribe stream from a room-service, turned
//! into deliveries to the feed's listeners.
//!
//! [`run`] opens the stream on the best reachable room-service, resuming
//! after the feed's position, and follows it until it ends or breaks; then
//! it opens it again (backing off while none answers) until the feed is
//! stopped. While following, one loop wakes for the stream's next event,
//! the heartbeat clock (`heartbeat.rs`), and the presence window closing:
//! presence is gathered and sent at most once per [`PRESENCE_EVERY`],
//! anything else goes straight to the listeners. An event from a new
//! history (Redis restarted empty) sends heartbeats at once, so this
//! gateway's members are put back.

use std::sync::{Arc, PoisonError};
use std::time::Duration;

use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{RoomEvent, SubscribeRequest};
use tokio::time::Instant;

use super::Feed;
use super::heartbeat::{heartbeat_timer, send_heartbeats};
use crate::limits::{CALL_TIMEOUT, PRESENCE_EVERY};
use crate::metrics::GatewayMetrics;
use crate::presence::PresenceWindow;
use crate::upstream::{RoomServices, is_unreachable};

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

/// What one turn of a feed's loop woke up for.
// One value per wake-up, moved at once into its handler: its size costs
// nothing that boxing the event (an allocation per event) would save.
#[allow(clippy::large_enum_variant)]
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
        // With traces on, the gateway's id for the delivery span.
        let traced = self.services.is_traced().then_some(&*self.gateway);
        presence.on_event(&self.feed, event, &self.metrics, traced);
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
    fn on_event(&mut self, feed: &Feed, event: RoomEvent, metrics: &GatewayMetrics, traced: Option<&str>) {
        if let Some(Kind::Presence(diff)) = event.kind {
            if !diff.moved.is_empty() {
                feed.moved(&diff.moved);
            }
            feed.removed(&diff.leaves);
            self.window.add(diff);
            let now = Instant::now();
            let earliest = self.last_sent.map_or(now, |at| at + PRESENCE_EVERY);
            self.due.get_or_insert(earliest.max(now));
            return;
        }
        let delivered = match traced {
            // A sampled send's event: its delivery here joins the send's trace.
            Some(gateway) if !event.traceparent.is_empty() => {
                let span = crate::traced::deliver_span(&feed.room, event.seq, gateway, &event.traceparent);
                let delivered = span.in_scope(|| feed.deliver(&event, metrics));
                span.record("recipients", delivered);
                delivered
            }
            _ => feed.deliver(&event, metrics),
        };
        // The latency metric is the rooms' (publish to deliver), not the inboxes'.
        if !feed.inbox {
            metrics.observe_latency(event.ts_ms, chat_runtime::clock::now_ms());
        }
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
