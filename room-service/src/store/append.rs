//! The write path into the store: a batch of messages in one statement.

use super::bounds::{self, MAX_APPEND};
use super::{Store, StoreError, StoredMessage};

/// One multi-row insert whatever the batch size: each column goes as one
/// array parameter and `UNNEST` turns the arrays back into rows. A message
/// already stored (same room and seq) is skipped, so copying a batch again
/// after a crash or a takeover stores nothing twice.
///
/// Rows go in `(room, seq)` order: several writers may insert the same
/// messages at once (two room-services' archivers, or the `STORE_SYNC`
/// committer and the archiver), each waiting on the other's uncommitted
/// rows; taken in one order by all, those waits can never form a cycle
/// (a deadlock PostgreSQL would break by failing one of them after a
/// second).
const APPEND: &str = "
    INSERT INTO messages (room, seq, epoch, ts_ms, member_id, username, body, client_id)
    SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::bigint[],
                         $5::text[], $6::text[], $7::text[], $8::text[])
        AS m(room, seq, epoch, ts_ms, member_id, username, body, client_id)
    ORDER BY m.room, m.seq
    ON CONFLICT (room, seq) DO NOTHING";

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
        }
        let done = sqlx::query(APPEND)
            .bind(room)
            .bind(seq)
            .bind(epoch)
            .bind(ts_ms)
            .bind(member_id)
            .bind(username)
            .bind(text)
            .bind(client_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
