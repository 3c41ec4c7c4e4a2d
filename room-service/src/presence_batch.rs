//! The presence batcher: joins and leaves applied in batches, one batch per
//! room at a time. (Not the gateway's `presence.rs`, which batches presence
//! *frames* to browsers; this one batches the changes themselves into Redis
//! steps.)
//!
//! Every join and leave of a room goes through the room's batcher: a task
//! with a bounded queue. While one batch is being applied, the changes that
//! arrive wait; the next batch takes all of them (up to [`BATCH_MAX`]) in one
//! broker step, which publishes one presence event and reads the room back
//! once for every joiner in it. A lone join is applied at once; a thousand
//! people joining together cost a handful of Redis calls and presence events
//! instead of a thousand of each. A batcher whose room has been quiet for
//! [`IDLE`] ends; the next change starts a new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_proto::RoomName;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tonic::Status;

use crate::broker::{Broker, PresenceChange, PresenceOutcome, Snapshot, SnapshotSize};
use crate::metrics::RoomServiceMetrics;
use crate::people::{Directory, Inbox};
use crate::seeding::Seeder;

/// Changes waiting in one room's queue at most; more are refused as busy.
pub(crate) const QUEUE_PER_ROOM: usize = 8192;
/// Changes applied in one broker step at most.
pub(crate) const BATCH_MAX: usize = 500;
/// Members read back with each batch: what `joined` shows.
pub(crate) const MEMBERS_SHOWN: usize = 100;
/// How long a room's batcher waits for a change before it ends.
const IDLE: Duration = Duration::from_secs(10);
/// What a refused caller is told to wait before trying again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_millis(250);

/// The outcome of one change: whether it changed anything, and the room as
/// it stood right after the batch it was applied in.
pub(crate) type Applied = Result<(bool, Arc<Snapshot>), Status>;

struct Pending {
    change: PresenceChange,
    /// History events the caller wants in the snapshot.
    history: usize,
    reply: oneshot::Sender<Applied>,
}

/// Every room's batcher in this process.
pub(crate) struct PresenceBatcher<B> {
    broker: Arc<B>,
    rooms: Mutex<HashMap<RoomName, mpsc::Sender<Pending>>>,
    metrics: Arc<RoomServiceMetrics>,
    /// With a store: seeds a room Redis lost before its batch is applied.
    seeder: Option<Arc<Seeder<B>>>,
    /// Records each batch's joiners in their users' rooms (see `people::joins`).
    inbox: Arc<Inbox<B>>,
}

impl<B> std::fmt::Debug for PresenceBatcher<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceBatcher").finish_non_exhaustive()
    }
}

impl<B: Broker + Directory> PresenceBatcher<B> {
    pub(crate) fn new(
        broker: Arc<B>,
        metrics: Arc<RoomServiceMetrics>,
        seeder: Option<Arc<Seeder<B>>>,
        inbox: Arc<Inbox<B>>,
    ) -> Arc<Self> {
        Arc::new(Self { broker, rooms: Mutex::new(HashMap::new()), metrics, seeder, inbox })
    }

    /// Queues one change for the room and waits for the batch that applies it.
    pub(crate) async fn apply(self: &Arc<Self>, room: &RoomName, change: PresenceChange, history: usize) -> Applied {
        let (reply, outcome) = oneshot::channel();
        self.enqueue(room, Pending { change, history, reply })?;
        outcome.await.unwrap_or_else(|_| Err(Status::internal("the room's presence batcher stopped")))
    }

    fn enqueue(self: &Arc<Self>, room: &RoomName, pending: Pending) -> Result<(), Status> {
        // Sent under the lock, so a batcher that ends (also under the lock,
        // and only with an empty queue) never leaves a change behind.
        let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        let queue = rooms.entry(room.clone()).or_insert_with(|| self.start(room));
        let pending = match queue.try_send(pending) {
            Ok(()) => return Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.shed("presence_queue_full");
                return Err(busy(room));
            }
            Err(mpsc::error::TrySendError::Closed(pending)) => pending,
        };
        // Its batcher died: start another.
        let queue = self.start(room);
        let _ = queue.try_send(pending);
        rooms.insert(room.clone(), queue);
        Ok(())
    }

    fn start(self: &Arc<Self>, room: &RoomName) -> mpsc::Sender<Pending> {
        let (queue, changes) = mpsc::channel(QUEUE_PER_ROOM);
        tokio::spawn(Arc::clone(self).run(room.clone(), queue.clone(), changes));
        queue
    }

    async fn run(self: Arc<Self>, room: RoomName, own: mpsc::Sender<Pending>, mut changes: mpsc::Receiver<Pending>) {
        // The room's joiners' record under way, if any (see `people::joins`).
        let mut recording: Option<JoinHandle<()>> = None;
        loop {
            let Ok(Some(first)) = tokio::time::timeout(IDLE, changes.recv()).await else {
                let mut rooms = self.rooms.lock().unwrap_or_else(PoisonError::into_inner);
                if changes.is_empty() {
                    if rooms.get(&room).is_some_and(|queue| queue.same_channel(&own)) {
                        rooms.remove(&room);
                    }
                    return;
                }
                continue;
            };
            let mut batch = vec![first];
            while batch.len() < BATCH_MAX {
                match changes.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
            self.apply_batch(&room, batch, &mut recording).await;
        }
    }

    async fn apply_batch(&self, room: &RoomName, batch: Vec<Pending>, recording: &mut Option<JoinHandle<()>>) {
        let size = SnapshotSize { history: batch.iter().map(|p| p.history).max().unwrap_or(0), members: MEMBERS_SHOWN };
        let (changes, replies): (Vec<PresenceChange>, Vec<(usize, oneshot::Sender<Applied>)>) =
            batch.into_iter().map(|p| (p.change, (p.history, p.reply))).unzip();
        self.metrics.presence_batch.record(changes.len() as f64);
        match self.apply_seeded(room, &changes, size).await {
            Ok(outcome) => {
                let full = Arc::new(outcome.snapshot);
                tracing::debug!(%room, changes = changes.len(), members = full.member_count, "presence batch applied");
                // Registered before the replies, so a joiner's `read` waits for it.
                // A banned user's join was refused: not theirs to record.
                let joiners: Vec<_> = changes
                    .iter()
                    .zip(outcome.banned.iter().chain(std::iter::repeat(&false)))
                    .filter_map(|(change, banned)| match change {
                        PresenceChange::Join { member, restore: false, .. }
                            if !member.user_id.is_empty() && !banned =>
                        {
                            Some(member)
                        }
                        _ => None,
                    })
                    .collect();
                let record = self.inbox.joined(room, &joiners, &full);
                let banned = outcome.banned.into_iter().chain(std::iter::repeat(false));
                for (((history, reply), applied), banned) in replies.into_iter().zip(outcome.applied).zip(banned) {
                    if banned {
                        let _ = reply.send(Err(crate::service::banned(room)));
                        continue;
                    }
                    let snapshot = if history >= full.history.len() {
                        Arc::clone(&full)
                    } else {
                        let skip = full.history.len() - history;
                        Arc::new(Snapshot { history: full.history[skip..].to_vec(), ..Snapshot::clone(&full) })
                    };
                    let _ = reply.send(Ok((applied, snapshot)));
                }
                if let Some(record) = record {
                    // One record of the room at a time: a storm's records
                    // wait for each other, not its joins.
                    if let Some(previous) = recording.take() {
                        let _ = previous.await;
                    }
                    *recording = Some(record.start());
                }
            }
            Err(status) => {
                tracing::warn!(%room, error = status.message(), changes = changes.len(), "presence batch failed");
                for (_, reply) in replies {
                    let _ = reply.send(Err(status.clone()));
                }
            }
        }
    }
}

impl<B: Broker + Directory> PresenceBatcher<B> {
    /// Applies the batch; a room Redis lost is seeded first (with a store).
    async fn apply_seeded(
        &self,
        room: &RoomName,
        changes: &[PresenceChange],
        size: SnapshotSize,
    ) -> Result<PresenceOutcome, Status> {
        let applied = match &self.seeder {
            Some(seeder) => seeder.retry(room, || self.broker.apply_presence(room, changes, size)).await?,
            None => self.broker.apply_presence(room, changes, size).await,
        };
        applied.map_err(|error| {
            self.metrics.broker_errors.increment(1);
            Status::from(error)
        })
    }
}

/// The refusal for a room whose queue is full: busy, not gone, so the
/// gateway waits and tries again rather than moving the room elsewhere.
pub(crate) fn busy(room: &str) -> Status {
    let mut status = Status::resource_exhausted(format!(
        "room {room:?} has {QUEUE_PER_ROOM} presence changes waiting; try again in {} ms",
        RETRY_AFTER.as_millis()
    ));
    status
        .metadata_mut()
        .insert(chat_proto::RETRY_AFTER_HEADER, RETRY_AFTER.as_millis().to_string().parse().expect("digits"));
    status
}
