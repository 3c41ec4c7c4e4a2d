//! Where a room's numbering stands in the store: the `rooms` row the
//! archiver's append keeps (see `migrations/0002_rooms.sql`). Read when
//! Redis has lost a room, to seed it so the room keeps its epoch and goes on
//! from its last seq.

use super::{Store, StoreError};

/// A room's epoch and the highest seq the store has taken for it (kept
/// when retention deleted the messages themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbering {
    pub epoch: String,
    pub last_seq: u64,
}

impl Store {
    /// The room's numbering; `None` for a room the store never took a
    /// message of.
    pub async fn numbering(&self, room: &str) -> Result<Option<Numbering>, StoreError> {
        let row: Option<(String, i64)> = sqlx::query_as("SELECT epoch, last_seq FROM rooms WHERE room = $1")
            .bind(room)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(epoch, last_seq)| Numbering { epoch, last_seq: last_seq.unsigned_abs() }))
    }
}
