//! One tap per room in this process, shared by every reader of the room.
//!
//! The bus (Redis pub/sub, or the in-process broker) hands each event to
//! [`Fanout::deliver`], which puts one `Arc` of it on the room's bounded
//! broadcast channel; every gateway stream for that room reads from there.
//! A reader that falls more than the channel's capacity behind sees a lag
//! and refills the gap from history (the events are sequenced), so the bound
//! never loses a stored event. Taps whose last reader is gone are removed by
//! [`Fanout::remove_idle`], which tells the broker which bus subscriptions to
//! end.
//!
//! Each tap also remembers the newest stored event it passed on
//! ([`Fanout::newest`]): a message Redis acknowledged but the archiver had
//! not yet copied when Redis lost the room is gone, but a room-service that
//! saw it seeds the room above it, so its seq is not given out again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use chat_proto::v1::RoomEvent;
use tokio::sync::broadcast;

use crate::archive::Archive;
use crate::metrics::RoomServiceMetrics;

/// The local readers of every room this process is subscribed to.
#[derive(Debug)]
pub struct Fanout {
    rooms: Mutex<HashMap<String, Tap>>,
    capacity: usize,
    metrics: Arc<RoomServiceMetrics>,
    /// Where stored messages are copied to PostgreSQL, when a store is set.
    archive: OnceLock<Arc<Archive>>,
}

#[derive(Debug)]
struct Tap {
    tx: broadcast::Sender<Arc<RoomEvent>>,
    readers: usize,
    /// Whether the bus subscription behind this tap is in place.
    live: bool,
    /// The epoch and seq of the newest stored event delivered.
    newest: Option<(String, u64)>,
}

impl Tap {
    fn saw(&mut self, event: &RoomEvent) {
        if event.seq == 0 {
            return;
        }
        match &mut self.newest {
            Some((epoch, seq)) if *epoch == event.epoch => *seq = (*seq).max(event.seq),
            newest => *newest = Some((event.epoch.clone(), event.seq)),
        }
    }
}

/// A reader of one room's events; dropping it lets the tap go idle.
#[derive(Debug)]
pub struct Subscription {
    pub events: broadcast::Receiver<Arc<RoomEvent>>,
    _reader: Reader,
}

#[derive(Debug)]
struct Reader {
    fanout: Arc<Fanout>,
    room: String,
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut rooms = self.fanout.lock();
        if let Some(tap) = rooms.get_mut(&self.room) {
            tap.readers = tap.readers.saturating_sub(1);
        }
    }
}

impl Fanout {
    /// `capacity` bounds the events buffered per room for its slowest reader.
    pub fn new(capacity: usize, metrics: Arc<RoomServiceMetrics>) -> Arc<Self> {
        Arc::new(Self {
            rooms: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            metrics,
            archive: OnceLock::new(),
        })
    }

    /// Copies every stored message delivered from now on to the archiver,
    /// and tells it which rooms start being served. Set once, at start.
    pub(crate) fn archive_to(&self, archive: Arc<Archive>) {
        let _ = self.archive.set(archive);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tap>> {
        // A panic while holding this lock leaves the map consistent (every
        // update is a single field write), so a poisoned lock is still usable.
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands an event to the room's readers; returns how many there were.
    pub(crate) fn deliver(&self, room: &str, event: Arc<RoomEvent>) -> usize {
        self.metrics.events_received.increment(1);
        self.metrics.observe_latency(event.ts_ms, chat_runtime::clock::now_ms());
        if let Some(archive) = self.archive.get() {
            archive.offer(room, &event);
        }
        match self.lock().get_mut(room) {
            Some(tap) => {
                tap.saw(&event);
                tap.tx.send(event).unwrap_or(0)
            }
            None => 0,
        }
    }

    /// The epoch and seq of the newest stored event this process delivered
    /// for the room, while it has a tap for it.
    pub(crate) fn newest(&self, room: &str) -> Option<(String, u64)> {
        self.lock().get(room).and_then(|tap| tap.newest.clone())
    }

    /// Adds a reader to the room. The flag is true when the tap has no bus
    /// subscription yet: the caller must subscribe and then [`Self::mark_live`].
    pub(crate) fn tap(self: &Arc<Self>, room: &str) -> (Subscription, bool) {
        let mut rooms = self.lock();
        let tap = rooms.entry(room.to_owned()).or_insert_with(|| Tap {
            tx: broadcast::channel(self.capacity).0,
            readers: 0,
            live: false,
            newest: None,
        });
        tap.readers += 1;
        let subscription = Subscription {
            events: tap.tx.subscribe(),
            _reader: Reader { fanout: Arc::clone(self), room: room.to_owned() },
        };
        (subscription, !tap.live)
    }

    pub(crate) fn mark_live(&self, room: &str) {
        if let Some(tap) = self.lock().get_mut(room) {
            tap.live = true;
        }
        // Live before the catch-up reads Redis: anything stored after that
        // read arrives on the bus, so nothing falls between the two.
        if let Some(archive) = self.archive.get() {
            archive.serving(room);
        }
    }

    /// Removes taps without readers; returns the rooms whose bus subscription
    /// should end.
    pub(crate) fn remove_idle(&self) -> Vec<String> {
        let mut idle = Vec::new();
        self.lock().retain(|room, tap| {
            let keep = tap.readers > 0;
            if !keep && tap.live {
                idle.push(room.clone());
            }
            keep
        });
        idle
    }

    /// Whether the room has a live tap (a bus subscription readers rely on).
    pub(crate) fn is_live(&self, room: &str) -> bool {
        self.lock().get(room).is_some_and(|tap| tap.live)
    }

    /// Rooms with a live tap.
    pub(crate) fn live_rooms(&self) -> Vec<String> {
        self.lock().iter().filter(|(_, tap)| tap.live).map(|(room, _)| room.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> Arc<RoomEvent> {
        Arc::new(RoomEvent { seq, ..Default::default() })
    }

    #[tokio::test]
    async fn one_tap_per_room_shared_by_readers() {
        let fanout = Fanout::new(8, Arc::new(RoomServiceMetrics::new("test")));
        let (mut a, first) = fanout.tap("general");
        assert!(first, "the first reader must subscribe on the bus");
        fanout.mark_live("general");
        let (mut b, first) = fanout.tap("general");
        assert!(!first, "a second reader shares the live tap");

        assert_eq!(fanout.deliver("general", event(1)), 2);
        assert_eq!(fanout.deliver("dev", event(1)), 0, "no tap, nobody gets it");
        assert_eq!(a.events.recv().await.expect("a gets it").seq, 1);
        assert_eq!(b.events.recv().await.expect("b gets it").seq, 1);
    }

    #[tokio::test]
    async fn the_newest_stored_event_of_a_room_is_remembered() {
        let fanout = Fanout::new(8, Arc::new(RoomServiceMetrics::new("test")));
        let (_reader, _) = fanout.tap("general");
        assert_eq!(fanout.newest("general"), None);
        let stored = |epoch: &str, seq| Arc::new(RoomEvent { seq, epoch: epoch.into(), ..Default::default() });
        fanout.deliver("general", stored("e1", 7));
        fanout.deliver("general", stored("e1", 5));
        fanout.deliver("general", event(0));
        assert_eq!(fanout.newest("general"), Some(("e1".to_owned(), 7)), "the highest, not the last; typing is no seq");
        fanout.deliver("general", stored("e2", 1));
        assert_eq!(fanout.newest("general"), Some(("e2".to_owned(), 1)), "a new epoch starts over");
        assert_eq!(fanout.newest("dev"), None);
    }

    #[tokio::test]
    async fn idle_taps_are_removed_once_the_last_reader_goes() {
        let fanout = Fanout::new(8, Arc::new(RoomServiceMetrics::new("test")));
        let (a, _) = fanout.tap("general");
        fanout.mark_live("general");
        let (b, _) = fanout.tap("general");
        drop(a);
        assert!(fanout.remove_idle().is_empty(), "b still reads");
        drop(b);
        assert_eq!(fanout.remove_idle(), vec!["general".to_owned()]);
        assert!(fanout.live_rooms().is_empty());
        let (_c, first) = fanout.tap("general");
        assert!(first, "after removal the next reader subscribes again");
    }
}
