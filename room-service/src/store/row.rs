//! How a [`StoredMessage`] is a row of `messages` (see
//! `migrations/0006_message_changes.sql`) and back.
//!
//! Most fields are a column each. Three are split so that SQL can change
//! them in place when a message is deleted, without decoding protobuf:
//! - an edit's text goes in `body` (the change's own protobuf, in `change`,
//!   is kept without it), so deleting the message blanks it;
//! - a reply's quote and whether its message was deleted go in
//!   `reply_quote` and `reply_deleted` (the rest of its `ReplyTo` in
//!   `reply`), so deleting that message blanks the quote;
//! - reactions are two parallel arrays, emoji and count, so the append
//!   rewrites them from `reaction_counts`.

use chat_proto::v1::message_change::Change;
use chat_proto::v1::{AttachmentList, MessageChange, ModerationNotice, Reaction, ReplyTo};
use prost::Message;
use sqlx::Row;
use sqlx::postgres::PgRow;

use super::StoredMessage;

/// The columns [`from_row`] reads, in a `SELECT` from `messages` (unaliased).
pub(crate) const COLUMNS: &str = "room, seq, epoch, ts_ms, member_id, username, body, client_id, attachments, \
     action, change, user_id, reply, reply_quote, reply_deleted, edited_ms, deleted_ms, deleted_by, \
     reaction_emoji, reaction_count";

impl StoredMessage {
    /// The `body` column: the text, or an edit's new text.
    pub(crate) fn body(&self) -> &str {
        match self.change.as_ref().and_then(|c| c.change.as_ref()) {
            Some(Change::Edited(edited)) => &edited.text,
            _ if self.is_change() => "",
            _ => &self.text,
        }
    }

    /// The `attachments` column: NULL for none.
    pub(crate) fn attachments_column(&self) -> Option<Vec<u8>> {
        (!self.attachments.is_empty()).then(|| AttachmentList { attachments: self.attachments.clone() }.encode_to_vec())
    }

    /// The `change` column: the change without an edit's text (that is
    /// `body`); NULL for a message.
    pub(crate) fn change_column(&self) -> Option<Vec<u8>> {
        if let Some(notice) = &self.moderation {
            return Some(notice.encode_to_vec());
        }
        let mut change = self.change.clone()?;
        if let Some(Change::Edited(edited)) = &mut change.change {
            edited.text.clear();
        }
        Some(change.encode_to_vec())
    }

    /// The `target_seq` column: the message a change changes.
    pub(crate) fn target_seq(&self) -> Option<u64> {
        // A moderator's action changes no message: 0, which names none.
        self.change.as_ref().map(|c| c.target_seq).or(self.moderation.as_ref().map(|_| 0))
    }

    /// The `reply` column: the `ReplyTo` without its quote and deletion.
    pub(crate) fn reply_column(&self) -> Option<Vec<u8>> {
        let reply = self.reply_to.as_ref()?;
        Some(ReplyTo { quote: String::new(), deleted: false, ..reply.clone() }.encode_to_vec())
    }

    /// The `deleted_by` column. A delete change row holds who its target's
    /// `deleted_by` becomes: the moderator's name, or '' for the sender.
    pub(crate) fn deleted_by_column(&self) -> &str {
        match self.change.as_ref().and_then(|c| c.change.as_ref()) {
            Some(Change::Deleted(deleted)) if deleted.by_moderator => &self.username,
            _ if self.is_change() => "",
            _ => &self.deleted_by,
        }
    }
}

/// Reads the [`COLUMNS`] of a row.
pub(crate) fn from_row(row: &PgRow) -> Result<StoredMessage, sqlx::Error> {
    let seq: i64 = row.try_get("seq")?;
    let action: Option<String> = row.try_get("action")?;
    let body: String = row.try_get("body")?;
    let stored_change: Option<Vec<u8>> = row.try_get("change")?;
    let (stored_change, moderation) = match (action.as_deref(), stored_change) {
        (Some("moderation"), Some(bytes)) => {
            (None, Some(ModerationNotice::decode(bytes.as_slice()).map_err(|e| decode("change", e))?))
        }
        (_, bytes) => (bytes, None),
    };
    let change = match stored_change {
        None => None,
        Some(bytes) => {
            let mut change = MessageChange::decode(bytes.as_slice()).map_err(|e| decode("change", e))?;
            if let Some(Change::Edited(edited)) = &mut change.change {
                edited.text = body.clone();
            }
            Some(change)
        }
    };
    let reply_to = match row.try_get::<Option<Vec<u8>>, _>("reply")? {
        None => None,
        Some(bytes) => Some(ReplyTo {
            quote: row.try_get::<Option<String>, _>("reply_quote")?.unwrap_or_default(),
            deleted: row.try_get("reply_deleted")?,
            ..ReplyTo::decode(bytes.as_slice()).map_err(|e| decode("reply", e))?
        }),
    };
    let emoji: Vec<String> = row.try_get::<Option<Vec<String>>, _>("reaction_emoji")?.unwrap_or_default();
    let counts: Vec<i32> = row.try_get::<Option<Vec<i32>>, _>("reaction_count")?.unwrap_or_default();
    let reactions = emoji
        .into_iter()
        .zip(counts)
        // The table's CHECK keeps counts at 0 or above; 0 is never copied.
        .map(|(emoji, count)| Reaction { emoji, count: count.unsigned_abs(), mine: false })
        .collect();
    Ok(StoredMessage {
        room: row.try_get("room")?,
        // The table's CHECK keeps seq above 0.
        seq: u64::try_from(seq).map_err(|e| decode("seq", e))?,
        epoch: row.try_get("epoch")?,
        ts_ms: row.try_get("ts_ms")?,
        member_id: row.try_get("member_id")?,
        username: row.try_get("username")?,
        text: if action.is_some() { String::new() } else { body },
        client_id: row.try_get("client_id")?,
        attachments: match row.try_get::<Option<Vec<u8>>, _>("attachments")? {
            None => Vec::new(),
            Some(bytes) => AttachmentList::decode(bytes.as_slice()).map_err(|e| decode("attachments", e))?.attachments,
        },
        user_id: row.try_get("user_id")?,
        reply_to,
        edited_ms: row.try_get("edited_ms")?,
        deleted_ms: row.try_get("deleted_ms")?,
        // On a change row the column says what the change does, not whom.
        deleted_by: if action.is_some() { String::new() } else { row.try_get("deleted_by")? },
        reactions,
        change,
        moderation,
    })
}

fn decode(column: &str, error: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::ColumnDecode { index: column.into(), source: error.into() }
}
