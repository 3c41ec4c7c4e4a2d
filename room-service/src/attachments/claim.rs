//! A send's attachment ids turned into the attachments its message carries.
//!
//! Each id is claimed for the message's poster (its sender and client id)
//! in one atomic step per attachment; when one is refused, the ones this
//! send claimed so far are released, so a refused send leaves nothing
//! claimed. A retry of a send (same client id) claims its attachments again
//! and succeeds, and the broker then answers the message stored the first
//! time.

use chat_proto::ErrorCode;
use chat_proto::files::{MAX_ATTACHMENTS, is_attachment_id};
use chat_proto::v1::Attachment;
use tonic::{Code, Status};

use super::records::{Claim, Poster, Records};
use crate::broker::BrokerError;
use crate::service::refusal;

/// A refusal with code `bad_attachment`.
pub(crate) fn bad_attachment(message: impl Into<String>) -> Status {
    refusal(Code::InvalidArgument, ErrorCode::BadAttachment, message)
}

/// Checks a send's ids before anything is claimed: at most
/// [`MAX_ATTACHMENTS`], each an attachment id, none twice, and a user to
/// check them against.
pub(crate) fn check_ids(ids: &[String], user_id: &str) -> Result<(), Status> {
    if ids.len() > MAX_ATTACHMENTS {
        return Err(bad_attachment(format!("{} attachments: a message carries at most {MAX_ATTACHMENTS}", ids.len())));
    }
    for (index, id) in ids.iter().enumerate() {
        if !is_attachment_id(id) {
            return Err(bad_attachment(format!(
                "{id:?} is not an attachment id (\"at-\" and 32 hex digits, as the upload answered)"
            )));
        }
        if ids[..index].contains(id) {
            return Err(bad_attachment(format!("attachment {id} is named twice")));
        }
    }
    if !ids.is_empty() && user_id.is_empty() {
        return Err(bad_attachment("attachments need the sender's user_id: whose uploads they are"));
    }
    Ok(())
}

/// Claims every id (already checked by [`check_ids`]) for `poster`'s
/// message in `room`; the attachments in the order given, or why not.
pub(crate) async fn claim_all<R: Records>(
    records: &R,
    room: &str,
    user_id: &str,
    poster: &Poster,
    ids: &[String],
) -> Result<Vec<Attachment>, Status> {
    let mut claimed = Vec::with_capacity(ids.len());
    for id in ids {
        let refused = match records.claim(id, room, user_id, poster).await {
            Ok(Claim::Claimed(attachment)) => {
                claimed.push(attachment);
                continue;
            }
            Ok(Claim::Unknown) => {
                bad_attachment(format!("no attachment {id}: upload the file again (unposted uploads expire)"))
            }
            Ok(Claim::OtherRoom(other)) => {
                bad_attachment(format!("attachment {id} was uploaded to room {other}, not {room}: post it there"))
            }
            Ok(Claim::OtherUser) => bad_attachment(format!("attachment {id} was uploaded by someone else")),
            Ok(Claim::Posted) => bad_attachment(format!("attachment {id} is posted already, in another message")),
            Err(error) => Status::from(error),
        };
        release_all(records, poster, &claimed).await;
        return Err(refused);
    }
    Ok(claimed)
}

/// Releases `poster`'s claims on `attachments`: its message was not stored.
pub(crate) async fn release_all<R: Records>(records: &R, poster: &Poster, attachments: &[Attachment]) {
    for attachment in attachments {
        if let Err(error) = records.release(&attachment.id, poster).await {
            // It stays claimed by a message that does not exist: the same
            // send retried still posts it; nothing else can.
            let error: BrokerError = error;
            tracing::warn!(id = attachment.id, %error, "could not release an attachment");
        }
    }
}
