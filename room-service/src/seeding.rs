//! Seeding: where a room's numbering goes on from when Redis has lost it.
//!
//! With a store, Redis is a cache: the brokers start no room themselves
//! (`seeded_by_caller`). A write to a room Redis has no epoch for — lost to
//! a restart with no data, `FLUSHALL`, eviction or `ROOM_TTL_SECS`, or new —
//! comes back [`BrokerError::Unseeded`], having changed nothing. Then
//! [`Seeder::seed`] reads where the room's numbering stands (the store's
//! `rooms` row, and the newest seq this process delivered for the room),
//! seeds Redis with it, and [`Seeder::retry`] makes the call again. Seeding
//! is atomic in Redis and happens only while the epoch is missing: of two
//! room-services racing to seed a room, one wins and the other's seed
//! changes nothing; both calls then find the winner's epoch. A room neither
//! the store nor this process knows starts at a fresh epoch, as without a
//! store. Readers of a room's position (Subscribe, History, GetRoom) seed a
//! room the store knows too, so right after a loss they show its history
//! and epoch, not an empty new room.
//!
//! What stays lost (the default mode's window): messages Redis acknowledged
//! but the archiver had not yet copied into the store go with Redis. Their
//! seqs are not given out again when the room-service that seeds the room
//! saw them (the one serving the room does: every event of it passes its
//! fanout); they may be when it did not — that room-service died with
//! Redis, or another seeded the room first.

use std::sync::Arc;

use chat_proto::RoomName;
use tonic::Status;

use crate::broker::{Broker, BrokerError, BrokerResult, Fanout, new_epoch};
use crate::store::{Numbering, Store};

/// Calls made on a room before giving up on seeding it: the first, and one
/// after each seed. A second refusal means the room was lost again between
/// the seed and the call.
const ATTEMPTS: usize = 3;

/// What to do with a room neither the store nor this process knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unknown {
    /// A write: the room starts at a fresh epoch.
    StartFresh,
    /// A read: leave it unseeded (it reads as a room with no events).
    LeaveUnseeded,
}

/// Seeds rooms Redis has no numbering for, from the store and from what
/// this process saw.
#[derive(Debug)]
pub(crate) struct Seeder<B> {
    broker: Arc<B>,
    store: Store,
    fanout: Arc<Fanout>,
}

impl<B: Broker> Seeder<B> {
    pub(crate) fn new(broker: Arc<B>, store: Store, fanout: Arc<Fanout>) -> Self {
        Self { broker, store, fanout }
    }

    /// Seeds `room` where its numbering stands; returns whether it has one
    /// now (seeded by this call or by another room-service first).
    pub(crate) async fn seed(&self, room: &RoomName, unknown: Unknown) -> Result<bool, Status> {
        let known = self.store.numbering(room.as_str()).await.map_err(|error| {
            tracing::warn!(%room, %error, "cannot read the room's numbering from the store");
            Status::internal(format!(
                "room {room:?} is not in Redis (new, or lost) and the store could not say where its numbering stands ({error}); try again once PostgreSQL answers"
            ))
        })?;
        let Some(Numbering { epoch, last_seq }) = start(known, self.fanout.newest(room.as_str()), unknown) else {
            return Ok(false);
        };
        let seeded = self.broker.seed(room, &epoch, last_seq).await.map_err(Status::from)?;
        if seeded {
            tracing::info!(%room, epoch, last_seq, "room seeded: Redis had no numbering for it");
        }
        Ok(true)
    }

    /// Makes `call` on `room` (given the attempt's number, from 0), seeding
    /// the room and calling again while it comes back unseeded. The outer
    /// error is seeding's; the inner result is the call's.
    pub(crate) async fn retry<T, F, Fut>(&self, room: &RoomName, mut call: F) -> Result<BrokerResult<T>, Status>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = BrokerResult<T>>,
    {
        let mut attempt = 1;
        loop {
            match call().await {
                Err(BrokerError::Unseeded(_)) if attempt < ATTEMPTS => {
                    self.seed(room, Unknown::StartFresh).await?;
                    attempt += 1;
                }
                result => return Ok(result),
            }
        }
    }
}

/// Where a room's numbering starts again: the store's, raised to the
/// newest seq this process saw in the same epoch (archived or not); what
/// this process saw when the store has nothing yet; else a fresh epoch for
/// a write and nothing for a read. When the two disagree on the epoch the
/// store's wins: it is the record history is read from.
fn start(known: Option<Numbering>, seen: Option<(String, u64)>, unknown: Unknown) -> Option<Numbering> {
    match (known, seen) {
        (Some(known), Some((epoch, seq))) if epoch == known.epoch => {
            Some(Numbering { last_seq: known.last_seq.max(seq), ..known })
        }
        (Some(known), _) => Some(known),
        (None, Some((epoch, last_seq))) => Some(Numbering { epoch, last_seq }),
        (None, None) => (unknown == Unknown::StartFresh).then(|| Numbering { epoch: new_epoch(), last_seq: 0 }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbering(epoch: &str, last_seq: u64) -> Numbering {
        Numbering { epoch: epoch.into(), last_seq }
    }

    #[test]
    fn a_room_goes_on_from_the_store_raised_to_what_this_process_saw() {
        let cases = [
            (Some(numbering("e", 280)), Some(("e", 300)), numbering("e", 300), "saw more than was archived"),
            (Some(numbering("e", 300)), Some(("e", 280)), numbering("e", 300), "archived more than seen here"),
            (Some(numbering("e", 300)), None, numbering("e", 300), "never served here"),
            (Some(numbering("e", 300)), Some(("x", 900)), numbering("e", 300), "the store's epoch wins"),
            (None, Some(("e", 12)), numbering("e", 12), "nothing archived yet"),
        ];
        for (known, seen, expected, case) in cases {
            let seen = seen.map(|(epoch, seq)| (epoch.to_owned(), seq));
            assert_eq!(start(known, seen, Unknown::LeaveUnseeded), Some(expected), "{case}");
        }
    }

    #[test]
    fn a_room_nobody_knows_starts_fresh_only_for_a_write() {
        let fresh = start(None, None, Unknown::StartFresh).expect("a write starts the room");
        assert_eq!((fresh.epoch.len(), fresh.last_seq), (12, 0));
        assert_ne!(start(None, None, Unknown::StartFresh).expect("again").epoch, fresh.epoch, "each a new epoch");
        assert_eq!(start(None, None, Unknown::LeaveUnseeded), None, "a read leaves it be");
    }
}
