//! The archiver: copies every stored event of the rooms this room-service
//! serves from Redis into the store (PostgreSQL), off the send path: the
//! messages, and the edits, deletes and reactions of them (each a stored
//! event at its own seq, which the store's append applies to its message
//! as it writes it; see `store/changes.rs`). Below, "messages" means both.
//!
//! How messages flow: the bus hands each event to the fanout, which offers
//! it here ([`Archive::offer`]): a message goes on a bounded channel with a
//! `try_send`, so delivery never waits for PostgreSQL. One task ([`run`])
//! takes them off in batches (up to [`BATCH`] messages, or what came within
//! [`LINGER`]) and writes each batch with one multi-row, idempotent
//! [`Store::append`]. A change may so reach the store before its message
//! (the message dropped at the channel's bound and caught up later, or
//! written by another room-service): the store keeps it and applies it
//! when the message arrives.
//!
//! Nothing is lost on the way, because Redis still holds what was stored:
//! - a room this room-service starts serving (its bus subscription goes
//!   live) is caught up from the Redis history above the store's high-water
//!   mark, so a room-service that died between Redis and PostgreSQL loses
//!   nothing: whoever serves the room next copies the rest;
//! - a message the full channel could not take marks its room for catch-up
//!   from just below that message;
//! - a batch PostgreSQL refused is kept and written again with backoff
//!   (chat goes on meanwhile), then the rooms marked while it was down are
//!   caught up from Redis.
//!
//! With `STORE_SYNC=1` the committer has already written most of these
//! messages: a batch leaves out those it noted in [`Committed`] (the bus
//! brings each message here all the same, so anything not committed, or
//! committed by another room-service, is still written here).
//!
//! What is not yet in PostgreSQL is the lag: `chat_archive_lag_messages` and
//! `chat_archive_lag_seconds`, and a line in `/healthz` while it is large.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_proto::RoomName;
use chat_proto::v1::RoomEvent;
use chat_runtime::clock::now_ms;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::group_commit::Committed;
use crate::metrics::RoomServiceMetrics;
use crate::store::bounds::MAX_APPEND;
use crate::store::{Store, StoredMessage};

/// Messages per write: one statement of a few ms, well under the store's
/// bound of [`MAX_APPEND`].
pub(crate) const BATCH: usize = 500;
/// How long a message may wait for its batch to fill: the lag at low rates.
const LINGER: Duration = Duration::from_millis(50);
/// Messages waiting for the archiver before deliveries stop offering them
/// (their rooms are then caught up from Redis): a few seconds of a busy
/// room-service, ~4 MB at most at 4 KiB a message... times 4 for big ones.
const CHANNEL: usize = 20_000;
/// Retry delays after PostgreSQL failed: doubled up to the max.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Lag past which `/healthz` says the store is behind.
const BEHIND_AFTER: Duration = Duration::from_secs(5);

/// The delivery side of the archiver, shared with the fanout, and its lag.
#[derive(Debug)]
pub(crate) struct Archive {
    tx: mpsc::Sender<StoredMessage>,
    /// Rooms to copy from Redis, each from just above the seq given (the
    /// store's high-water mark when that is lower) and since when (ms).
    behind: Mutex<HashMap<String, Behind>>,
    /// Messages on the channel or in the batch being written.
    queued: AtomicU64,
    /// Messages known to be missing (dropped at the channel's bound), until
    /// their rooms are caught up.
    dropped: AtomicU64,
    /// Whether the last write or catch-up failed.
    failing: AtomicBool,
    /// Age of the oldest message not yet archived, in ms (0: none).
    lag_ms: AtomicU64,
    /// What the STORE_SYNC committer wrote, to leave out of batches.
    committed: Option<Arc<Committed>>,
    metrics: Arc<RoomServiceMetrics>,
}

#[derive(Debug, Clone, Copy)]
struct Behind {
    /// Copy everything above this seq (`u64::MAX`: above the high water).
    after: u64,
    since_ms: i64,
}

impl Archive {
    /// The archive and the receiving end of its channel, for [`run`];
    /// `committed` when STORE_SYNC writes messages before it does.
    pub(crate) fn new(
        metrics: Arc<RoomServiceMetrics>,
        committed: Option<Arc<Committed>>,
    ) -> (Arc<Self>, mpsc::Receiver<StoredMessage>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let archive = Self {
            tx,
            behind: Mutex::new(HashMap::new()),
            queued: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failing: AtomicBool::new(false),
            lag_ms: AtomicU64::new(0),
            committed,
            metrics,
        };
        (Arc::new(archive), rx)
    }

    fn behind(&self) -> std::sync::MutexGuard<'_, HashMap<String, Behind>> {
        // Every update is a single insert or remove: a poisoned map is fine.
        self.behind.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by the fanout for every event the bus delivers: a stored
    /// message or change is queued for the archiver, never waiting. When the channel
    /// is full, its room is marked to be caught up from Redis instead.
    pub(crate) fn offer(&self, room: &str, event: &RoomEvent) {
        let Some(message) = StoredMessage::of(event) else { return };
        let seq = message.seq;
        match self.tx.try_send(message) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.metrics.archive_dropped.increment(1);
                self.mark(room, seq.saturating_sub(1), event.ts_ms);
            }
        }
    }

    /// The room's bus subscription went live here: copy what Redis holds
    /// above the store's high-water mark (what a room-service that served
    /// it before may not have archived).
    pub(crate) fn serving(&self, room: &str) {
        self.mark(room, u64::MAX, now_ms());
    }

    fn mark(&self, room: &str, after: u64, since_ms: i64) {
        let mut behind = self.behind();
        let entry = behind.entry(room.to_owned()).or_insert(Behind { after, since_ms });
        entry.after = entry.after.min(after);
        entry.since_ms = entry.since_ms.min(since_ms);
    }

    /// A line for `/healthz` while the store is behind (or failing); `None`
    /// while it keeps up.
    pub(crate) fn health_line(&self) -> Option<String> {
        let lag = Duration::from_millis(self.lag_ms.load(Ordering::Relaxed));
        let failing = self.failing.load(Ordering::Relaxed);
        if !failing && lag < BEHIND_AFTER {
            return None;
        }
        let messages = self.queued.load(Ordering::Relaxed) + self.dropped.load(Ordering::Relaxed);
        let why = if failing { "PostgreSQL is failing; " } else { "" };
        Some(format!(
            "store: behind ({why}{messages} messages, oldest {:.1} s, not yet archived; Redis still holds them)\n",
            lag.as_secs_f64()
        ))
    }

    /// Sets the lag gauges from what is pending: the oldest message in hand
    /// (the batch being written, or with a backlog on the channel, the
    /// batch just written: those waiting behind it are younger but not by
    /// much) and the rooms to catch up.
    fn update_lag(&self, oldest_in_batch: Option<i64>) {
        let oldest_behind = self.behind().values().map(|b| b.since_ms).min();
        let oldest = match (oldest_in_batch, oldest_behind) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let lag_ms = oldest.map_or(0, |ts| u64::try_from(now_ms() - ts).unwrap_or(0));
        self.lag_ms.store(lag_ms, Ordering::Relaxed);
        let messages = self.queued.load(Ordering::Relaxed) + self.dropped.load(Ordering::Relaxed);
        self.metrics.archive_lag_messages.set(messages as f64);
        self.metrics.archive_lag_seconds.set(lag_ms as f64 / 1000.0);
    }
}

/// The archiver task: batches from the channel, written in order, retried
/// with backoff; rooms marked behind copied from Redis between batches.
/// Ends when `stopping` is cancelled (what is left is still in Redis, and
/// whoever serves those rooms next copies it).
pub(crate) async fn run<B: Broker>(
    archive: Arc<Archive>,
    mut rx: mpsc::Receiver<StoredMessage>,
    store: Store,
    broker: Arc<B>,
    stopping: CancellationToken,
) {
    let mut batch: Vec<StoredMessage> = Vec::with_capacity(BATCH);
    let mut tick = tokio::time::interval(LINGER);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = BACKOFF_MIN;
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let room_left = BATCH - batch.len();
        tokio::select! {
            () = stopping.cancelled() => return,
            _ = tick.tick() => {}
            n = rx.recv_many(&mut batch, room_left), if room_left > 0 => {
                if n == 0 {
                    return;
                }
                if batch.len() < BATCH {
                    continue;
                }
            }
        }
        if retry_at.is_some_and(|at| tokio::time::Instant::now() < at) {
            archive.update_lag(batch.first().map(|m| m.ts_ms));
            continue;
        }
        // Taken before the write empties the batch: when more wait on the
        // channel (a backlog), the age of what was just written is the lag
        // they have at least, and the gauge must say so rather than 0.
        let oldest_written = batch.first().map(|m| m.ts_ms);
        let ok = write(&archive, &store, &mut batch).await && catch_up(&archive, &store, &*broker).await;
        archive.failing.store(!ok, Ordering::Relaxed);
        if ok {
            backoff = BACKOFF_MIN;
            retry_at = None;
        } else {
            retry_at = Some(tokio::time::Instant::now() + backoff);
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
        let backlog = archive.queued.load(Ordering::Relaxed) > 0;
        archive.update_lag(batch.first().map(|m| m.ts_ms).or(oldest_written.filter(|_| backlog)));
    }
}

/// Writes the batch; on success empties it. Kept on failure, to be written
/// again: order within a room is kept, and appends are idempotent.
async fn write(archive: &Archive, store: &Store, batch: &mut Vec<StoredMessage>) -> bool {
    if let Some(committed) = &archive.committed {
        let offered = batch.len();
        batch.retain(|m| !committed.take(&m.room, m.seq));
        archive.queued.fetch_sub((offered - batch.len()) as u64, Ordering::Relaxed);
    }
    if batch.is_empty() {
        return true;
    }
    match store.append(batch).await {
        Ok(new) => {
            archive.metrics.archived.increment(new);
            archive.queued.fetch_sub(batch.len() as u64, Ordering::Relaxed);
            batch.clear();
            true
        }
        Err(error) => {
            archive.metrics.archive_failures.increment(1);
            tracing::warn!(%error, messages = batch.len(), "could not archive a batch; retrying (Redis still holds it)");
            false
        }
    }
}

/// Copies every room marked behind from the Redis history into the store.
/// A room that fails stays marked.
async fn catch_up<B: Broker>(archive: &Archive, store: &Store, broker: &B) -> bool {
    let rooms: Vec<(String, Behind)> = archive.behind().iter().map(|(r, b)| (r.clone(), *b)).collect();
    for (room, behind) in rooms {
        match catch_up_room(archive, store, broker, &room, behind.after).await {
            Ok(copied) => {
                if copied > 0 {
                    tracing::info!(%room, copied, "archived from Redis what the store did not have");
                }
                let mut marked = archive.behind();
                // Marked again meanwhile (another drop): leave it for next time.
                if marked.get(&room).is_some_and(|b| b.since_ms == behind.since_ms && b.after == behind.after) {
                    marked.remove(&room);
                }
                if marked.is_empty() {
                    archive.dropped.store(0, Ordering::Relaxed);
                }
            }
            Err(error) => {
                archive.metrics.archive_failures.increment(1);
                tracing::warn!(%room, %error, "could not catch the store up from Redis; retrying");
                return false;
            }
        }
    }
    true
}

/// Copies the room's Redis history above `after` (or above the store's
/// high-water mark, when lower), a batch at a time; returns how many
/// messages were new to the store.
async fn catch_up_room<B: Broker>(
    archive: &Archive,
    store: &Store,
    broker: &B,
    room: &str,
    after: u64,
) -> anyhow::Result<u64> {
    let name = RoomName::try_from(room).map_err(|e| anyhow::anyhow!(e.message))?;
    let high_water = store.high_water(room).await?.unwrap_or(0);
    let mut from = after.min(high_water);
    let mut copied = 0;
    loop {
        let events = broker.after(&name, from, MAX_APPEND).await?;
        let Some(last) = events.last() else { return Ok(copied) };
        from = last.seq;
        let messages: Vec<StoredMessage> = events.iter().filter_map(StoredMessage::of).collect();
        let new = store.append(&messages).await?;
        archive.metrics.archived.increment(new);
        copied += new;
        if events.len() < MAX_APPEND {
            return Ok(copied);
        }
    }
}
