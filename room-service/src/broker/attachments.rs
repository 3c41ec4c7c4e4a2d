//! Attachments' records in Redis: the [`Records`] of the [`RedisBroker`],
//! on one Redis or a Redis Cluster.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `chat:{at:<id>}` | hash | `room`, `user`, `at` (upload ms), `record` (the `Attachment`, protobuf), `posted` (the poster, once claimed) |
//! | `chat:attachments:unposted` | sorted set | ids of unposted attachments, scored by upload ms: what the sweep reads |
//! | `chat:{blob:<sha256>}:uses` | set | ids of the attachments whose file or thumbnail is that blob |
//! | `chat:blobs:candidates` | sorted set | blobs a refused Attach left, scored by when (ms) |
//!
//! Every atomic step touches one key (a Lua script on the attachment's
//! hash, or a MULTI on a blob's set), so each works on a cluster as on one
//! Redis; the steps across keys are ordered so a crash between them leaves
//! nothing wrong but a stale entry: the sorted set may list an attachment
//! posted or gone (the sweep's script checks again and drops the entry),
//! and a blob's set may name an attachment that was never recorded (then
//! that blob is kept: a crash may leak bytes, never delete used ones).
//!
//! None has a TTL: a posted attachment lives as long as messages can show
//! it; an unposted one until the sweep.

use std::sync::LazyLock;

use chat_proto::v1::Attachment;
use prost::Message;
use redis::{Cmd, Pipeline, Script, Value};

use super::redis::RedisBroker;
use super::{BrokerError, BrokerResult};
use crate::attachments::records::Poster;
use crate::attachments::{Claim, Records};

static CLAIM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("claim_attachment.lua")));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("release_attachment.lua")));
static SWEEP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("sweep_attachment.lua")));
/// ZREM only while the score is still before ARGV[2]: one key, atomic.
static FORGET_CANDIDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "local at = redis.call('ZSCORE', KEYS[1], ARGV[1]) \
         if at and tonumber(at) < tonumber(ARGV[2]) then return redis.call('ZREM', KEYS[1], ARGV[1]) end \
         return 0",
    )
});

const UNPOSTED: &str = "chat:attachments:unposted";
const CANDIDATES: &str = "chat:blobs:candidates";

fn attachment_key(id: &str) -> String {
    format!("chat:{{at:{id}}}")
}

fn uses_key(blob: &str) -> String {
    format!("chat:{{blob:{blob}}}:uses")
}

fn decode(record: &[u8]) -> BrokerResult<Attachment> {
    Attachment::decode(record).map_err(|e| BrokerError::Corrupt(format!("an attachment record: {e}")))
}

/// The blobs an attachment uses: its file's, and its thumbnail's if any.
pub(crate) fn blobs_of(attachment: &Attachment) -> impl Iterator<Item = &str> {
    [attachment.blob.as_str(), attachment.thumb_blob.as_str()].into_iter().filter(|b| !b.is_empty())
}

impl Records for RedisBroker {
    async fn put_attachment(&self, attachment: &Attachment) -> BrokerResult<()> {
        let mut conn = self.conn();
        // Uses first: a blob is never without the attachment that needs it.
        for blob in blobs_of(attachment) {
            let _: i64 = Cmd::sadd(uses_key(blob), &attachment.id).query_async(&mut conn).await?;
        }
        let fields: [(&str, Vec<u8>); 4] = [
            ("room", attachment.room.clone().into_bytes()),
            ("user", attachment.user_id.clone().into_bytes()),
            ("at", attachment.uploaded_ms.to_string().into_bytes()),
            ("record", attachment.encode_to_vec()),
        ];
        let () = Cmd::hset_multiple(attachment_key(&attachment.id), &fields).query_async(&mut conn).await?;
        let _: i64 = Cmd::zadd(UNPOSTED, &attachment.id, attachment.uploaded_ms).query_async(&mut conn).await?;
        Ok(())
    }

    async fn attachment(&self, id: &str) -> BrokerResult<Option<Attachment>> {
        let record: Option<Vec<u8>> = Cmd::hget(attachment_key(id), "record").query_async(&mut self.conn()).await?;
        record.map(|r| decode(&r)).transpose()
    }

    async fn claim(&self, id: &str, room: &str, user_id: &str, poster: &Poster) -> BrokerResult<Claim> {
        let mut conn = self.conn();
        let reply: Vec<Value> =
            CLAIM.key(attachment_key(id)).arg(room).arg(user_id).arg(poster.key()).invoke_async(&mut conn).await?;
        let mut parts = reply.into_iter();
        let status: String = parts
            .next()
            .map(redis::from_redis_value)
            .transpose()
            .map_err(|e| BrokerError::Corrupt(format!("a claim's answer: {e}")))?
            .unwrap_or_default();
        let rest: Option<Vec<u8>> = parts
            .next()
            .map(redis::from_redis_value)
            .transpose()
            .map_err(|e| BrokerError::Corrupt(format!("a claim's answer: {e}")))?;
        Ok(match status.as_str() {
            "ok" => {
                let _: i64 = Cmd::zrem(UNPOSTED, id).query_async(&mut conn).await?;
                Claim::Claimed(decode(&rest.unwrap_or_default())?)
            }
            "unknown" => Claim::Unknown,
            "room" => Claim::OtherRoom(String::from_utf8_lossy(&rest.unwrap_or_default()).into_owned()),
            "user" => Claim::OtherUser,
            "posted" => Claim::Posted,
            other => return Err(BrokerError::Corrupt(format!("a claim answered {other:?}"))),
        })
    }

    async fn release(&self, id: &str, poster: &Poster) -> BrokerResult<()> {
        let mut conn = self.conn();
        let at: Option<i64> = RELEASE.key(attachment_key(id)).arg(poster.key()).invoke_async(&mut conn).await?;
        if let Some(at) = at {
            let _: i64 = Cmd::zadd(UNPOSTED, id, at).query_async(&mut conn).await?;
        }
        Ok(())
    }

    async fn unposted_before(&self, before_ms: i64, limit: usize) -> BrokerResult<Vec<String>> {
        let limit = isize::try_from(limit).unwrap_or(isize::MAX);
        let ids: Vec<String> = Cmd::zrangebyscore_limit(UNPOSTED, "-inf", format!("({before_ms}"), 0, limit)
            .query_async(&mut self.conn())
            .await?;
        Ok(ids)
    }

    async fn remove_unposted(&self, id: &str) -> BrokerResult<Option<Attachment>> {
        let mut conn = self.conn();
        let record: Option<Vec<u8>> = SWEEP.key(attachment_key(id)).invoke_async(&mut conn).await?;
        // Posted, gone or removed now: either way no longer waiting.
        let _: i64 = Cmd::zrem(UNPOSTED, id).query_async(&mut conn).await?;
        record.map(|r| decode(&r)).transpose()
    }

    async fn drop_blob_use(&self, blob: &str, id: &str) -> BrokerResult<u64> {
        let key = uses_key(blob);
        let mut both = Pipeline::new();
        both.atomic().srem(&key, id).ignore().scard(&key);
        let (left,): (u64,) = both.query_async(&mut self.conn()).await?;
        Ok(left)
    }

    async fn blob_uses(&self, blob: &str) -> BrokerResult<u64> {
        Ok(Cmd::scard(uses_key(blob)).query_async(&mut self.conn()).await?)
    }

    async fn put_blob_candidate(&self, blob: &str, at_ms: i64) -> BrokerResult<()> {
        // GT: a blob refused again keeps the later time.
        let _: i64 =
            redis::cmd("ZADD").arg(CANDIDATES).arg("GT").arg(at_ms).arg(blob).query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn blob_candidates_before(&self, before_ms: i64, limit: usize) -> BrokerResult<Vec<String>> {
        let limit = isize::try_from(limit).unwrap_or(isize::MAX);
        let blobs: Vec<String> = Cmd::zrangebyscore_limit(CANDIDATES, "-inf", format!("({before_ms}"), 0, limit)
            .query_async(&mut self.conn())
            .await?;
        Ok(blobs)
    }

    async fn forget_blob_candidate(&self, blob: &str, before_ms: i64) -> BrokerResult<()> {
        let _: i64 = FORGET_CANDIDATE.key(CANDIDATES).arg(blob).arg(before_ms).invoke_async(&mut self.conn()).await?;
        Ok(())
    }
}
