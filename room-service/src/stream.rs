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

use chat_proto::RoomName;
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
pub(crate) struct Stream<B> {
    pub(crate) broker: Arc<B>,
    pub(crate) metrics: Arc<RoomServiceMetrics>,
    /// Cancelled on shutdown: the stream ends with UNAVAILABLE so the
    /// gateway subscribes again elsewhere.
    pub(crate) stopping: CancellationToken,
}

impl<B: Broker> Stream<B> {
    pub(crate) async fn run(
        self,
        room: RoomName,
        request: SubscribeRequest,
        subscription: Subscription,
        position: Position,
        out: Out,
    ) {
        self.metrics.streams.increment(1);
        self.forward_all(room, request, subscription, position, out).await;
        self.metrics.streams.decrement(1);
    }
}

impl<B: Broker> Stream<B> {
    async fn forward_all(
        &self,
        room: RoomName,
        request: SubscribeRequest,
        mut subscription: Subscription,
        position: Position,
        out: Out,
    ) {
        let (broker, metrics, stopping) = (&self.broker, &*self.metrics, &self.stopping);
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
                %room,
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
                    tracing::warn!(%room, missed, "stream fell behind; refilling from history");
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
        tracing::info!(%room, gateway = request.gateway, "stream closed");
    }
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
    room: &RoomName,
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
        tracing::warn!(%room, from = cursor.last + 1, to = event.seq - 1, "gap in live events; filling from history");
        catch_up(broker, metrics, room, cursor, event.seq - 1, out).await?;
    }
    cursor.last = event.seq;
    send(out, RoomEvent::clone(event)).await
}

/// Sends stored events after the cursor up to `target`, in batches.
async fn catch_up<B: Broker>(
    broker: &B,
    metrics: &RoomServiceMetrics,
    room: &RoomName,
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

async fn read<B: Broker>(broker: &B, room: &RoomName, after: u64) -> BrokerResult<Vec<RoomEvent>> {
    broker.after(room, after, REPLAY_BATCH).await
}

#[cfg(test)]
mod tests {
    //! The replay and gap logic on its own, over the in-process broker's
    //! history; the whole path over Redis is in the integration tests.

    use std::time::Duration;

    use chat_proto::v1::ChatMessage;
    use chat_proto::v1::room_event::Kind;

    use super::*;
    use crate::broker::{Fanout, MemoryBroker, Outgoing, Retention};

    struct Room {
        broker: MemoryBroker,
        metrics: RoomServiceMetrics,
        name: RoomName,
    }

    /// A room whose history holds messages 1..=n (of at most `keep`).
    async fn room(n: usize, keep: usize) -> Room {
        let metrics = Arc::new(RoomServiceMetrics::new("test"));
        let retention = Retention { history_len: keep, room_ttl: Duration::from_secs(60) };
        let broker = MemoryBroker::new(retention, Fanout::new(16, Arc::clone(&metrics)));
        let name = RoomName::try_from("general").expect("a room name");
        let messages = (1..=n)
            .map(|i| Outgoing {
                client_id: String::new(),
                event: RoomEvent {
                    room: name.to_string(),
                    kind: Some(Kind::Message(ChatMessage { text: format!("m{i}"), ..Default::default() })),
                    ..Default::default()
                },
            })
            .collect();
        broker.append_messages(&name, None, messages).await.expect("stored");
        Room { broker, metrics: RoomServiceMetrics::new("test"), name }
    }

    impl Room {
        async fn epoch(&self) -> String {
            self.broker.position(&self.name).await.expect("a position").epoch
        }

        async fn event(&self, seq: u64) -> Arc<RoomEvent> {
            let stored = self.broker.after(&self.name, seq - 1, 1).await.expect("history");
            Arc::new(stored.into_iter().next().expect("the event is stored"))
        }

        /// `forward`s `event` from `cursor`; what went out, by seq.
        async fn forward(&self, cursor: &mut Cursor, event: &Arc<RoomEvent>) -> Vec<u64> {
            let (out, mut sent) = mpsc::channel(64);
            forward(&self.broker, &self.metrics, &self.name, cursor, event, &out).await.map_err(|_| ()).expect("sent");
            drop(out);
            let mut seqs = Vec::new();
            while let Some(Ok(event)) = sent.recv().await {
                seqs.push(event.seq);
            }
            seqs
        }
    }

    #[tokio::test]
    async fn a_gap_is_filled_from_history_before_the_event_that_showed_it() {
        let room = room(6, 100).await;
        let mut cursor = Cursor { epoch: room.epoch().await, last: 2 };
        assert_eq!(room.forward(&mut cursor, &room.event(6).await).await, vec![3, 4, 5, 6]);
        assert_eq!(cursor.last, 6);
    }

    #[tokio::test]
    async fn an_event_already_sent_is_not_sent_again() {
        let room = room(3, 100).await;
        let mut cursor = Cursor { epoch: room.epoch().await, last: 3 };
        assert_eq!(room.forward(&mut cursor, &room.event(2).await).await, Vec::<u64>::new());
        assert_eq!(room.forward(&mut cursor, &room.event(3).await).await, Vec::<u64>::new());
        assert_eq!(cursor.last, 3);
    }

    #[tokio::test]
    async fn a_new_epoch_starts_the_numbering_over() {
        let room = room(1, 100).await;
        let mut cursor = Cursor { epoch: "older".into(), last: 40 };
        assert_eq!(room.forward(&mut cursor, &room.event(1).await).await, vec![1]);
        assert_eq!((cursor.epoch, cursor.last), (room.epoch().await, 1));
    }

    #[tokio::test]
    async fn events_without_a_sequence_pass_through_and_move_nothing() {
        let room = room(2, 100).await;
        let mut cursor = Cursor { epoch: room.epoch().await, last: 2 };
        let typing = Arc::new(RoomEvent { room: "general".into(), ..Default::default() });
        assert_eq!(room.forward(&mut cursor, &typing).await, vec![0]);
        assert_eq!(cursor.last, 2);
    }

    #[tokio::test]
    async fn catching_up_past_trimmed_history_sends_what_is_left_and_moves_on() {
        // 1..=700 stored, only the last 100 kept: 601..=700.
        let room = room(700, 100).await;
        let mut cursor = Cursor { epoch: room.epoch().await, last: 10 };
        let (out, mut sent) = mpsc::channel(1024);
        catch_up(&room.broker, &room.metrics, &room.name, &mut cursor, 650, &out).await.map_err(|_| ()).expect("sent");
        drop(out);
        let mut seqs = Vec::new();
        while let Some(Ok(event)) = sent.recv().await {
            seqs.push(event.seq);
        }
        assert_eq!(seqs, (601..=650).collect::<Vec<_>>());
        assert_eq!(cursor.last, 650);
    }

    #[tokio::test]
    async fn catching_up_reads_in_batches_up_to_the_target() {
        let room = room(1200, 2000).await;
        let mut cursor = Cursor { epoch: room.epoch().await, last: 0 };
        let (out, mut sent) = mpsc::channel(2048);
        catch_up(&room.broker, &room.metrics, &room.name, &mut cursor, 1100, &out).await.map_err(|_| ()).expect("sent");
        drop(out);
        let mut seqs = Vec::new();
        while let Some(Ok(event)) = sent.recv().await {
            seqs.push(event.seq);
        }
        assert_eq!(seqs, (1..=1100).collect::<Vec<_>>(), "three reads of up to {REPLAY_BATCH}, in order");
    }
}
