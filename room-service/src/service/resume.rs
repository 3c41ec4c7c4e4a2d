//! What a joining member is shown of the room's messages: on a resume
//! (`epoch` and `after_seq`), exactly what it missed, or nothing and
//! `recovered: false`; on a first join, the newest few.
//!
//! Redis holds a room's recent history; with a store, what Redis no longer
//! holds — trimmed by `HISTORY_LEN`, or lost with Redis (the room then goes
//! on in the same epoch, see `seeding`) — is read from the store below the
//! oldest message Redis still has. A resume is recovered only when the two
//! together give every message after `after_seq`, in the member's epoch.

use chat_proto::RoomName;
use chat_proto::v1::RoomEvent;
use tonic::Status;

use super::history::{in_pages, store_status};
use super::{MAX_RESUMED, Rooms};
use crate::broker::{Broker, Position, Snapshot};
use crate::people::Directory;
use crate::store::Store;
use crate::store::bounds::{MAX_PAGE, MAX_RANGE};

impl<B: Broker + Directory> Rooms<B> {
    /// Every stored event after `after_seq` up to `position`, if `epoch` is
    /// the room's and Redis (with a store: and the store) still holds them
    /// all; else `None`.
    pub(super) async fn missed(
        &self,
        room: &RoomName,
        position: &Position,
        epoch: &str,
        after_seq: u64,
    ) -> Result<Option<Vec<RoomEvent>>, Status> {
        let last = position.last_seq;
        if epoch != position.epoch || after_seq > last || last - after_seq > MAX_RESUMED {
            return Ok(None);
        }
        let want = usize::try_from(last - after_seq).unwrap_or(usize::MAX);
        let mut events = self.broker.after(room, after_seq, want).await.map_err(|e| self.failed(e))?;
        events.retain(|e| e.seq <= last);
        let whole = events.len() == want && events.first().is_none_or(|e| e.seq == after_seq + 1);
        if whole {
            return Ok(Some(events));
        }
        let Some(store) = &self.store else { return Ok(None) };
        let newer = contiguous_tail(events, last);
        let below = newer.first().map_or(last + 1, |e| e.seq);
        let mut older = range(store, room, after_seq, below - 1).await?;
        let complete = older.len() as u64 == below - 1 - after_seq
            && older.iter().zip(after_seq + 1..).all(|(e, seq)| e.seq == seq && e.epoch == epoch);
        if !complete {
            return Ok(None);
        }
        older.extend(newer);
        Ok(Some(older))
    }

    /// The newest `limit` messages for a first join (or a resume not
    /// recovered): [`Self::newest`] with the change events left out (the
    /// messages carry their changes), and when changes crowded messages out
    /// of the join's snapshot, more messages read on below it.
    pub(super) async fn newest_messages(
        &self,
        room: &RoomName,
        snapshot: &Snapshot,
        limit: usize,
    ) -> Result<Vec<RoomEvent>, Status> {
        let events = self.newest(room, &snapshot.position, &snapshot.history, limit).await?;
        let (read, oldest) = (events.len(), events.first().map(|e| e.seq));
        let mut messages: Vec<RoomEvent> = events.into_iter().filter(in_pages).collect();
        if let Some(oldest) = oldest
            && messages.len() < read
            && messages.len() < limit
            && oldest > 1
        {
            let (mut older, _) = self.messages_before(room, oldest, limit - messages.len()).await?;
            older.append(&mut messages);
            messages = older;
        }
        Ok(messages)
    }

    /// The newest `limit` messages up to `position` for a first join (or a
    /// resume not recovered): what Redis returned with the join, topped up
    /// from the store when Redis holds fewer (trimmed, or lost with Redis).
    pub(super) async fn newest(
        &self,
        room: &RoomName,
        position: &Position,
        from_redis: &[RoomEvent],
        limit: usize,
    ) -> Result<Vec<RoomEvent>, Status> {
        let want = usize::try_from(position.last_seq).unwrap_or(usize::MAX).min(limit);
        let Some(store) = self.store.as_ref().filter(|_| from_redis.len() < want) else {
            return Ok(from_redis.to_vec());
        };
        let newer = contiguous_tail(from_redis.to_vec(), position.last_seq);
        let mut below = newer.first().map_or(position.last_seq + 1, |e| e.seq);
        let mut older: Vec<RoomEvent> = Vec::new();
        while older.len() + newer.len() < want {
            let need = want - older.len() - newer.len();
            let page = store
                .before(room.as_str(), Some(below), u32::try_from(need).unwrap_or(MAX_PAGE).min(MAX_PAGE))
                .await
                .map_err(store_status)?;
            let Some(first) = page.messages.first() else { break };
            below = first.seq;
            older.splice(0..0, page.messages.into_iter().map(|m| m.into_event()));
            if page.next_before.is_none() {
                break;
            }
        }
        older.extend(newer);
        Ok(older)
    }
}

/// The store's messages of `room` with a seq above `after` up to `upto`,
/// oldest first, read [`MAX_RANGE`] at a time (a resume needs at most
/// `MAX_RESUMED`: ten reads).
async fn range(store: &Store, room: &RoomName, after: u64, upto: u64) -> Result<Vec<RoomEvent>, Status> {
    let mut events = Vec::new();
    let mut from = after;
    while from < upto {
        let batch = store.after(room.as_str(), from, MAX_RANGE).await.map_err(store_status)?;
        let full = batch.len() == MAX_RANGE as usize;
        for message in batch {
            if message.seq > upto {
                return Ok(events);
            }
            from = message.seq;
            events.push(message.into_event());
        }
        if !full {
            break;
        }
    }
    Ok(events)
}

/// The newest run of `events` (oldest first) with no gap in seq that ends
/// at `top`; empty when the newest is not `top`. What Redis holds of a room
/// after it lost the room is such a run (what was sent since), above what
/// the store must give.
pub(super) fn contiguous_tail(mut events: Vec<RoomEvent>, top: u64) -> Vec<RoomEvent> {
    if events.last().is_none_or(|e| e.seq != top) {
        return Vec::new();
    }
    let mut start = events.len() - 1;
    while start > 0 && events[start - 1].seq + 1 == events[start].seq {
        start -= 1;
    }
    events.split_off(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(seqs: &[u64]) -> Vec<RoomEvent> {
        seqs.iter().map(|&seq| RoomEvent { seq, ..Default::default() }).collect()
    }

    #[test]
    fn the_tail_is_the_newest_run_without_a_gap_ending_at_the_top() {
        let cases: [(&[u64], u64, &[u64]); 5] = [
            (&[3, 4, 5], 5, &[3, 4, 5]),
            (&[1, 2, 7, 8], 8, &[7, 8]),
            (&[1, 2, 7, 8], 9, &[]),
            (&[], 4, &[]),
            (&[9], 9, &[9]),
        ];
        for (events, top, tail) in cases {
            let got: Vec<u64> = contiguous_tail(seqs(events), top).iter().map(|e| e.seq).collect();
            assert_eq!(got, tail, "{events:?} up to {top}");
        }
    }
}
