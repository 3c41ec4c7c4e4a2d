//! Writing to the browser: frames, and batches of queued room events,
//! each bounded by [`WRITE_STALL`].

use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use futures_util::SinkExt;
use tokio::sync::mpsc;

use crate::closing::CloseCode;
use crate::feed::Delivery;

use super::Session;
use super::calls::Room;
use super::ending::{End, stalled, write_failed};
use crate::limits::{QUEUE_FRAMES, WRITE_BATCH, WRITE_STALL};

impl Session {
    /// Writes frames and flushes; a write that fails or stalls ends the session.
    pub(super) async fn write(&mut self, socket: &mut WebSocket, frames: Vec<Utf8Bytes>) -> Result<(), End> {
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
    pub(super) async fn write_batch(
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
    pub(super) async fn feed_batch(
        &mut self,
        socket: &mut WebSocket,
        first: Arc<Delivery>,
        deliveries: &mut mpsc::Receiver<Arc<Delivery>>,
    ) -> Result<Result<(), axum::Error>, End> {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(delivery) = next.take() {
            if delivery.resync {
                self.snapshot_soon(); // the inbox may have missed updates
            } else if delivery.removed {
                // A moderator removed this connection's member from the room.
                if self.rooms.remove(&delivery.room).is_some() {
                    self.shared.hub.detach(&delivery.room, self.conn);
                    if let Err(error) = socket.feed(Message::Text(delivery.frame.clone())).await {
                        return Ok(Err(error));
                    }
                    written += 1;
                }
            } else if let Some(Room::Joining { held, .. }) = self.rooms.get_mut(&delivery.room) {
                if held.len() >= QUEUE_FRAMES {
                    return Err(End::Close(CloseCode::SlowConsumer));
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

    pub(super) fn wants(&self, delivery: &Delivery) -> bool {
        if delivery.room == *self.person.inbox.room() {
            return true; // the feed picked this user's updates already
        }
        let Some(Room::Joined { epoch, snapshot_seq, .. }) = self.rooms.get(&delivery.room) else {
            return false;
        };
        if delivery.seq == 0 {
            return delivery.from.as_deref() != Some(&*self.member_id);
        }
        !(delivery.epoch == *epoch && delivery.seq <= *snapshot_seq)
    }
}
