//! People in the store: the PostgreSQL copy of what the room-service's
//! [`Directory`](crate::people::Directory) keeps in Redis (profiles, direct
//! conversations, users' rooms with their read markers, mentions; see
//! `migrations/0003_people.sql`).
//!
//! The service writes every change through to here, and reads back from
//! here only when Redis has lost a user or a direct conversation. Each
//! method means what the `Directory` method of the same name means, so the
//! two can be called side by side; one difference: [`Store::user_rooms`]
//! answers an empty list for a user it knows nothing of.
//!
//! The concurrent writers of one user's room are a mark_read (a reader on
//! any device) and add_mention (a sender's message): both lock the user's
//! `user_rooms` row, so a mention is either recorded before the marker
//! moves (and deleted by it, when passed) or sees the moved marker and is
//! not recorded. Readers ignore mentions at or below the marker anyway.

use std::collections::{HashMap, HashSet};

use chat_proto::v1::Person;

use super::bounds::{self, MAX_ROOM_MENTIONS, MAX_USER_ROOMS};
use super::{Store, StoreError};
use crate::people::{RoomAdd, UserRoomState};

/// Writes a name only when it changed: a user joining rooms again and
/// again under the same name costs a read, not a row version and its WAL.
const PUT_PROFILE: &str = "
    INSERT INTO profiles (user_id, name) VALUES ($1, $2)
    ON CONFLICT (user_id) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
        WHERE profiles.name IS DISTINCT FROM EXCLUDED.name";

/// Two people opening the same conversation at once: the second insert
/// waits on the first's row, then does nothing; only one returns a row.
const PUT_DIRECT: &str = "
    INSERT INTO directs (room, user_ids, names) VALUES ($1, $2, $3)
    ON CONFLICT (room) DO NOTHING
    RETURNING 1";

/// One multi-row insert of arrays (as the archiver's append), in key
/// order: concurrent batches taking row locks in one order cannot
/// deadlock. A room the user has keeps its marker; duplicates within the
/// batch are inserted once.
const ADD_ROOMS: &str = "
    INSERT INTO user_rooms (user_id, room, read_seq, joined_at_ms)
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[])
        AS a (user_id, room, read_seq, joined_at_ms)
    ORDER BY user_id, room
    ON CONFLICT (user_id, room) DO NOTHING
    RETURNING user_id, room";

/// The room's mentions are deleted with it (`ON DELETE CASCADE`).
const REMOVE_ROOM: &str = "DELETE FROM user_rooms WHERE user_id = $1 AND room = $2";

/// A user's rooms (or one: `$2` names it, NULL for all), each with its
/// newest mentions above the marker, ascending. The mentions are one range
/// of the primary key per room.
const USER_ROOMS: &str = "
    SELECT r.room, r.read_seq, r.joined_at_ms,
           COALESCE((SELECT array_agg(seq ORDER BY seq) FROM (
                SELECT m.seq FROM mentions m
                WHERE m.user_id = r.user_id AND m.room = r.room AND m.seq > r.read_seq
                ORDER BY m.seq DESC LIMIT $3) newest), '{}') AS mentions
    FROM user_rooms r
    WHERE r.user_id = $1 AND ($2::text IS NULL OR r.room = $2)
    ORDER BY r.joined_at_ms DESC, r.room
    LIMIT $4";

/// Forward only: `GREATEST` in the row's own update, under its row lock.
const MOVE_MARKER: &str = "
    UPDATE user_rooms SET read_seq = GREATEST(read_seq, $3)
    WHERE user_id = $1 AND room = $2
    RETURNING read_seq";

const DROP_READ_MENTIONS: &str = "DELETE FROM mentions WHERE user_id = $1 AND room = $2 AND seq <= $3";

/// Only for a room that is the user's, above the marker as it stands once
/// any marker move in flight committed: `FOR SHARE` waits for it and
/// PostgreSQL checks the condition again on the row as it then is.
const ADD_MENTION: &str = "
    INSERT INTO mentions (user_id, room, seq)
    SELECT user_id, room, $3 FROM user_rooms
    WHERE user_id = $1 AND room = $2 AND read_seq < $3
    FOR SHARE
    ON CONFLICT DO NOTHING";

type UserRoomRow = (String, i64, i64, Vec<i64>);

fn user_room_state((room, read_seq, joined_at_ms, mentions): UserRoomRow) -> UserRoomState {
    UserRoomState {
        room,
        read_seq: read_seq.unsigned_abs(),
        joined_at_ms,
        mentions: mentions.into_iter().map(i64::unsigned_abs).collect(),
    }
}

impl Store {
    /// Records (or renames) a user: from then on they exist.
    pub async fn put_profile(&self, user_id: &str, name: &str) -> Result<(), StoreError> {
        sqlx::query(PUT_PROFILE).bind(user_id).bind(name).execute(&self.pool).await?;
        Ok(())
    }

    /// Each user's name (at most [`bounds::MAX_PROFILES`] users per call),
    /// in the order asked, `None` for a user nobody has.
    pub async fn profiles(&self, user_ids: &[String]) -> Result<Vec<Option<String>>, StoreError> {
        bounds::profiles(user_ids.len())?;
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<(String, String)> = sqlx::query_as("SELECT user_id, name FROM profiles WHERE user_id = ANY($1)")
            .bind(user_ids)
            .fetch_all(&self.pool)
            .await?;
        let names: HashMap<String, String> = rows.into_iter().collect();
        Ok(user_ids.iter().map(|user_id| names.get(user_id).cloned()).collect())
    }

    /// Records a direct conversation with its members (2 to
    /// [`bounds::MAX_DIRECT_MEMBERS`], the opener included), unless it
    /// exists; true when this call created it. An existing one keeps the
    /// members and names it was created with.
    pub async fn put_direct(&self, room: &str, members: &[Person]) -> Result<bool, StoreError> {
        bounds::direct_members(members.len())?;
        let user_ids: Vec<&str> = members.iter().map(|p| p.user_id.as_str()).collect();
        let names: Vec<&str> = members.iter().map(|p| p.name.as_str()).collect();
        let created = sqlx::query(PUT_DIRECT).bind(room).bind(user_ids).bind(names).fetch_optional(&self.pool).await?;
        Ok(created.is_some())
    }

    /// A direct conversation's members, in the order it was created with;
    /// `None` if there is none by that name.
    pub async fn direct(&self, room: &str) -> Result<Option<Vec<Person>>, StoreError> {
        let row: Option<(Vec<String>, Vec<String>)> =
            sqlx::query_as("SELECT user_ids, names FROM directs WHERE room = $1")
                .bind(room)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|(user_ids, names)| {
            user_ids.into_iter().zip(names).map(|(user_id, name)| Person { user_id, name }).collect()
        }))
    }

    /// Adds rooms (at most [`bounds::MAX_ROOM_ADDS`] per call) to users'
    /// rooms where absent, in one statement; a room a user has keeps its
    /// marker. Per add, true when it was added now (for the same user and
    /// room twice in one call, the first).
    pub async fn add_rooms(&self, adds: &[RoomAdd]) -> Result<Vec<bool>, StoreError> {
        bounds::room_adds(adds.len())?;
        if adds.is_empty() {
            return Ok(Vec::new());
        }
        let n = adds.len();
        let (mut user_id, mut room, mut read_seq, mut joined_at_ms) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for add in adds {
            user_id.push(add.user_id.as_str());
            room.push(add.room.as_str());
            read_seq.push(bounds::seq(add.read_seq)?);
            joined_at_ms.push(add.joined_at_ms);
        }
        let rows: Vec<(String, String)> = sqlx::query_as(ADD_ROOMS)
            .bind(user_id)
            .bind(room)
            .bind(read_seq)
            .bind(joined_at_ms)
            .fetch_all(&self.pool)
            .await?;
        let mut added: HashSet<(String, String)> = rows.into_iter().collect();
        Ok(adds.iter().map(|add| added.remove(&(add.user_id.clone(), add.room.clone()))).collect())
    }

    /// Takes a room off a user's rooms, and its mentions with it; true if
    /// it was there.
    pub async fn remove_room(&self, user_id: &str, room: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(REMOVE_ROOM).bind(user_id).bind(room).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// A user's rooms, the most recently joined first, at most
    /// [`MAX_USER_ROOMS`], each with its newest [`MAX_ROOM_MENTIONS`]
    /// mentions above the marker; empty for a user the store knows nothing
    /// of.
    pub async fn user_rooms(&self, user_id: &str) -> Result<Vec<UserRoomState>, StoreError> {
        let rows: Vec<UserRoomRow> = sqlx::query_as(USER_ROOMS)
            .bind(user_id)
            .bind(None::<&str>)
            .bind(i64::from(MAX_ROOM_MENTIONS))
            .bind(i64::from(MAX_USER_ROOMS))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(user_room_state).collect())
    }

    /// One of a user's rooms, `None` if it is not theirs.
    pub async fn user_room(&self, user_id: &str, room: &str) -> Result<Option<UserRoomState>, StoreError> {
        let row: Option<UserRoomRow> = sqlx::query_as(USER_ROOMS)
            .bind(user_id)
            .bind(room)
            .bind(i64::from(MAX_ROOM_MENTIONS))
            .bind(1_i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(user_room_state))
    }

    /// Moves the user's marker in `room` up to `seq` (never down) and drops
    /// the mentions it passes, in one transaction. `None` if the room is not
    /// theirs; else the room as it stands after.
    pub async fn mark_read(&self, user_id: &str, room: &str, seq: u64) -> Result<Option<UserRoomState>, StoreError> {
        let seq = bounds::seq(seq)?;
        let mut tx = self.pool.begin().await?;
        let marker: Option<i64> =
            sqlx::query_scalar(MOVE_MARKER).bind(user_id).bind(room).bind(seq).fetch_optional(&mut *tx).await?;
        let Some(marker) = marker else {
            return Ok(None); // dropping `tx` rolls back: nothing was written
        };
        // A statement of its own (not a CTE of the update): it sees the
        // mentions committed while the update waited for the row.
        sqlx::query(DROP_READ_MENTIONS).bind(user_id).bind(room).bind(marker).execute(&mut *tx).await?;
        let row: Option<UserRoomRow> = sqlx::query_as(USER_ROOMS)
            .bind(user_id)
            .bind(room)
            .bind(i64::from(MAX_ROOM_MENTIONS))
            .bind(1_i64)
            .fetch_optional(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(row.map(user_room_state))
    }

    /// Records that message `seq` of `room` mentions the user, if the room
    /// is theirs and the seq is above their marker (else nothing happens).
    pub async fn add_mention(&self, user_id: &str, room: &str, seq: u64) -> Result<(), StoreError> {
        let seq = bounds::seq(seq)?;
        if seq == 0 {
            return Err(StoreError::SeqOutOfRange(0));
        }
        sqlx::query(ADD_MENTION).bind(user_id).bind(room).bind(seq).execute(&self.pool).await?;
        Ok(())
    }
}
