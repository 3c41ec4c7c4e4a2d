//! Attachments' records in the store: the PostgreSQL copy of what the
//! broker's [`Records`](crate::attachments::Records) keep in Redis (see
//! `migrations/0005_attachment_records.sql`), and the blobs a refused
//! Attach left behind.
//!
//! The service writes every change through to here (`attachments::
//! write_through`) and reads back from here when Redis has lost a record.
//! With a store this table is the authority on two questions Redis can
//! forget the answer to: "is this attachment posted?" (a claim here is
//! the one that counts: the sweep removes only rows still unposted here,
//! in one statement) and "does any attachment use blob B?" (the sweep
//! deletes bytes only when the count here is 0).
//!
//! Each method means what the `Records` method of the same name means;
//! claims and releases here are idempotent like there, so a retry after a
//! failed write completes it.

use chat_proto::v1::Attachment;
use prost::Message;
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row, Transaction};

use super::{Store, StoreError};
use crate::attachments::{Claim, Poster};

/// A record written twice (a retried Attach write) stays as first written.
const PUT: &str = "
    INSERT INTO attachments (id, room, user_id, blob, thumb_blob, uploaded_ms, poster_member, poster_client, record)
    VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, $7, $8, $9)
    ON CONFLICT (id) DO NOTHING";

/// Locks the row: two claims (or a claim and the sweep's delete) of one
/// attachment take turns, and the second sees what the first did.
const FOR_CLAIM: &str = "
    SELECT room, user_id, poster_member, poster_client, record FROM attachments WHERE id = $1 FOR UPDATE";

const CLAIM: &str = "UPDATE attachments SET poster_member = $2, poster_client = $3 WHERE id = $1";

const RELEASE: &str = "
    UPDATE attachments SET poster_member = NULL, poster_client = NULL
    WHERE id = $1 AND poster_member = $2 AND poster_client = $3";

/// One range of the partial index `attachments_unposted`.
const UNPOSTED_BEFORE: &str = "
    SELECT id FROM attachments WHERE poster_member IS NULL AND uploaded_ms < $1
    ORDER BY uploaded_ms, id LIMIT $2";

/// Atomic against a claim: a row claimed meanwhile is not unposted any
/// more when the delete gets its lock, and stays.
const REMOVE_UNPOSTED: &str = "DELETE FROM attachments WHERE id = $1 AND poster_member IS NULL RETURNING record";

/// Two index probes (file, thumbnail), OR-ed by a bitmap scan.
const BLOB_USES: &str = "SELECT count(*) FROM attachments WHERE blob = $1 OR thumb_blob = $1";

/// A blob refused again keeps the later time: its grace starts over.
const PUT_CANDIDATE: &str = "
    INSERT INTO blob_candidates (blob, since_ms) VALUES ($1, $2)
    ON CONFLICT (blob) DO UPDATE SET since_ms = GREATEST(blob_candidates.since_ms, EXCLUDED.since_ms)";

const CANDIDATES_BEFORE: &str = "SELECT blob FROM blob_candidates WHERE since_ms < $1 ORDER BY since_ms, blob LIMIT $2";

/// Only while still older than `before`: one refused again meanwhile stays.
const FORGET_CANDIDATE: &str = "DELETE FROM blob_candidates WHERE blob = $1 AND since_ms < $2";

fn decode(row: &PgRow) -> Result<Attachment, StoreError> {
    let bytes: Vec<u8> = row.try_get("record")?;
    Attachment::decode(bytes.as_slice())
        .map_err(|e| StoreError::Database(sqlx::Error::ColumnDecode { index: "record".into(), source: e.into() }))
}

fn poster(row: &PgRow) -> Result<Option<Poster>, StoreError> {
    let member: Option<String> = row.try_get("poster_member")?;
    let client: Option<String> = row.try_get("poster_client")?;
    Ok(member.zip(client).map(|(member_id, client_id)| Poster { member_id, client_id }))
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

impl Store {
    /// Records an attachment, unposted or posted by `posted` (a record
    /// Redis had and this store lacked); a second put of the same id
    /// changes nothing.
    pub async fn put_attachment(&self, attachment: &Attachment, posted: Option<&Poster>) -> Result<(), StoreError> {
        sqlx::query(PUT)
            .bind(&attachment.id)
            .bind(&attachment.room)
            .bind(&attachment.user_id)
            .bind(&attachment.blob)
            .bind(&attachment.thumb_blob)
            .bind(attachment.uploaded_ms)
            .bind(posted.map(|p| p.member_id.as_str()))
            .bind(posted.map(|p| p.client_id.as_str()))
            .bind(attachment.encode_to_vec())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// An attachment's record and who posted it (`None`: unposted);
    /// `None` for an unknown id.
    pub async fn attachment(&self, id: &str) -> Result<Option<(Attachment, Option<Poster>)>, StoreError> {
        let row = sqlx::query("SELECT poster_member, poster_client, record FROM attachments WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| Ok((decode(&row)?, poster(&row)?))).transpose()
    }

    /// Claims attachment `id` for `poster`'s message in `room` by
    /// `user_id`, in one transaction holding the row's lock: as
    /// [`Records::claim`](crate::attachments::Records::claim).
    pub async fn claim_attachment(
        &self,
        id: &str,
        room: &str,
        user_id: &str,
        poster: &Poster,
    ) -> Result<Claim, StoreError> {
        let mut tx: Transaction<'_, Postgres> = self.pool.begin().await?;
        let Some(row) = sqlx::query(FOR_CLAIM).bind(id).fetch_optional(&mut *tx).await? else {
            return Ok(Claim::Unknown);
        };
        let recorded_room: String = row.try_get("room")?;
        if recorded_room != room {
            return Ok(Claim::OtherRoom(recorded_room));
        }
        let recorded_user: String = row.try_get("user_id")?;
        if recorded_user != user_id {
            return Ok(Claim::OtherUser);
        }
        match self::poster(&row)? {
            Some(by) if &by != poster => return Ok(Claim::Posted),
            Some(_) => {}
            None => {
                sqlx::query(CLAIM).bind(id).bind(&poster.member_id).bind(&poster.client_id).execute(&mut *tx).await?;
            }
        }
        let attachment = decode(&row)?;
        tx.commit().await?;
        Ok(Claim::Claimed(attachment))
    }

    /// Undoes `poster`'s claim on `id`; anyone else's stays.
    pub async fn release_attachment(&self, id: &str, poster: &Poster) -> Result<(), StoreError> {
        sqlx::query(RELEASE).bind(id).bind(&poster.member_id).bind(&poster.client_id).execute(&self.pool).await?;
        Ok(())
    }

    /// Ids of unposted attachments uploaded before `before_ms`, oldest
    /// first, at most `limit`.
    pub async fn unposted_before(&self, before_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let ids = sqlx::query_scalar(UNPOSTED_BEFORE).bind(before_ms).bind(self::limit(limit)).fetch_all(&self.pool);
        Ok(ids.await?)
    }

    /// Deletes attachment `id` if it is unposted; its record then, `None`
    /// when it is posted or unknown.
    pub async fn remove_unposted(&self, id: &str) -> Result<Option<Attachment>, StoreError> {
        let row = sqlx::query(REMOVE_UNPOSTED).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(decode).transpose()
    }

    /// How many attachments use `blob`, as their file or their thumbnail.
    pub async fn blob_uses(&self, blob: &str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(BLOB_USES).bind(blob).fetch_one(&self.pool).await?;
        Ok(u64::try_from(count).unwrap_or_default())
    }

    /// Records `blob` as left behind by a refused Attach at `since_ms`.
    pub async fn put_blob_candidate(&self, blob: &str, since_ms: i64) -> Result<(), StoreError> {
        sqlx::query(PUT_CANDIDATE).bind(blob).bind(since_ms).execute(&self.pool).await?;
        Ok(())
    }

    /// Blobs left behind before `before_ms`, oldest first, at most `limit`.
    pub async fn blob_candidates_before(&self, before_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
        let blobs =
            sqlx::query_scalar(CANDIDATES_BEFORE).bind(before_ms).bind(self::limit(limit)).fetch_all(&self.pool);
        Ok(blobs.await?)
    }

    /// Forgets candidate `blob` if it was left behind before `before_ms`.
    pub async fn forget_blob_candidate(&self, blob: &str, before_ms: i64) -> Result<(), StoreError> {
        sqlx::query(FORGET_CANDIDATE).bind(blob).bind(before_ms).execute(&self.pool).await?;
        Ok(())
    }
}
