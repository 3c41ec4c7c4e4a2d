//! The write path into the store: a batch of messages in one statement,
//! which also moves each room's numbering forward.

use super::bounds::{self, MAX_APPEND};
use super::{Store, StoreError, StoredMessage};

/// One multi-row insert whatever the batch size: each column goes as one
/// array parameter and `UNNEST` turns the arrays back into rows. A message
/// already stored (same room and seq) is skipped, so copying a batch again
/// after a crash or a takeover stores nothing twice.
///
/// The same statement moves each room's numbering (`rooms`, see
/// `migrations/0002_rooms.sql`) up to the batch's newest message of that
/// room: one upsert per room, only forward, so a batch archived late by a
/// second room-service never moves it back.
///
/// Rows go in `(room, seq)` order: several writers may insert the same
/// messages at once (two room-services' archivers, or the `STORE_SYNC`
/// committer and the archiver), each waiting on the other's uncommitted
/// rows; taken in one order by all, those waits can never form a cycle
/// (a deadlock PostgreSQL would break by failing one of them after a
/// second).
const APPEND: &str = "
    WITH batch AS (
        SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::bigint[],
                             $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[])
            AS b (room, seq, epoch, ts_ms, member_id, username, body, client_id, attachments)
    ), stored AS (
        INSERT INTO messages (room, seq, epoch, ts_ms, member_id, username, body, client_id, attachments)
        SELECT * FROM batch ORDER BY room, seq
        ON CONFLICT (room, seq) DO NOTHING
        RETURNING 1
    ), numbered AS (
        INSERT INTO rooms (room, epoch, last_seq)
        SELECT DISTINCT ON (room) room, epoch, seq FROM batch ORDER BY room, seq DESC
        ON CONFLICT (room) DO UPDATE SET epoch = EXCLUDED.epoch, last_seq = EXCLUDED.last_seq
            WHERE rooms.last_seq < EXCLUDED.last_seq
    )
    SELECT count(*) FROM stored";

impl Store {
    /// Stores `messages` (at most [`MAX_APPEND`], of any rooms, in any
    /// order) in one statement and returns how many were new; those already
    /// stored are left as they are.
    pub async fn append(&self, messages: &[StoredMessage]) -> Result<u64, StoreError> {
        if messages.len() > MAX_APPEND {
            return Err(StoreError::AppendTooMany(messages.len()));
        }
        if messages.is_empty() {
            return Ok(0);
        }
        let n = messages.len();
        let (mut room, mut seq, mut epoch, mut ts_ms) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut member_id, mut username, mut text, mut client_id) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let mut attachments = Vec::with_capacity(n);
        for m in messages {
            if m.seq == 0 {
                return Err(StoreError::SeqOutOfRange(0));
            }
            room.push(m.room.as_str());
            seq.push(bounds::seq(m.seq)?);
            epoch.push(m.epoch.as_str());
            ts_ms.push(m.ts_ms);
            member_id.push(m.member_id.as_str());
            username.push(m.username.as_str());
            text.push(m.text.as_str());
            client_id.push(m.client_id.as_str());
            attachments.push(m.attachments_column());
        }
        let new: i64 = sqlx::query_scalar(APPEND)
            .bind(room)
            .bind(seq)
            .bind(epoch)
            .bind(ts_ms)
            .bind(member_id)
            .bind(username)
            .bind(text)
            .bind(client_id)
            .bind(attachments)
            .fetch_one(&self.pool)
            .await?;
        Ok(new.unsigned_abs())
    }
}
