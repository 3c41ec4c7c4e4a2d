//! One gateway's Subscribe stream for one room: replay, then live, with
//! nothing lost or repeated.
//!
//! The broker subscription is taken before the room's position is read, so
//! every event after that position arrives live. With `after_seq`, the stream
//! first replays history after it (the gateway resuming after a failover),
//! then forwards live events, skipping those it already replayed. A jump in
//! sequence numbers (Redis reconnected, or this reader lagged behind the
//! fanout's bound) is filled from history before the event that revealed it.

use std::sync::Arc;

use chat_proto::v1::{RoomEvent, SubscribeRequest};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::broker::{Broker, BrokerResult, Position, Subscription};
use crate::metrics::RoomServiceMetrics;

/// How many stored events one history read fetches while catching up.
const REPLAY_BATCH: usize = 500;

type Out = mpsc::Sender<Result<RoomEvent, Status>>;

/// Where the stream stands: the epoch and the last sequence number sent.
struct Cursor {
    epoch: String,
    last: u64,
}

/// What a stream needs from the room-service.
pub struct Stream<B> {
    pub broker: Arc<B>,
    pub metrics: Arc<RoomServiceMetrics>,
    /// Cancelled on shutdown: the stream ends with UNAVAILABLE so the
    /// gateway subscribes again elsewhere.
    pub stopping: CancellationToken,
}

impl<B: Broker> Stream<B> {
    pub async fn run(self, request: SubscribeRequest, subscription: Subscription, position: Position, out: Out) {
        self.metrics.streams.increment(1);
        forward_all(&self.broker, &self.metrics, request, subscription, position, out, &self.stopping).await;
        self.metrics.streams.decrement(1);
    }
}

async fn forward_all<B: Broker>(
    broker: &Arc<B>,
    metrics: &RoomServiceMetrics,
    request: SubscribeRequest,
    mut subscription: Subscription,
    position: Position,
    out: Out,
    stopping: &CancellationToken,
) {
    let room = request.room.clone();
    let mut cursor = Cursor { epoch: position.epoch.clone(), last: position.last_seq };
    // Where a resuming gateway's replay starts: after what it saw, or from
    // the start when the room's history began anew since (Redis lost it).
    let replay_from = match request.after_seq {
        0 => None,
        _ if request.epoch != position.epoch && !position.epoch.is_empty() => Some(0),
        seen if request.epoch == position.epoch && seen < position.last_seq => Some(seen),
        _ => None,
    };
    if let Some(from) = replay_from {
        cursor.last = from;
        if catch_up(&**broker, metrics, &room, &mut cursor, position.last_seq, &out).await.is_err() {
            return;
        }
        tracing::info!(
            room,
            gateway = request.gateway,
            from,
            to = cursor.last,
            new_history = request.epoch != position.epoch,
            "replayed missed events"
        );
    }

    let end = loop {
        let received = tokio::select! {
            () = stopping.cancelled() => break Some(Status::unavailable("room-service is shutting down; subscribe again")),
            () = out.closed() => break None,
            received = subscription.events.recv() => received,
        };
        let result = match received {
            Ok(event) => forward(&**broker, metrics, &room, &mut cursor, &event, &out).await,
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(room, missed, "stream fell behind; refilling from history");
                let target = match broker.position(&room).await {
                    Ok(position) => position.last_seq,
                    Err(error) => break Some(Status::from(error)),
                };
                catch_up(&**broker, metrics, &room, &mut cursor, target, &out).await
            }
            Err(RecvError::Closed) => break Some(Status::unavailable("room-service lost its broker")),
        };
        match result {
            Ok(()) => {}
            Err(Stop::GatewayGone) => break None,
            Err(Stop::Broker(status)) => break Some(status),
        }
    };
    if let Some(status) = end {
        let _ = out.send(Err(status)).await;
    }
    tracing::info!(room, gateway = request.gateway, "stream closed");
}

enum Stop {
    GatewayGone,
    Broker(Status),
}

impl From<crate::broker::BrokerError> for Stop {
    fn from(error: crate::broker::BrokerError) -> Self {
        Stop::Broker(error.into())
    }
}

async fn send(out: &Out, event: RoomEvent) -> Result<(), Stop> {
    out.send(Ok(event)).await.map_err(|_| Stop::GatewayGone)
}

async fn forward<B: Broker>(
    broker: &B,
    metrics: &RoomServiceMetrics,
    room: &str,
    cursor: &mut Cursor,
    event: &Arc<RoomEvent>,
    out: &Out,
) -> Result<(), Stop> {
    if event.seq == 0 {
        return send(out, RoomEvent::clone(event)).await;
    }
    if event.epoch != cursor.epoch {
        // The room's history started over (Redis lost it): new numbering.
        *cursor = Cursor { epoch: event.epoch.clone(), last: 0 };
    }
    if event.seq <= cursor.last {
        return Ok(());
    }
    if event.seq > cursor.last + 1 {
        tracing::warn!(room, from = cursor.last + 1, to = event.seq - 1, "gap in live events; filling from history");
        catch_up(broker, metrics, room, cursor, event.seq - 1, out).await?;
    }
    cursor.last = event.seq;
    send(out, RoomEvent::clone(event)).await
}

/// Sends stored events after the cursor up to `target`, in batches.
async fn catch_up<B: Broker>(
    broker: &B,
    metrics: &RoomServiceMetrics,
    room: &str,
    cursor: &mut Cursor,
    target: u64,
    out: &Out,
) -> Result<(), Stop> {
    while cursor.last < target {
        let batch = read(broker, room, cursor.last).await?;
        let Some(last) = batch.last().map(|e| e.seq) else {
            break; // trimmed or gone: nothing more to give
        };
        for event in batch.into_iter().filter(|e| e.seq <= target) {
            cursor.epoch.clone_from(&event.epoch);
            cursor.last = event.seq;
            metrics.events_refilled.increment(1);
            send(out, event).await?;
        }
        if last >= target {
            break;
        }
    }
    cursor.last = cursor.last.max(target);
    Ok(())
}

async fn read<B: Broker>(broker: &B, room: &str, after: u64) -> BrokerResult<Vec<RoomEvent>> {
    broker.after(room, after, REPLAY_BATCH).await
}
