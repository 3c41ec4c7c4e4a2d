//! [`People`]: the [`Directory`] as the service uses it, with the store
//! (`DATABASE_URL`) behind it.
//!
//! Every change goes to the directory (Redis, or memory) first, then
//! through to PostgreSQL; a call whose store write fails fails (the
//! directory already holds the change, and every change is idempotent, so
//! the caller's retry completes it). Reads come from the directory alone,
//! except when it knows nothing: a user it has no rooms for, a direct
//! conversation it has no record of, a profile it lacks. Then, with a
//! store, what PostgreSQL holds is loaded into the directory (`add_rooms`,
//! `add_mention`, `put_direct`, `put_profile`, all "where absent") and the
//! directory is read again. That is how markers and conversations come
//! back after Redis was flushed. A user who joins a room for the first
//! time since such a loss (the directory adds the room anew) is loaded
//! too, so one fresh join does not hide the rest of their rooms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chat_proto::people::is_direct;
use chat_proto::v1::Person;
use tonic::Status;

use super::{Directory, RoomAdd, UserRoomState};
use crate::broker::BrokerError;
use crate::metrics::RoomServiceMetrics;
use crate::store::{Store, StoreError};

/// Profiles this process remembers having written, so a join storm of the
/// same people writes each name once. Past this many it starts over.
const PROFILES_REMEMBERED: usize = 65_536;

/// People's state: the directory, written through to the store.
pub(crate) struct People<B> {
    directory: Arc<B>,
    store: Option<Store>,
    metrics: Arc<RoomServiceMetrics>,
    /// user id → the name last written for them by this process.
    written: Mutex<HashMap<String, String>>,
}

impl<B> std::fmt::Debug for People<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("People").field("store", &self.store.is_some()).finish_non_exhaustive()
    }
}

impl<B: Directory> People<B> {
    pub(crate) fn new(directory: Arc<B>, store: Option<Store>, metrics: Arc<RoomServiceMetrics>) -> Self {
        Self { directory, store, metrics, written: Mutex::new(HashMap::new()) }
    }

    /// Records users' names (the joiners of a presence batch, an opener),
    /// skipping those this process already wrote with the same name.
    pub(crate) async fn put_profiles(&self, people: &[Person]) -> Result<(), Status> {
        let fresh: Vec<&Person> = {
            let written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
            people.iter().filter(|p| written.get(&p.user_id) != Some(&p.name)).collect()
        };
        if fresh.is_empty() {
            return Ok(());
        }
        let writes = fresh.iter().map(|p| self.directory.put_profile(&p.user_id, &p.name));
        for written in futures_util::future::join_all(writes).await {
            written.map_err(|e| self.broker_failed(e))?;
        }
        if let Some(store) = &self.store {
            for p in &fresh {
                store.put_profile(&p.user_id, &p.name).await.map_err(store_failed)?;
            }
        }
        let mut written = self.written.lock().unwrap_or_else(PoisonError::into_inner);
        if written.len() + fresh.len() > PROFILES_REMEMBERED {
            written.clear();
        }
        written.extend(fresh.into_iter().map(|p| (p.user_id.clone(), p.name.clone())));
        Ok(())
    }

    /// Each user's name, `None` for a user nobody has (neither the
    /// directory nor the store).
    pub(crate) async fn profiles(&self, user_ids: &[String]) -> Result<Vec<Option<String>>, Status> {
        let mut names = self.directory.profiles(user_ids).await.map_err(|e| self.broker_failed(e))?;
        let Some(store) = &self.store else { return Ok(names) };
        let missing: Vec<String> =
            user_ids.iter().zip(&names).filter(|(_, n)| n.is_none()).map(|(id, _)| id.clone()).collect();
        if missing.is_empty() {
            return Ok(names);
        }
        let stored = store.profiles(&missing).await.map_err(store_failed)?;
        for (user_id, name) in missing.iter().zip(stored) {
            let Some(name) = name else { continue };
            self.directory.put_profile(user_id, &name).await.map_err(|e| self.broker_failed(e))?;
            if let Some(slot) = user_ids.iter().position(|id| id == user_id) {
                names[slot] = Some(name);
            }
        }
        Ok(names)
    }

    /// Records a direct conversation unless it exists (in the directory or
    /// the store); true when this call created it.
    pub(crate) async fn put_direct(&self, room: &str, members: &[Person]) -> Result<bool, Status> {
        if self.direct(room).await?.is_some() {
            return Ok(false);
        }
        let created = self.directory.put_direct(room, members).await.map_err(|e| self.broker_failed(e))?;
        match &self.store {
            Some(store) => store.put_direct(room, members).await.map_err(store_failed),
            None => Ok(created),
        }
    }

    /// A direct conversation's members, `None` if there is none by that name.
    pub(crate) async fn direct(&self, room: &str) -> Result<Option<Vec<Person>>, Status> {
        if let Some(members) = self.directory.direct(room).await.map_err(|e| self.broker_failed(e))? {
            return Ok(Some(members));
        }
        let Some(store) = &self.store else { return Ok(None) };
        let Some(members) = store.direct(room).await.map_err(store_failed)? else { return Ok(None) };
        self.directory.put_direct(room, &members).await.map_err(|e| self.broker_failed(e))?;
        Ok(Some(members))
    }

    /// Adds rooms to users' rooms where absent; per add, true when added now.
    /// A user who gets a room anew is loaded from the store first, if the
    /// directory had lost them (see the module doc).
    pub(crate) async fn add_rooms(&self, adds: &[RoomAdd]) -> Result<Vec<bool>, Status> {
        if adds.is_empty() {
            return Ok(Vec::new());
        }
        let added = self.directory.add_rooms(adds).await.map_err(|e| self.broker_failed(e))?;
        let Some(store) = &self.store else { return Ok(added) };
        let fresh: Vec<RoomAdd> = adds.iter().zip(&added).filter(|(_, a)| **a).map(|(add, _)| add.clone()).collect();
        if fresh.is_empty() {
            return Ok(added);
        }
        let mut users: Vec<&str> = fresh.iter().map(|a| a.user_id.as_str()).collect();
        users.sort_unstable();
        users.dedup();
        for user_id in users {
            self.load(store, user_id).await?;
        }
        store.add_rooms(&fresh).await.map_err(store_failed)?;
        Ok(added)
    }

    /// Takes a room off a user's rooms; true if it was there.
    pub(crate) async fn remove_room(&self, user_id: &str, room: &str) -> Result<bool, Status> {
        let removed = self.directory.remove_room(user_id, room).await.map_err(|e| self.broker_failed(e))?;
        if let Some(store) = &self.store {
            store.remove_room(user_id, room).await.map_err(store_failed)?;
        }
        Ok(removed)
    }

    /// A user's rooms (loaded from the store when the directory has none).
    pub(crate) async fn user_rooms(&self, user_id: &str) -> Result<Vec<UserRoomState>, Status> {
        if let Some(rooms) = self.directory.user_rooms(user_id).await.map_err(|e| self.broker_failed(e))? {
            return Ok(rooms);
        }
        let Some(store) = &self.store else { return Ok(Vec::new()) };
        self.load(store, user_id).await?;
        let rooms = self.directory.user_rooms(user_id).await.map_err(|e| self.broker_failed(e))?;
        Ok(rooms.unwrap_or_default())
    }

    /// One of a user's rooms, `None` if it is not theirs.
    pub(crate) async fn user_room(&self, user_id: &str, room: &str) -> Result<Option<UserRoomState>, Status> {
        if let Some(state) = self.directory.user_room(user_id, room).await.map_err(|e| self.broker_failed(e))? {
            return Ok(Some(state));
        }
        let Some(store) = &self.store else { return Ok(None) };
        if !self.load(store, user_id).await? {
            return Ok(None);
        }
        self.directory.user_room(user_id, room).await.map_err(|e| self.broker_failed(e))
    }

    /// Moves the marker up to `seq` (never down); `None` if the room is not
    /// the user's.
    pub(crate) async fn mark_read(&self, user_id: &str, room: &str, seq: u64) -> Result<Option<UserRoomState>, Status> {
        if self.user_room(user_id, room).await?.is_none() {
            return Ok(None);
        }
        let state = self.directory.mark_read(user_id, room, seq).await.map_err(|e| self.broker_failed(e))?;
        if let (Some(store), Some(state)) = (&self.store, &state) {
            store.mark_read(user_id, room, state.read_seq).await.map_err(store_failed)?;
        }
        Ok(state)
    }

    /// Records that message `seq` of `room` mentions the user.
    pub(crate) async fn add_mention(&self, user_id: &str, room: &str, seq: u64) -> Result<(), Status> {
        self.directory.add_mention(user_id, room, seq).await.map_err(|e| self.broker_failed(e))?;
        if let Some(store) = &self.store {
            store.add_mention(user_id, room, seq).await.map_err(store_failed)?;
        }
        Ok(())
    }

    /// Puts what the store holds of a user into the directory, where the
    /// directory has nothing: their rooms with markers, the records of
    /// their direct conversations, their mentions. False if the store
    /// knows nothing of them either.
    async fn load(&self, store: &Store, user_id: &str) -> Result<bool, Status> {
        let rooms = store.user_rooms(user_id).await.map_err(store_failed)?;
        if rooms.is_empty() {
            return Ok(false);
        }
        for state in rooms.iter().filter(|s| is_direct(&s.room)) {
            self.direct(&state.room).await?;
        }
        let adds: Vec<RoomAdd> = rooms
            .iter()
            .map(|s| RoomAdd {
                user_id: user_id.to_owned(),
                room: s.room.clone(),
                read_seq: s.read_seq,
                joined_at_ms: s.joined_at_ms,
            })
            .collect();
        self.directory.add_rooms(&adds).await.map_err(|e| self.broker_failed(e))?;
        for state in &rooms {
            for &seq in &state.mentions {
                self.directory.add_mention(user_id, &state.room, seq).await.map_err(|e| self.broker_failed(e))?;
            }
        }
        tracing::info!(user_id, rooms = rooms.len(), "user's rooms loaded back from the store");
        Ok(true)
    }

    fn broker_failed(&self, error: BrokerError) -> Status {
        self.metrics.broker_errors.increment(1);
        error.into()
    }
}

/// PostgreSQL failing: INTERNAL, like every store failure of the service.
fn store_failed(error: StoreError) -> Status {
    tracing::warn!(%error, "store call for people failed");
    Status::internal(format!("store: {error}"))
}
