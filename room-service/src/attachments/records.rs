//! What a room-service keeps about attachments, beside rooms and people.
//!
//! An attachment is recorded at `Attach` (its metadata: room, uploader,
//! blobs), then either posted by one message — claimed by that message's
//! sender member and client id, so a retried send claims it again while
//! any other message is refused — or swept once it has waited for a message
//! longer than the upload TTL. Each blob (file or thumbnail) knows the
//! attachments that use it, so the sweep deletes a blob only when the last
//! of them went. A blob whose Attach was refused is recorded as a
//! candidate: nothing may reference it, so the sweep deletes it once it
//! is older than the upload TTL, if no attachment uses it by then.

use std::future::Future;

use chat_proto::v1::Attachment;

use crate::broker::BrokerResult;

/// Who posts an attachment: the message's sender and its client id. The
/// same pair again is a retry of the same send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poster {
    pub member_id: String,
    pub client_id: String,
}

impl Poster {
    /// As the records keep it: one string (a member id holds no newline).
    pub(crate) fn key(&self) -> String {
        format!("{}\n{}", self.member_id, self.client_id)
    }
}

/// What claiming an attachment for a message found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// Claimed for this poster (now, or by an earlier try of the same send).
    Claimed(Attachment),
    /// No attachment has this id (never attached, or swept).
    Unknown,
    /// It was attached to another room, named here.
    OtherRoom(String),
    /// Another user attached it.
    OtherUser,
    /// Another message posted it already.
    Posted,
}

/// Attachments' records. Methods take checked ids, rooms and user ids.
pub trait Records: Send + Sync + 'static {
    /// Records a new attachment as unposted (its `id` is fresh), and that
    /// it uses its blob and thumbnail blob.
    fn put_attachment(&self, attachment: &Attachment) -> impl Future<Output = BrokerResult<()>> + Send;

    /// An attachment's record, posted or not; `None` for an unknown id.
    fn attachment(&self, id: &str) -> impl Future<Output = BrokerResult<Option<Attachment>>> + Send;

    /// Claims attachment `id` for `poster`'s message in `room` by `user_id`,
    /// in one atomic step: the record must exist, be that room's and that
    /// user's, and be unposted or posted by the same poster (a retry).
    fn claim(
        &self,
        id: &str,
        room: &str,
        user_id: &str,
        poster: &Poster,
    ) -> impl Future<Output = BrokerResult<Claim>> + Send;

    /// Undoes `poster`'s claim on `id` (its message was refused, so nothing
    /// posted it); a claim by anyone else stays.
    fn release(&self, id: &str, poster: &Poster) -> impl Future<Output = BrokerResult<()>> + Send;

    /// Ids of unposted attachments uploaded before `before_ms`, oldest
    /// first, at most `limit`.
    fn unposted_before(&self, before_ms: i64, limit: usize) -> impl Future<Output = BrokerResult<Vec<String>>> + Send;

    /// Deletes attachment `id` if it is still unposted (atomically: a send
    /// claiming it at the same moment wins or loses whole), and answers its
    /// record then; `None` when it was posted (or is gone).
    fn remove_unposted(&self, id: &str) -> impl Future<Output = BrokerResult<Option<Attachment>>> + Send;

    /// Forgets that attachment `id` uses `blob`; answers how many
    /// attachments use it still (0: nothing does, its bytes may go).
    fn drop_blob_use(&self, blob: &str, id: &str) -> impl Future<Output = BrokerResult<u64>> + Send;

    /// How many attachments use `blob` (as their file or thumbnail).
    fn blob_uses(&self, blob: &str) -> impl Future<Output = BrokerResult<u64>> + Send;

    /// Records that a refused Attach left `blob` in the object store at
    /// `at_ms` (a blob refused again keeps the later time).
    fn put_blob_candidate(&self, blob: &str, at_ms: i64) -> impl Future<Output = BrokerResult<()>> + Send;

    /// Candidate blobs left before `before_ms`, oldest first, at most `limit`.
    fn blob_candidates_before(
        &self,
        before_ms: i64,
        limit: usize,
    ) -> impl Future<Output = BrokerResult<Vec<String>>> + Send;

    /// Forgets candidate `blob`, unless it was left again at or after
    /// `before_ms` (then it waits for its new grace).
    fn forget_blob_candidate(&self, blob: &str, before_ms: i64) -> impl Future<Output = BrokerResult<()>> + Send;
}
