//! The in-process broker: rooms kept in this process's memory, for the
//! embedded single-instance mode (no `REDIS_URL`).
//!
//! It keeps the same promises as Redis — one sequence per room, bounded
//! history, presence with expiry, dedupe of retried sends — so the
//! room-service above it cannot tell the difference. Nothing survives a
//! restart and nothing is shared with other processes.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chat_proto::v1::{Member, RoomEvent, RoomSummary};

use super::{
    Broker, BrokerError, BrokerResult, Change, Fanout, Position, Retention, Subscription, event_id, new_epoch,
};

/// How many recent send ids per room are remembered for dedupe.
const DEDUPE_PER_ROOM: usize = 4096;

#[derive(Debug)]
pub struct MemoryBroker {
    rooms: Mutex<HashMap<String, RoomLog>>,
    fanout: Arc<Fanout>,
    retention: Retention,
}

#[derive(Debug)]
struct RoomLog {
    epoch: String,
    last_seq: u64,
    history: VecDeque<RoomEvent>,
    members: HashMap<String, (Member, i64)>,
    sent: HashMap<(String, String), RoomEvent>,
    sent_order: VecDeque<(String, String)>,
    last_stored: Instant,
}

impl RoomLog {
    fn new() -> Self {
        Self {
            epoch: new_epoch(),
            last_seq: 0,
            history: VecDeque::new(),
            members: HashMap::new(),
            sent: HashMap::new(),
            sent_order: VecDeque::new(),
            last_stored: Instant::now(),
        }
    }

    fn position(&self) -> Position {
        Position { epoch: self.epoch.clone(), last_seq: self.last_seq }
    }
}

impl MemoryBroker {
    /// Keeps what `retention` says of each room and hands events to local
    /// readers through `fanout`.
    pub fn new(retention: Retention, fanout: Arc<Fanout>) -> Self {
        Self { rooms: Mutex::new(HashMap::new()), fanout, retention }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, RoomLog>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies the change and stores the event under the lock, so the
    /// sequence order is the delivery order.
    fn store(&self, room: &str, change: Change, mut event: RoomEvent) -> BrokerResult<Option<RoomEvent>> {
        let mut rooms = self.lock();
        let log = rooms.entry(room.to_owned()).or_insert_with(RoomLog::new);
        let mut dedupe_key = None;
        match change {
            Change::Message { member_id, client_id } => {
                if !member_id.is_empty() && !log.members.contains_key(&member_id) {
                    return Err(BrokerError::NotMember(member_id));
                }
                if !client_id.is_empty() {
                    let key = (member_id, client_id);
                    if let Some(first) = log.sent.get(&key) {
                        return Ok(Some(first.clone()));
                    }
                    dedupe_key = Some(key);
                }
            }
            Change::Join { member, expires_at_ms } => {
                log.members.insert(member.member_id.clone(), (member, expires_at_ms));
            }
            Change::Leave { member_id, only_if_expired_at } => {
                let expired = match (log.members.get(&member_id), only_if_expired_at) {
                    (None, _) => return Ok(None),
                    (Some(_), None) => true,
                    (Some((_, expires)), Some(at)) => *expires <= at,
                };
                if !expired {
                    return Ok(None);
                }
                log.members.remove(&member_id);
            }
        }
        log.last_seq += 1;
        log.last_stored = Instant::now();
        event.seq = log.last_seq;
        event.epoch = log.epoch.clone();
        event.id = event_id(&log.epoch, log.last_seq);
        log.history.push_back(event.clone());
        while log.history.len() > self.retention.history_len {
            log.history.pop_front();
        }
        if let Some(key) = dedupe_key {
            log.sent.insert(key.clone(), event.clone());
            log.sent_order.push_back(key);
            while log.sent_order.len() > DEDUPE_PER_ROOM {
                if let Some(old) = log.sent_order.pop_front() {
                    log.sent.remove(&old);
                }
            }
        }
        // Delivered before the lock is released: readers see seq order.
        self.fanout.deliver(room, Arc::new(event.clone()));
        Ok(Some(event))
    }
}

impl Broker for MemoryBroker {
    fn kind(&self) -> &'static str {
        "in-process"
    }

    async fn append(&self, room: &str, change: Change, event: RoomEvent) -> BrokerResult<Option<RoomEvent>> {
        self.store(room, change, event)
    }

    async fn publish_ephemeral(&self, room: &str, event: RoomEvent) -> BrokerResult<()> {
        self.fanout.deliver(room, Arc::new(event));
        Ok(())
    }

    async fn subscribe(&self, room: &str) -> BrokerResult<Subscription> {
        let (subscription, _) = self.fanout.tap(room);
        self.fanout.mark_live(room);
        Ok(subscription)
    }

    async fn recent(&self, room: &str, limit: usize) -> BrokerResult<(Vec<RoomEvent>, Position)> {
        let rooms = self.lock();
        Ok(match rooms.get(room) {
            Some(log) => {
                let skip = log.history.len().saturating_sub(limit);
                (log.history.iter().skip(skip).cloned().collect(), log.position())
            }
            None => (Vec::new(), Position::default()),
        })
    }

    async fn after(&self, room: &str, after_seq: u64, limit: usize) -> BrokerResult<Vec<RoomEvent>> {
        let rooms = self.lock();
        Ok(rooms
            .get(room)
            .map(|log| log.history.iter().filter(|e| e.seq > after_seq).take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn position(&self, room: &str) -> BrokerResult<Position> {
        Ok(self.lock().get(room).map(RoomLog::position).unwrap_or_default())
    }

    async fn member(&self, room: &str, member_id: &str) -> BrokerResult<Option<Member>> {
        Ok(self.lock().get(room).and_then(|log| log.members.get(member_id)).map(|(m, _)| m.clone()))
    }

    async fn members(&self, room: &str, now_ms: i64) -> BrokerResult<Vec<Member>> {
        let rooms = self.lock();
        let mut members: Vec<Member> = rooms
            .get(room)
            .map(|log| log.members.values().filter(|(_, expires)| *expires > now_ms).map(|(m, _)| m.clone()).collect())
            .unwrap_or_default();
        members.sort_by(|a, b| (a.joined_at_ms, &a.member_id).cmp(&(b.joined_at_ms, &b.member_id)));
        Ok(members)
    }

    async fn expired(&self, room: &str, now_ms: i64) -> BrokerResult<Vec<Member>> {
        Ok(self
            .lock()
            .get(room)
            .map(|log| log.members.values().filter(|(_, expires)| *expires <= now_ms).map(|(m, _)| m.clone()).collect())
            .unwrap_or_default())
    }

    async fn heartbeat(&self, room: &str, member_ids: &[String], expires_at_ms: i64) -> BrokerResult<Vec<String>> {
        let mut rooms = self.lock();
        let Some(log) = rooms.get_mut(room) else {
            return Ok(member_ids.to_vec());
        };
        let mut unknown = Vec::new();
        for id in member_ids {
            match log.members.get_mut(id) {
                Some((_, expires)) => *expires = expires_at_ms,
                None => unknown.push(id.clone()),
            }
        }
        Ok(unknown)
    }

    async fn rooms(&self, now_ms: i64, limit: usize) -> BrokerResult<Vec<RoomSummary>> {
        let rooms = self.lock();
        let mut summaries: Vec<RoomSummary> = rooms
            .iter()
            .map(|(name, log)| RoomSummary {
                name: name.clone(),
                member_count: log.members.values().filter(|(_, e)| *e > now_ms).count() as u32,
                last_seq: log.last_seq,
            })
            .collect();
        summaries.sort_by(|a, b| a.name.cmp(&b.name));
        summaries.truncate(limit);
        Ok(summaries)
    }

    async fn drop_idle_subscriptions(&self) {
        self.fanout.remove_idle();
        // Forget rooms with no stored event for the room TTL, as Redis would.
        let ttl = self.retention.room_ttl;
        self.lock().retain(|_, log| log.last_stored.elapsed() < ttl);
    }

    fn subscribed_rooms(&self) -> Vec<String> {
        self.fanout.live_rooms()
    }

    async fn ping(&self) -> BrokerResult<()> {
        Ok(())
    }
}
