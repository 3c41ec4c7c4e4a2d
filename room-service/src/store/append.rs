//! The write path into the store: a batch of stored events (messages and
//! changes of them) in one transaction, which also moves each room's
//! numbering forward and brings changed messages up to date.
//!
//! The transaction, for a batch:
//! 1. inserts every row in one statement ([`INSERT`]), skipping those
//!    already stored, learning which rows are new, and upserting each of
//!    the batch's rooms' numbering;
//! 2. applies what is new ([`changes::apply`](super::changes::apply)):
//!    each new change to its target, and to each new message the changes
//!    stored before it.
//!
//! Several writers may write one room at once (two room-services'
//! archivers, the archiver and the `STORE_SYNC` committer), and a change
//! and its target may come from two of them. Step 2 must then never run
//! for both while neither sees the other's rows, or the change would
//! never reach its message. What prevents it: the numbering upsert of
//! step 1 locks the room's `rooms` row (an `ON CONFLICT DO UPDATE` locks
//! the row even when its `WHERE` leaves it as it is) until the
//! transaction ends. So a room's writers pass step 1 one at a time, and
//! each one's step 2, in statements of their own, sees every row the
//! writers before it committed.

use std::collections::HashMap;

use sqlx::Row;

use super::bounds::{self, MAX_APPEND};
use super::{Store, StoreError, StoredMessage, changes};

/// One multi-row insert whatever the batch size: each column goes as one
/// array parameter and `UNNEST` turns the arrays back into rows. A row
/// already stored (same room and seq) is skipped, so copying a batch again
/// after a crash or a takeover stores nothing twice; the new ones come
/// back.
///
/// The same statement moves each room's numbering (`rooms`, see
/// `migrations/0002_rooms.sql`) up to the batch's newest event of that
/// room: one upsert per room, only forward, so a batch archived late by a
/// second room-service never moves it back.
///
/// Rows go in `(room, seq)` order: several writers may insert the same
/// messages at once, each waiting on the other's uncommitted rows; taken
/// in one order by all, those waits can never form a cycle (a deadlock
/// PostgreSQL would break by failing one of them after a second). The
/// `rooms` rows are locked after every row is inserted (a data-modifying
/// `WITH` the main query does not read runs last), in room order.
const INSERT: &str = "
    WITH batch AS (
        SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::bigint[],
                             $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[],
                             $10::text[], $11::bigint[], $12::bytea[], $13::text[],
                             $14::bytea[], $15::bigint[], $16::text[], $17::bool[],
                             $18::bigint[], $19::bigint[], $20::text[])
            AS b (room, seq, epoch, ts_ms, member_id, username, body, client_id, attachments,
                  action, target_seq, change, user_id, reply, reply_seq, reply_quote, reply_deleted,
                  edited_ms, deleted_ms, deleted_by)
    ), stored AS (
        INSERT INTO messages (room, seq, epoch, ts_ms, member_id, username, body, client_id, attachments,
                              action, target_seq, change, user_id, reply, reply_seq, reply_quote, reply_deleted,
                              edited_ms, deleted_ms, deleted_by)
        SELECT * FROM batch ORDER BY room, seq
        ON CONFLICT (room, seq) DO NOTHING
        RETURNING room, seq
    ), numbered AS (
        INSERT INTO rooms (room, epoch, last_seq)
        SELECT DISTINCT ON (room) room, epoch, seq FROM batch ORDER BY room, seq DESC
        ON CONFLICT (room) DO UPDATE SET epoch = EXCLUDED.epoch, last_seq = EXCLUDED.last_seq
            WHERE rooms.last_seq < EXCLUDED.last_seq
    )
    SELECT room, seq FROM stored";

/// The batch as one array per column, for [`INSERT`].
#[derive(Default)]
struct Columns<'a> {
    room: Vec<&'a str>,
    seq: Vec<i64>,
    epoch: Vec<&'a str>,
    ts_ms: Vec<i64>,
    member_id: Vec<&'a str>,
    username: Vec<&'a str>,
    body: Vec<&'a str>,
    client_id: Vec<&'a str>,
    attachments: Vec<Option<Vec<u8>>>,
    action: Vec<Option<&'static str>>,
    target_seq: Vec<Option<i64>>,
    change: Vec<Option<Vec<u8>>>,
    user_id: Vec<&'a str>,
    reply: Vec<Option<Vec<u8>>>,
    reply_seq: Vec<Option<i64>>,
    reply_quote: Vec<Option<&'a str>>,
    reply_deleted: Vec<bool>,
    edited_ms: Vec<i64>,
    deleted_ms: Vec<i64>,
    deleted_by: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, m: &'a StoredMessage) -> Result<(), StoreError> {
        if m.seq == 0 {
            return Err(StoreError::SeqOutOfRange(0));
        }
        self.room.push(&m.room);
        self.seq.push(bounds::seq(m.seq)?);
        self.epoch.push(&m.epoch);
        self.ts_ms.push(m.ts_ms);
        self.member_id.push(&m.member_id);
        self.username.push(&m.username);
        self.body.push(m.body());
        self.client_id.push(&m.client_id);
        self.attachments.push(m.attachments_column());
        self.action.push(m.action());
        self.target_seq.push(m.target_seq().map(bounds::seq).transpose()?);
        self.change.push(m.change_column());
        self.user_id.push(&m.user_id);
        self.reply.push(m.reply_column());
        self.reply_seq.push(m.reply_to.as_ref().map(|r| bounds::seq(r.seq)).transpose()?);
        self.reply_quote.push(m.reply_to.as_ref().map(|r| r.quote.as_str()));
        self.reply_deleted.push(m.reply_to.as_ref().is_some_and(|r| r.deleted));
        self.edited_ms.push(m.edited_ms);
        self.deleted_ms.push(m.deleted_ms);
        self.deleted_by.push(m.deleted_by_column());
        Ok(())
    }

    fn bind(self, query: &'a str) -> sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments> {
        sqlx::query(query)
            .bind(self.room)
            .bind(self.seq)
            .bind(self.epoch)
            .bind(self.ts_ms)
            .bind(self.member_id)
            .bind(self.username)
            .bind(self.body)
            .bind(self.client_id)
            .bind(self.attachments)
            .bind(self.action)
            .bind(self.target_seq)
            .bind(self.change)
            .bind(self.user_id)
            .bind(self.reply)
            .bind(self.reply_seq)
            .bind(self.reply_quote)
            .bind(self.reply_deleted)
            .bind(self.edited_ms)
            .bind(self.deleted_ms)
            .bind(self.deleted_by)
    }
}

impl Store {
    /// Stores `messages` (at most [`MAX_APPEND`] messages and changes, of
    /// any rooms, in any order) in one transaction and returns how many
    /// were new; those already stored are left as they are. Each new
    /// change is applied to its message (see [`changes`]).
    pub async fn append(&self, messages: &[StoredMessage]) -> Result<u64, StoreError> {
        if messages.len() > MAX_APPEND {
            return Err(StoreError::AppendTooMany(messages.len()));
        }
        if messages.is_empty() {
            return Ok(0);
        }
        let mut columns = Columns::default();
        for m in messages {
            columns.push(m)?;
        }
        let mut tx = self.pool.begin().await?;
        let rows = columns.bind(INSERT).fetch_all(&mut *tx).await?;
        // The batch's row for each new (room, seq): the first given.
        let mut given: HashMap<(&str, i64), &StoredMessage> = HashMap::with_capacity(messages.len());
        for m in messages {
            given.entry((m.room.as_str(), i64::try_from(m.seq).unwrap_or(i64::MAX))).or_insert(m);
        }
        let mut new = Vec::with_capacity(rows.len());
        for row in &rows {
            let (room, seq): (String, i64) = (row.try_get("room")?, row.try_get("seq")?);
            new.extend(given.get(&(room.as_str(), seq)).copied());
        }
        changes::apply(&mut tx, &new).await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }
}
