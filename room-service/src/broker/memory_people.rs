//! People's state in this process: the [`Directory`] of the
//! [`MemoryBroker`], for the embedded mode. It keeps what the Redis one
//! keeps (`people.rs`) under one lock, so each call is atomic as a Lua
//! script is there; nothing survives a restart (with a store, the
//! room-service loads users back from PostgreSQL as it does after Redis
//! lost them).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chat_proto::v1::Person;

use super::BrokerResult;
use super::memory::MemoryBroker;
use super::people::MAX_MENTIONS_PER_ROOM;
use crate::people::{Directory, RoomAdd, UserRoomState};

/// Profiles, direct conversations and each user's rooms.
#[derive(Debug, Default)]
pub(super) struct People(Mutex<State>);

#[derive(Debug, Default)]
struct State {
    profiles: HashMap<String, String>,
    /// Room → members, sorted by user id.
    directs: HashMap<String, Vec<Person>>,
    /// User → room → their place in it. A user whose last room went is
    /// dropped, as Redis drops an emptied hash: `user_rooms` says `None`.
    users: HashMap<String, BTreeMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    read_seq: u64,
    joined_at_ms: i64,
    /// Mention seqs above `read_seq`, the newest [`MAX_MENTIONS_PER_ROOM`].
    mentions: BTreeSet<u64>,
}

impl Entry {
    fn state(&self, room: &str) -> UserRoomState {
        UserRoomState {
            room: room.to_owned(),
            read_seq: self.read_seq,
            joined_at_ms: self.joined_at_ms,
            mentions: self.mentions.iter().copied().collect(),
        }
    }
}

impl People {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Directory for MemoryBroker {
    async fn put_profile(&self, user_id: &str, name: &str) -> BrokerResult<()> {
        self.people.lock().profiles.insert(user_id.to_owned(), name.to_owned());
        Ok(())
    }

    async fn profiles(&self, user_ids: &[String]) -> BrokerResult<Vec<Option<String>>> {
        let state = self.people.lock();
        Ok(user_ids.iter().map(|user| state.profiles.get(user).cloned()).collect())
    }

    async fn put_direct(&self, room: &str, members: &[Person]) -> BrokerResult<bool> {
        let mut state = self.people.lock();
        // As `direct.lua`: a record with no members is no record.
        if members.is_empty() || state.directs.contains_key(room) {
            return Ok(false);
        }
        // As the Redis hash: one name per user id, the last one given.
        let by_user: BTreeMap<&str, &str> = members.iter().map(|p| (p.user_id.as_str(), p.name.as_str())).collect();
        let record = by_user.into_iter().map(|(user_id, name)| Person { user_id: user_id.into(), name: name.into() });
        state.directs.insert(room.to_owned(), record.collect());
        Ok(true)
    }

    async fn direct(&self, room: &str) -> BrokerResult<Option<Vec<Person>>> {
        Ok(self.people.lock().directs.get(room).cloned())
    }

    async fn add_rooms(&self, adds: &[RoomAdd]) -> BrokerResult<Vec<bool>> {
        let mut state = self.people.lock();
        Ok(adds
            .iter()
            .map(|add| {
                let rooms = state.users.entry(add.user_id.clone()).or_default();
                if rooms.contains_key(&add.room) {
                    return false;
                }
                let entry = Entry { read_seq: add.read_seq, joined_at_ms: add.joined_at_ms, mentions: BTreeSet::new() };
                rooms.insert(add.room.clone(), entry);
                true
            })
            .collect())
    }

    async fn remove_room(&self, user_id: &str, room: &str) -> BrokerResult<bool> {
        let mut state = self.people.lock();
        let Some(rooms) = state.users.get_mut(user_id) else { return Ok(false) };
        let removed = rooms.remove(room).is_some();
        if rooms.is_empty() {
            state.users.remove(user_id);
        }
        Ok(removed)
    }

    async fn user_rooms(&self, user_id: &str) -> BrokerResult<Option<Vec<UserRoomState>>> {
        let state = self.people.lock();
        Ok(state.users.get(user_id).map(|rooms| rooms.iter().map(|(room, entry)| entry.state(room)).collect()))
    }

    async fn user_room(&self, user_id: &str, room: &str) -> BrokerResult<Option<UserRoomState>> {
        let state = self.people.lock();
        Ok(state.users.get(user_id).and_then(|rooms| rooms.get(room)).map(|entry| entry.state(room)))
    }

    async fn mark_read(&self, user_id: &str, room: &str, seq: u64) -> BrokerResult<Option<UserRoomState>> {
        let mut state = self.people.lock();
        let Some(entry) = state.users.get_mut(user_id).and_then(|rooms| rooms.get_mut(room)) else {
            return Ok(None);
        };
        entry.read_seq = entry.read_seq.max(seq);
        let read_seq = entry.read_seq;
        entry.mentions.retain(|&mention| mention > read_seq);
        Ok(Some(entry.state(room)))
    }

    async fn add_mention(&self, user_id: &str, room: &str, seq: u64) -> BrokerResult<()> {
        let mut state = self.people.lock();
        let Some(entry) = state.users.get_mut(user_id).and_then(|rooms| rooms.get_mut(room)) else {
            return Ok(());
        };
        if seq > entry.read_seq {
            entry.mentions.insert(seq);
            while entry.mentions.len() > MAX_MENTIONS_PER_ROOM {
                entry.mentions.pop_first();
            }
        }
        Ok(())
    }
}
