//! Attach and GetAttachment: a gateway records a file it stored for a user
//! in a room, and looks one up before serving its bytes. Posting them is
//! part of Send (`attachments::claim`).
//!
//! Only a user who has the room (one of their rooms in the people
//! directory) may attach to it; right after a join that record may still
//! be being written, so a miss waits for it once and looks again, as
//! MarkRead does.
//!
//! A refused Attach leaves the gateway's stored bytes referenced by
//! nothing. The gateway never deletes them (blobs are content-addressed:
//! the same bytes may be a posted attachment's); their blob names are
//! recorded here as candidates for the sweep, which deletes one only once
//! it is older than the upload TTL and no attachment uses it.

use chat_proto::files::{check_file_name, is_attachment_id, is_blob, new_attachment_id};
use chat_proto::people::check_user_id;
use chat_proto::v1::{AttachRequest, Attachment, GetAttachmentRequest};
use chat_proto::{ErrorCode, RoomName};
use chat_runtime::clock::now_ms;
use tonic::{Code, Status};

use super::{Rooms, refusal};
use crate::attachments::Records;
use crate::attachments::claim::bad_attachment;
use crate::broker::Broker;
use crate::people::Directory;

/// The longest MIME type accepted (RFC 6838 allows 127 + 1 + 127).
const MAX_CONTENT_TYPE_BYTES: usize = 255;

fn not_in_room(room: &str) -> Status {
    refusal(Code::PermissionDenied, ErrorCode::Forbidden, format!("you are not in room {room}: join it first"))
}

/// Checks what a gateway says it stored; the message says which field.
fn check_stored(a: &Attachment) -> Result<(), Status> {
    if a.content_type.is_empty()
        || a.content_type.len() > MAX_CONTENT_TYPE_BYTES
        || !a.content_type.bytes().all(|b| b.is_ascii_graphic())
        || !a.content_type.contains('/')
    {
        return Err(bad_attachment(format!(
            "content_type {:?} is not a MIME type (e.g. image/png, at most {MAX_CONTENT_TYPE_BYTES} bytes)",
            a.content_type
        )));
    }
    if !is_blob(&a.blob) {
        return Err(bad_attachment(format!("blob {:?} is not a SHA-256 in lowercase hex", a.blob)));
    }
    let has_thumb = !a.thumb_blob.is_empty();
    if has_thumb && !is_blob(&a.thumb_blob) {
        return Err(bad_attachment(format!("thumb_blob {:?} is not a SHA-256 in lowercase hex", a.thumb_blob)));
    }
    if has_thumb != (a.thumb_width > 0 && a.thumb_height > 0) {
        return Err(bad_attachment("a thumbnail needs thumb_blob, thumb_width and thumb_height, or none of them"));
    }
    if (a.width == 0) != (a.height == 0) {
        return Err(bad_attachment("an image has both width and height; other files neither"));
    }
    Ok(())
}

impl<B: Broker + Directory + Records> Rooms<B> {
    /// Whether `room` is one of `user`'s rooms, waiting once for a join
    /// being recorded.
    async fn has_room(&self, user: &str, room: &str) -> Result<bool, Status> {
        let people = self.inbox.people();
        if people.user_room(user, room).await?.is_some() {
            return Ok(true);
        }
        if let Some(recorded) = self.inbox.recording().wait(room) {
            recorded.await;
        }
        Ok(people.user_room(user, room).await?.is_some())
    }

    pub(super) async fn attach_file(&self, request: AttachRequest) -> Result<Attachment, Status> {
        let AttachRequest { user_id, attachment } = request;
        let Some(attachment) = attachment else {
            return Err(bad_attachment("attachment is missing: give the stored file's metadata"));
        };
        let stored: Vec<String> =
            [&attachment.blob, &attachment.thumb_blob].into_iter().filter(|b| is_blob(b)).cloned().collect();
        let refused = match self.record_attachment(user_id, attachment).await {
            Ok(attachment) => return Ok(attachment),
            Err(refused) => refused,
        };
        // Whatever the refusal (a failure too: the gateway may never retry),
        // a candidate costs nothing unless nothing uses the bytes.
        let at = now_ms();
        for blob in &stored {
            if let Err(error) = self.attachments.put_blob_candidate(blob, at).await {
                // Bytes kept that nothing references: a leak, never a loss.
                tracing::warn!(blob, %error, "could not record a refused upload's blob for the sweep");
            }
        }
        Err(refused)
    }

    async fn record_attachment(&self, user_id: String, mut attachment: Attachment) -> Result<Attachment, Status> {
        check_user_id(&user_id).map_err(|e| bad_attachment(e.message))?;
        let room = RoomName::try_from(attachment.room.as_str()).map_err(|e| bad_attachment(e.message))?;
        attachment.name = check_file_name(&attachment.name).map_err(bad_attachment)?;
        check_stored(&attachment)?;
        if !self.has_room(&user_id, &room).await? {
            return Err(not_in_room(&room));
        }
        attachment.id = new_attachment_id(rand::random());
        attachment.room = room.into();
        attachment.user_id = user_id;
        // This process's clock, the one the sweep compares with.
        attachment.uploaded_ms = now_ms();
        self.attachments.put_attachment(&attachment).await.map_err(|e| self.failed(e))?;
        tracing::debug!(id = attachment.id, size = attachment.size, "attachment recorded");
        Ok(attachment)
    }

    pub(super) async fn find_attachment(&self, request: GetAttachmentRequest) -> Result<Attachment, Status> {
        let GetAttachmentRequest { id, user_id } = request;
        if !is_attachment_id(&id) {
            return Err(bad_attachment(format!("{id:?} is not an attachment id (\"at-\" and 32 hex digits)")));
        }
        let attachment = self
            .attachments
            .attachment(&id)
            .await
            .map_err(|e| self.failed(e))?
            .ok_or_else(|| refusal(Code::NotFound, ErrorCode::BadAttachment, format!("no attachment {id}")))?;
        if !user_id.is_empty() && !self.has_room(&user_id, &attachment.room).await? {
            return Err(not_in_room(&attachment.room));
        }
        Ok(attachment)
    }
}
