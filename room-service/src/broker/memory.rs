//! The in-process broker: rooms kept in this process's memory, for the
//! embedded single-instance mode (no `REDIS_URL`).
//!
//! It keeps the same promises as Redis — one sequence per room, bounded
//! history, presence with expiry applied in batches, members paged in name
//! order, dedupe of retried sends — so the room-service above it cannot tell
//! the difference. Nothing survives a restart and nothing is shared with
//! other processes.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{Member, MemberLeft, PresenceDiff, RoomEvent, RoomSummary, SessionMoved};
use chat_proto::{LeaveReason, MemberId, RoomName};

use super::memory_attachments::Attachments;
use super::memory_changes::{Actor, Changes};
use super::memory_moderation::Moderations;
use super::memory_people::People;
use super::message_state::Applied;
use super::{
    Broker, BrokerError, BrokerResult, ChangeOrder, ChangeOutcome, Fanout, MembersPage, Outgoing, Position,
    PresenceChange, PresenceOutcome, Retention, Snapshot, SnapshotSize, Stored, Subscription, event_id, new_epoch,
    record,
};

/// How many recent send ids per room are remembered for dedupe.
const DEDUPE_PER_ROOM: usize = 4096;

#[derive(Debug)]
pub struct MemoryBroker {
    rooms: Mutex<HashMap<RoomName, RoomLog>>,
    fanout: Arc<Fanout>,
    retention: Retention,
    /// Whether rooms it has none of (new, forgotten by the room TTL, or
    /// lost with a restart) are left for the caller to seed.
    seeded_by_caller: bool,
    /// Profiles, direct conversations, users' rooms (`memory_people`).
    pub(super) people: People,
    /// Attachments' records (`memory_attachments`).
    pub(super) attachments: Attachments,
    /// Roles, mutes, bans and audit logs (`memory_moderation`).
    pub(super) moderation: Moderations,
}

#[derive(Debug)]
struct RoomLog {
    epoch: String,
    last_seq: u64,
    history: VecDeque<RoomEvent>,
    /// Member id → the member, its presence expiry and whether it is detached.
    members: HashMap<String, Held>,
    /// Roster entries (`record::roster_entry`), in name order.
    roster: BTreeSet<String>,
    sent: HashMap<(String, String), RoomEvent>,
    sent_order: VecDeque<(String, String)>,
    /// Changed messages' states and reactions (`memory_changes`).
    changes: Changes,
    last_used: Instant,
}

impl RoomLog {
    fn new() -> Self {
        Self::starting_at(new_epoch(), 0)
    }

    fn starting_at(epoch: String, last_seq: u64) -> Self {
        Self {
            epoch,
            last_seq,
            history: VecDeque::new(),
            members: HashMap::new(),
            roster: BTreeSet::new(),
            sent: HashMap::new(),
            sent_order: VecDeque::new(),
            changes: Changes::default(),
            last_used: Instant::now(),
        }
    }

    fn position(&self) -> Position {
        Position { epoch: self.epoch.clone(), last_seq: self.last_seq }
    }

    fn page(&self, after: &str, limit: usize) -> MembersPage {
        let start = if after.is_empty() { Bound::Unbounded } else { Bound::Excluded(after.to_owned()) };
        let mut entries = self.roster.range((start, Bound::Unbounded)).take(limit + 1);
        let page: Vec<&String> = entries.by_ref().take(limit).collect();
        let next = match entries.next() {
            Some(_) => page.last().map(|entry| (*entry).clone()).unwrap_or_default(),
            None => String::new(),
        };
        MembersPage {
            members: page
                .iter()
                .filter_map(|entry| self.members.get(record::member_id_of(entry)).map(|held| held.member.clone()))
                .collect(),
            member_count: u32::try_from(self.members.len()).unwrap_or(u32::MAX),
            next,
        }
    }

    /// Applies one change; what it changed, for the presence event (as
    /// `presence.lua` does).
    fn apply(&mut self, change: &PresenceChange) -> Vec<Change> {
        match change {
            PresenceChange::Join { member, expires_at_ms, restore } => {
                let entry = record::roster_entry(member);
                let held = Held { member: member.clone(), expires: *expires_at_ms, detached: None };
                let old = self.members.insert(member.member_id.clone(), held);
                self.roster.insert(entry.clone());
                let Some(old) = old else {
                    return vec![if *restore { Change::Restored } else { Change::Joined(member.clone()) }];
                };
                let mut changes = Vec::new();
                if old.detached.is_none() && old.member.connection != member.connection {
                    let connection = old.member.connection.clone();
                    changes.push(Change::Moved(SessionMoved { member_id: member.member_id.clone(), connection }));
                }
                let old_entry = record::roster_entry(&old.member);
                if old_entry != entry {
                    self.roster.remove(&old_entry);
                    changes.push(Change::Joined(member.clone()));
                }
                changes
            }
            PresenceChange::Leave(leave) => {
                let Some(held) = self.members.get_mut(&leave.member_id) else {
                    return Vec::new();
                };
                if leave.connection.as_ref().is_some_and(|c| *c != held.member.connection)
                    || leave.only_if_expired_at.is_some_and(|at| held.expires > at)
                {
                    return Vec::new();
                }
                if let Some(until) = leave.detach_until {
                    held.detached = Some(leave.reason.clone());
                    held.expires = until;
                    return Vec::new();
                }
                self.remove(&leave.member_id, &leave.reason, leave.only_if_expired_at.is_some()).into_iter().collect()
            }
        }
    }

    /// Removes a member; `ran_out`: its presence ran out, and a detached
    /// member leaves for the reason it was detached for.
    fn remove(&mut self, member_id: &str, reason: &str, ran_out: bool) -> Option<Change> {
        let held = self.members.remove(member_id)?;
        self.roster.remove(&record::roster_entry(&held.member));
        let reason = match held.detached {
            Some(detached) if ran_out => detached,
            _ => reason.to_owned(),
        };
        Some(Change::Left(MemberLeft { member: Some(held.member), reason }))
    }

    /// Members whose presence ran out by `now_ms` leave (up to 100, as in
    /// `presence.lua`).
    fn reap(&mut self, now_ms: i64) -> Vec<Change> {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, held)| held.expires <= now_ms)
            .map(|(id, _)| id.clone())
            .take(100)
            .collect();
        gone.iter().filter_map(|id| self.remove(id, LeaveReason::Expired.as_str(), true)).collect()
    }
}

/// A member in a room.
#[derive(Debug)]
struct Held {
    member: Member,
    /// When its presence runs out, ms since the Unix epoch.
    expires: i64,
    /// Set while no connection holds it: the reason it will leave for.
    detached: Option<String>,
}

enum Change {
    Joined(Member),
    Left(MemberLeft),
    Moved(SessionMoved),
    Restored,
}

impl MemoryBroker {
    /// Keeps what `retention` says of each room and hands events to local
    /// readers through `fanout`.
    pub fn new(retention: Retention, fanout: Arc<Fanout>) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            fanout,
            retention,
            seeded_by_caller: false,
            people: People::default(),
            attachments: Attachments::default(),
            moderation: Moderations::default(),
        }
    }

    /// Rooms it has none of are not started here: writes to them fail with
    /// [`BrokerError::Unseeded`] until the caller [`Broker::seed`]s them (a
    /// room-service with a store, so an embedded room-service that restarts
    /// goes on with each room's numbering).
    #[must_use]
    pub fn seeded_by_caller(mut self) -> Self {
        self.seeded_by_caller = true;
        self
    }

    /// The room's log for a write; a room it has none of starts at a fresh
    /// epoch, or is refused when rooms are seeded by the caller.
    fn log<'a>(&self, rooms: &'a mut HashMap<RoomName, RoomLog>, room: &RoomName) -> BrokerResult<&'a mut RoomLog> {
        if self.seeded_by_caller && !rooms.contains_key(room) {
            return Err(BrokerError::Unseeded(room.to_string()));
        }
        Ok(rooms.entry(room.clone()).or_insert_with(RoomLog::new))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, RoomLog>> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The ids of `user_id`'s members in `room` (a kick or ban removes them).
    pub(super) fn member_ids_of(&self, room: &RoomName, user_id: &str) -> Vec<String> {
        let rooms = self.lock();
        let Some(log) = rooms.get(room) else { return Vec::new() };
        log.members.iter().filter(|(_, held)| held.member.user_id == user_id).map(|(id, _)| id.clone()).collect()
    }
}

impl Broker for MemoryBroker {
    const APPEND_STEP: &'static str = "in-process store + publish";

    async fn append_messages(
        &self,
        room: &RoomName,
        sender: Option<&MemberId>,
        messages: Vec<Outgoing>,
    ) -> BrokerResult<Vec<Stored>> {
        let member_id = sender.map_or("", |id| id.as_str());
        let mut rooms = self.lock();
        let log = self.log(&mut rooms, room)?;
        let name = match member_id {
            "" => "system".to_owned(),
            id => {
                let held = log.members.get(id).ok_or_else(|| BrokerError::NotMember(id.into()))?;
                let now = chat_runtime::clock::now_ms();
                if let Some(until_ms) = self.moderation.muted_until(room, &held.member.user_id, now) {
                    return Err(BrokerError::Muted { until_ms });
                }
                held.member.username.clone()
            }
        };
        let mut stored = Vec::with_capacity(messages.len());
        for Outgoing { client_id, mut event } in messages {
            let dedupe_key = (!client_id.is_empty()).then(|| (member_id.to_owned(), client_id));
            if let Some(first) = dedupe_key.as_ref().and_then(|key| log.sent.get(key)) {
                stored.push(Stored { event: first.clone(), repeat: true });
                continue;
            }
            if let Some(Kind::Message(message)) = &mut event.kind {
                message.username.clone_from(&name);
            }
            log.last_seq += 1;
            log.last_used = Instant::now();
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
            stored.push(Stored { event, repeat: false });
        }
        Ok(stored)
    }

    async fn apply_presence(
        &self,
        room: &RoomName,
        changes: &[PresenceChange],
        size: SnapshotSize,
    ) -> BrokerResult<PresenceOutcome> {
        let mut rooms = self.lock();
        let log = self.log(&mut rooms, room)?;
        let mut diff = PresenceDiff::default();
        let mut applied = Vec::with_capacity(changes.len());
        let mut all = log.reap(chat_runtime::clock::now_ms());
        let mut banned = Vec::with_capacity(changes.len());
        for change in changes {
            // As presence.lua: a banned user's join changes nothing.
            if let PresenceChange::Join { member, restore, .. } = change
                && !self.moderation.admit(room, &member.user_id, *restore)
            {
                applied.push(false);
                banned.push(true);
                continue;
            }
            banned.push(false);
            let done = log.apply(change);
            applied.push(done.iter().any(|c| matches!(c, Change::Joined(_) | Change::Left(_) | Change::Restored)));
            all.extend(done);
        }
        let joiners = changes.iter().filter_map(|change| match change {
            PresenceChange::Join { member, .. } => Some(member.user_id.as_str()),
            PresenceChange::Leave(_) => None,
        });
        let (owner, moderators) = self.moderation.roles_of(room, joiners);
        for change in all {
            match change {
                Change::Joined(member) => diff.joins.push(member),
                Change::Left(left) => diff.leaves.push(left),
                Change::Moved(moved) => diff.moved.push(moved),
                Change::Restored => diff.restored += 1,
            }
        }
        let page = log.page("", size.members);
        if !diff.joins.is_empty() || !diff.leaves.is_empty() || !diff.moved.is_empty() || diff.restored > 0 {
            log.last_used = Instant::now();
            diff.member_count = page.member_count;
            let event = RoomEvent {
                room: room.to_string(),
                ts_ms: chat_runtime::clock::now_ms(),
                kind: Some(Kind::Presence(diff)),
                ..Default::default()
            };
            self.fanout.deliver(room, Arc::new(event));
        }
        let skip = log.history.len().saturating_sub(size.history);
        let mut history: Vec<RoomEvent> = log.history.iter().skip(skip).cloned().collect();
        log.changes.render(&mut history);
        let snapshot = Snapshot {
            history,
            position: log.position(),
            members: page.members,
            member_count: page.member_count,
            members_next: page.next,
            owner,
            moderators,
        };
        Ok(PresenceOutcome { applied, banned, snapshot })
    }

    async fn change_message(
        &self,
        room: &RoomName,
        actor: &MemberId,
        order: ChangeOrder,
    ) -> BrokerResult<ChangeOutcome> {
        let mut rooms = self.lock();
        let log = self.log(&mut rooms, room)?;
        let member = &log.members.get(actor.as_str()).ok_or_else(|| BrokerError::NotMember(actor.to_string()))?.member;
        let user_id = if member.user_id.is_empty() { member.member_id.clone() } else { member.user_id.clone() };
        let (name, member_id) = (member.username.clone(), member.member_id.clone());
        if order.target_epoch != log.epoch || order.target_seq > log.last_seq {
            return Ok(ChangeOutcome::Gone);
        }
        let actor = Actor { member_id: &member_id, name: &name, user_id: &user_id };
        let (mut event, change) = match log.changes.apply(&order, &actor, self.retention.history_len) {
            Ok(made) => made,
            Err(Applied::Unchanged) => return Ok(ChangeOutcome::Unchanged),
            Err(Applied::TooManyReactions) => return Ok(ChangeOutcome::TooManyReactions),
            Err(_) => return Ok(ChangeOutcome::Gone),
        };
        log.last_seq += 1;
        log.last_used = Instant::now();
        event.room = room.to_string();
        event.seq = log.last_seq;
        event.epoch = log.epoch.clone();
        event.id = event_id(&log.epoch, log.last_seq);
        event.kind = Some(Kind::Change(change));
        log.history.push_back(event.clone());
        while log.history.len() > self.retention.history_len {
            log.history.pop_front();
        }
        // Delivered before the lock is released: readers see seq order.
        self.fanout.deliver(room, Arc::new(event.clone()));
        Ok(ChangeOutcome::Stored(Box::new(event)))
    }

    async fn message(&self, room: &RoomName, seq: u64) -> BrokerResult<Option<RoomEvent>> {
        let rooms = self.lock();
        let Some(log) = rooms.get(room) else { return Ok(None) };
        let Some(first) = log.history.front().map(|e| e.seq) else { return Ok(None) };
        let found = seq.checked_sub(first).and_then(|at| log.history.get(usize::try_from(at).ok()?));
        let Some(event) = found.filter(|e| e.seq == seq && matches!(e.kind, Some(Kind::Message(_)))) else {
            return Ok(None);
        };
        let mut events = [event.clone()];
        log.changes.render(&mut events);
        let [event] = events;
        Ok(Some(event))
    }

    async fn reacted(&self, room: &RoomName, user_id: &str, reactions: &[(u64, String)]) -> BrokerResult<Vec<bool>> {
        Ok(match self.lock().get(room) {
            Some(log) => log.changes.reacted(user_id, reactions),
            None => vec![false; reactions.len()],
        })
    }

    async fn publish_ephemeral(&self, room: &RoomName, event: RoomEvent) -> BrokerResult<()> {
        self.fanout.deliver(room, Arc::new(event));
        Ok(())
    }

    async fn subscribe(&self, room: &RoomName) -> BrokerResult<Subscription> {
        let (subscription, _) = self.fanout.tap(room);
        self.fanout.mark_live(room);
        Ok(subscription)
    }

    async fn recent(&self, room: &RoomName, limit: usize) -> BrokerResult<(Vec<RoomEvent>, Position)> {
        let rooms = self.lock();
        Ok(match rooms.get(room) {
            Some(log) => {
                let skip = log.history.len().saturating_sub(limit);
                let mut events: Vec<RoomEvent> = log.history.iter().skip(skip).cloned().collect();
                log.changes.render(&mut events);
                (events, log.position())
            }
            None => (Vec::new(), Position::default()),
        })
    }

    async fn after(&self, room: &RoomName, after_seq: u64, limit: usize) -> BrokerResult<Vec<RoomEvent>> {
        let rooms = self.lock();
        Ok(rooms
            .get(room)
            .map(|log| {
                let mut events: Vec<RoomEvent> =
                    log.history.iter().filter(|e| e.seq > after_seq).take(limit).cloned().collect();
                log.changes.render(&mut events);
                events
            })
            .unwrap_or_default())
    }

    async fn position(&self, room: &RoomName) -> BrokerResult<Position> {
        Ok(self.lock().get(room).map(RoomLog::position).unwrap_or_default())
    }

    async fn seed(&self, room: &RoomName, epoch: &str, last_seq: u64) -> BrokerResult<bool> {
        let mut rooms = self.lock();
        if rooms.contains_key(room) {
            return Ok(false);
        }
        rooms.insert(room.clone(), RoomLog::starting_at(epoch.to_owned(), last_seq));
        Ok(true)
    }

    async fn member(&self, room: &RoomName, member_id: &MemberId) -> BrokerResult<Option<Member>> {
        let member_id = member_id.as_str();
        Ok(self.lock().get(room).and_then(|log| log.members.get(member_id)).map(|held| held.member.clone()))
    }

    async fn members_page(&self, room: &RoomName, after: &str, limit: usize) -> BrokerResult<MembersPage> {
        Ok(self.lock().get(room).map(|log| log.page(after, limit)).unwrap_or_default())
    }

    async fn expired(&self, room: &RoomName, now_ms: i64, limit: usize) -> BrokerResult<Vec<String>> {
        Ok(self
            .lock()
            .get(room)
            .map(|log| {
                log.members
                    .iter()
                    .filter(|(_, held)| held.expires <= now_ms)
                    .map(|(id, _)| id.clone())
                    .take(limit)
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn heartbeat(&self, room: &RoomName, member_ids: &[String], expires_at_ms: i64) -> BrokerResult<Vec<String>> {
        let mut rooms = self.lock();
        let Some(log) = rooms.get_mut(room) else {
            return Ok(member_ids.to_vec());
        };
        let mut unknown = Vec::new();
        for id in member_ids {
            match log.members.get_mut(id) {
                Some(held) => held.expires = expires_at_ms,
                None => unknown.push(id.clone()),
            }
        }
        Ok(unknown)
    }

    async fn rooms(&self, limit: usize) -> BrokerResult<Vec<RoomSummary>> {
        let rooms = self.lock();
        let mut summaries: Vec<RoomSummary> = rooms
            .iter()
            .map(|(name, log)| RoomSummary {
                name: name.to_string(),
                member_count: u32::try_from(log.members.len()).unwrap_or(u32::MAX),
                last_seq: log.last_seq,
            })
            .collect();
        summaries.sort_by(|a, b| a.name.cmp(&b.name));
        summaries.truncate(limit);
        Ok(summaries)
    }

    async fn drop_idle_subscriptions(&self) {
        self.fanout.remove_idle();
        // Forget rooms unused for the room TTL, as Redis would.
        let ttl = self.retention.room_ttl;
        self.lock().retain(|_, log| log.last_used.elapsed() < ttl);
    }

    fn subscribed_rooms(&self) -> Vec<RoomName> {
        self.fanout.live_rooms().into_iter().filter_map(|room| RoomName::try_from(room).ok()).collect()
    }

    async fn ping(&self) -> BrokerResult<()> {
        Ok(())
    }
}
