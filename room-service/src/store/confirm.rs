//! The write path that acknowledges (`STORE_SYNC`): an append that also
//! says which messages the store does not hold as given.
//!
//! An append skips a message whose `(room, seq)` is taken, which is right
//! for a copy of the same message (a retry, another writer) but not for a
//! different message under the same number: a room whose numbering in Redis
//! started again below what the store holds (Redis lost the room) numbers a
//! new message with a seq the store already has. Acknowledging that message
//! as committed would be a lie; [`Store::append_confirmed`] finds it, so
//! its sender gets an error instead. "As given" means the same event (who,
//! when, which client id, what it said, which change of which message),
//! not the same state: a message edited, deleted or reacted to since it
//! was first stored is still the message a retry of its send commits.

use std::collections::HashMap;

use super::row::{COLUMNS, from_row};
use super::{Store, StoreError, StoredMessage};

impl Store {
    /// [`Store::append`], then the indices of the `messages` the store does
    /// not hold as given (their place holds another message), with how many
    /// rows were new. Costs a second statement only when some place was
    /// already taken.
    pub async fn append_confirmed(&self, messages: &[StoredMessage]) -> Result<(u64, Vec<usize>), StoreError> {
        let new = self.append(messages).await?;
        if new == messages.len() as u64 {
            return Ok((new, Vec::new()));
        }
        let rooms: Vec<&str> = messages.iter().map(|m| m.room.as_str()).collect();
        let seqs: Vec<i64> = messages.iter().map(|m| super::bounds::seq(m.seq)).collect::<Result<_, _>>()?;
        // The rows now at the messages' places (a new statement: it sees
        // what concurrent writers committed meanwhile).
        let held = format!(
            "SELECT {COLUMNS} FROM messages WHERE (room, seq) IN (SELECT * FROM UNNEST($1::text[], $2::bigint[]))"
        );
        let rows = sqlx::query(&held).bind(rooms).bind(seqs).fetch_all(&self.pool).await?;
        let mut held = HashMap::with_capacity(rows.len());
        for row in &rows {
            let message = from_row(row)?;
            held.insert((message.room.clone(), message.seq), message);
        }
        let differ = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| !held.get(&(m.room.clone(), m.seq)).is_some_and(|held| held.holds(m)))
            .map(|(i, _)| i)
            .collect();
        Ok((new, differ))
    }
}
