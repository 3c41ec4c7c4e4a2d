//! `STORE_SYNC=1`: a send is acknowledged only once PostgreSQL committed
//! its messages, with group commit so that this costs one transaction per
//! group of concurrent sends rather than one per send.
//!
//! How a send flows: before its Redis step the handler takes a place in the
//! committer's bounded queue ([`Committer::reserve`]; none free: the call is
//! refused with RESOURCE_EXHAUSTED before anything is stored, and the
//! gateway asks again). Once Redis stored the messages (and published them,
//! in the same step), the handler puts them in its place ([`Place::commit`])
//! and waits. One task ([`run`]) takes every send waiting at that moment —
//! the messages of all concurrent calls, up to [`MAX_APPEND`] — and writes
//! them with one idempotent multi-row [`Store::append`] (one statement, one
//! transaction). While that commits, the next group gathers and is written
//! on another connection (at most [`IN_FLIGHT`] groups at once), so the more
//! senders wait, the bigger each group: throughput grows with concurrency.
//! A group that commits wakes each of its calls to answer; one that fails
//! (PostgreSQL down) wakes them with the error, and the calls fail: their
//! messages are in Redis but not acknowledged. The archiver still copies
//! them when the store is back, and a retry with the same `client_id` is a
//! repeat in Redis that is committed (idempotently) and acknowledged then.
//!
//! What the committer wrote it notes in [`Committed`], which the archiver
//! (fed the same messages by the bus) checks so as not to write them twice.
//!
//! Changes of messages (edits, deletes, reactions) are stored events too:
//! a handler that commits them hands them over the same way, and the same
//! append applies each to its message in the same transaction.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::metrics::RoomServiceMetrics;
use crate::store::bounds::MAX_APPEND;
use crate::store::{Store, StoredMessage};

/// Sends (Send or SendBatch calls) waiting for a commit, at most. Each holds
/// its own messages (at most `SEND_BATCH`), which its call holds anyway; the
/// bound keeps a PostgreSQL that commits slowly from gathering calls without
/// end: past it, calls are refused as busy before Redis stores anything.
pub(crate) const QUEUE: usize = 4096;
/// Groups being written at once: one committing while the next is written.
const IN_FLIGHT: usize = 2;
/// Committed messages remembered for the archiver to skip: seconds of a
/// busy room-service, far more than the archiver's batches lag behind. One
/// forgotten is merely written twice (appends are idempotent).
const REMEMBERED: usize = 65_536;
/// How long a sender refused for a full queue is asked to wait.
const RETRY_AFTER_MS: u64 = 100;

/// One call's messages and how to wake it.
#[derive(Debug)]
pub(crate) struct Waiting {
    messages: Vec<StoredMessage>,
    /// Ok, or why the messages are not acknowledged.
    done: oneshot::Sender<Result<(), String>>,
}

/// The handlers' side of the committer. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Committer {
    queue: mpsc::Sender<Waiting>,
}

/// A place in the committer's queue, taken before the Redis step.
#[derive(Debug)]
pub(crate) struct Place<'a> {
    permit: mpsc::Permit<'a, Waiting>,
}

impl Committer {
    /// The committer and its task's end of the queue, for [`run`].
    pub(crate) fn new() -> (Self, mpsc::Receiver<Waiting>) {
        let (queue, rx) = mpsc::channel(QUEUE);
        (Self { queue }, rx)
    }

    /// Takes a place for a send's messages, or refuses the send as busy
    /// (nothing is stored yet, so a retry stores it once).
    pub(crate) fn reserve(&self) -> Result<Place<'_>, Status> {
        match self.queue.try_reserve() {
            Ok(permit) => Ok(Place { permit }),
            Err(mpsc::error::TrySendError::Full(())) => {
                let mut status = Status::resource_exhausted(format!(
                    "STORE_SYNC: {QUEUE} sends are already waiting for PostgreSQL to commit; try again in {RETRY_AFTER_MS} ms"
                ));
                status
                    .metadata_mut()
                    .insert(chat_proto::RETRY_AFTER_HEADER, RETRY_AFTER_MS.to_string().parse().expect("digits"));
                Err(status)
            }
            Err(mpsc::error::TrySendError::Closed(())) => Err(shutting_down()),
        }
    }
}

fn shutting_down() -> Status {
    Status::unavailable("the room-service is shutting down; send again (with the same client_id) elsewhere")
}

impl Place<'_> {
    /// Hands the stored messages to the committer and waits until they are
    /// committed: Ok, or the status that says they are not acknowledged.
    pub(crate) async fn commit(self, messages: Vec<StoredMessage>) -> Result<(), Status> {
        if messages.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        self.permit.send(Waiting { messages, done });
        match committed.await {
            Ok(Ok(())) => Ok(()),
            // INTERNAL, not UNAVAILABLE: that would tell the gateway this
            // room-service is gone, but every room-service shares the store.
            Ok(Err(error)) => Err(Status::internal(format!(
                "STORE_SYNC: {error}; the message is in Redis but not acknowledged: \
                 send it again with the same client_id once the store is back"
            ))),
            Err(_) => Err(shutting_down()),
        }
    }
}

/// The committer task: groups of waiting sends written one statement each,
/// [`IN_FLIGHT`] at a time. Ends when every [`Committer`] is gone and the
/// last group is written.
pub(crate) async fn run(
    mut queue: mpsc::Receiver<Waiting>,
    store: Store,
    committed: Arc<Committed>,
    metrics: Arc<RoomServiceMetrics>,
) {
    let mut writing = FuturesUnordered::new();
    // A send that did not fit in the last group: the first of the next.
    let mut carry: Option<Waiting> = None;
    loop {
        if writing.len() >= IN_FLIGHT {
            writing.next().await;
            continue;
        }
        let first = match carry.take() {
            Some(waiting) => waiting,
            None => tokio::select! {
                waiting = queue.recv() => match waiting {
                    Some(waiting) => waiting,
                    None => break,
                },
                Some(()) = writing.next(), if !writing.is_empty() => continue,
            },
        };
        let group = gather(first, &mut queue, &mut carry);
        writing.push(write(group, &store, &committed, &metrics));
    }
    while writing.next().await.is_some() {}
}

/// `first` and every send waiting behind it, up to [`MAX_APPEND`] messages;
/// the one that would pass it is left in `carry`.
fn gather(first: Waiting, queue: &mut mpsc::Receiver<Waiting>, carry: &mut Option<Waiting>) -> Vec<Waiting> {
    let mut messages = first.messages.len();
    let mut group = vec![first];
    while let Ok(next) = queue.try_recv() {
        if messages + next.messages.len() > MAX_APPEND {
            *carry = Some(next);
            break;
        }
        messages += next.messages.len();
        group.push(next);
    }
    group
}

/// Writes one group in one statement and wakes each of its calls: Ok when
/// the store holds every one of its messages as given.
async fn write(group: Vec<Waiting>, store: &Store, committed: &Committed, metrics: &RoomServiceMetrics) {
    let mut messages = Vec::with_capacity(group.iter().map(|w| w.messages.len()).sum());
    // Each call's messages are `messages[start..end]`.
    let mut wake = Vec::with_capacity(group.len());
    for waiting in group {
        let start = messages.len();
        messages.extend(waiting.messages);
        wake.push((waiting.done, start..messages.len()));
    }
    match store.append_confirmed(&messages).await {
        Ok((new, differ)) => {
            metrics.archived.increment(new);
            metrics.sync_group.record(messages.len() as f64);
            let differ: HashSet<usize> = differ.into_iter().collect();
            for i in &differ {
                let m = &messages[*i];
                tracing::warn!(
                    room = m.room,
                    seq = m.seq,
                    "STORE_SYNC: the store holds another message at this seq; not acknowledged"
                );
            }
            let held: Vec<StoredMessage> =
                messages.iter().enumerate().filter(|(i, _)| !differ.contains(i)).map(|(_, m)| m.clone()).collect();
            committed.record(&held);
            for (done, range) in wake {
                let result = match range.clone().find(|i| differ.contains(i)) {
                    None => Ok(()),
                    Some(i) => Err(format!(
                        "the store already holds another message at seq {} of room {:?} (the room's numbering in Redis started again below the store's)",
                        messages[i].seq, messages[i].room
                    )),
                };
                // A call that gave up meanwhile (its deadline passed) is gone.
                let _ = done.send(result);
            }
        }
        Err(error) => {
            metrics.sync_failures.increment(1);
            tracing::warn!(%error, messages = messages.len(), sends = wake.len(), "STORE_SYNC: could not commit; those sends fail");
            let error = format!("the store is not reachable ({error})");
            for (done, _) in wake {
                let _ = done.send(Err(error.clone()));
            }
        }
    }
}

/// The messages the committer wrote lately, by room and seq, for the
/// archiver to skip; the oldest are forgotten past [`REMEMBERED`].
#[derive(Debug, Default)]
pub(crate) struct Committed {
    ledger: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    by_room: HashMap<String, HashSet<u64>>,
    /// In the order recorded, to forget the oldest first.
    order: VecDeque<(String, u64)>,
}

impl Committed {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // Each update leaves the ledger whole: a poisoned one is fine.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn record(&self, messages: &[StoredMessage]) {
        let mut ledger = self.ledger();
        for m in messages {
            if ledger.by_room.entry(m.room.clone()).or_default().insert(m.seq) {
                ledger.order.push_back((m.room.clone(), m.seq));
            }
        }
        while ledger.order.len() > REMEMBERED {
            let Some((room, seq)) = ledger.order.pop_front() else { break };
            ledger.forget(&room, seq);
        }
    }

    /// Whether the committer wrote this message (it is then forgotten: the
    /// archiver is offered each message once).
    pub(crate) fn take(&self, room: &str, seq: u64) -> bool {
        self.ledger().forget(room, seq)
    }
}

impl Ledger {
    fn forget(&mut self, room: &str, seq: u64) -> bool {
        let Some(seqs) = self.by_room.get_mut(room) else { return false };
        let known = seqs.remove(&seq);
        if seqs.is_empty() {
            self.by_room.remove(room);
        }
        known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room: &str, seq: u64) -> StoredMessage {
        StoredMessage {
            room: room.into(),
            seq,
            epoch: "e".into(),
            ts_ms: 0,
            member_id: String::new(),
            username: "system".into(),
            text: "hi".into(),
            client_id: format!("c{seq}"),
            attachments: Vec::new(),
            ..StoredMessage::default()
        }
    }

    #[test]
    fn the_archiver_skips_what_was_committed_once() {
        let committed = Committed::default();
        committed.record(&[message("a", 1), message("a", 2), message("b", 1)]);
        assert!(committed.take("a", 2));
        assert!(!committed.take("a", 2), "taken once");
        assert!(!committed.take("a", 3), "never committed: the archiver writes it");
        assert!(committed.take("b", 1) && committed.take("a", 1));
        assert!(committed.ledger().by_room.is_empty());
    }

    #[test]
    fn the_ledger_forgets_the_oldest_past_its_bound() {
        let committed = Committed::default();
        let many: Vec<StoredMessage> = (1..=REMEMBERED as u64 + 10).map(|seq| message("a", seq)).collect();
        committed.record(&many);
        assert!(!committed.take("a", 10), "forgotten: written twice at worst");
        assert!(committed.take("a", 11) && committed.take("a", REMEMBERED as u64 + 10));
        assert_eq!(committed.ledger().order.len(), REMEMBERED);
    }

    #[tokio::test]
    async fn a_group_takes_every_waiting_send_up_to_one_append() {
        let (committer, mut queue) = Committer::new();
        let mut receivers = Vec::new();
        for n in 0..20 {
            let (done, rx) = oneshot::channel();
            let messages = (0..64).map(|i| message("a", n * 64 + i + 1)).collect();
            committer.reserve().expect("a place").permit.send(Waiting { messages, done });
            receivers.push(rx);
        }
        let mut carry = None;
        let first = queue.recv().await.expect("one waits");
        let group = gather(first, &mut queue, &mut carry);
        assert_eq!(group.len(), MAX_APPEND / 64, "as many sends as fit in one append");
        assert!(carry.is_some(), "the next send starts the next group");
        let next = gather(carry.take().expect("carried"), &mut queue, &mut carry);
        assert_eq!(group.len() + next.len(), 20, "every send in one of the two groups");
    }

    #[test]
    fn a_full_queue_refuses_as_busy_before_anything_is_stored() {
        let (committer, _queue) = Committer::new();
        let places: Vec<Place<'_>> = (0..QUEUE).map(|_| committer.reserve().expect("a place")).collect();
        let refused = committer.reserve().expect_err("full");
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
        assert!(refused.metadata().get(chat_proto::RETRY_AFTER_HEADER).is_some(), "says when to come back");
        drop(places);
        assert!(committer.reserve().is_ok(), "a place frees when a send gives up its own");
    }
}
