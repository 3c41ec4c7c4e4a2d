//! `POST /upload?room=&name=&session=[&token=]`: the body is the file.
//!
//! Checked first, before a byte is read: the page's origin, the token, the
//! session, the name, `Content-Length` against `MAX_UPLOAD_BYTES` (413),
//! the user's upload rate (429) and the gateway's uploads in flight (503).
//! Then the body streams into the blob store (hashed as it passes; only
//! the first [`HEAD_BYTES`] kept in memory) and is cut off with 413 the
//! moment it passes the limit, whatever `Content-Length` said. What the
//! bytes are decides the rest: a file that claims to be an image and is
//! not is 415; an image over `MAX_IMAGE_PIXELS` is 422 before decoding; an
//! image is stripped and thumbnailed on the worker pool. Last, `Attach` at
//! the room's room-service, and 201 with the attachment.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use chat_proto::files::check_file_name;
use chat_proto::v1::{AttachRequest, Attachment};
use futures_util::StreamExt;
use tonic::Code;

use super::images::BadImage;
use super::sniff::{HEAD_BYTES, check_claim, claimed_image, sniff};
use super::{FileError, attachment_json, now_secs};
use crate::app::AppState;
use crate::auth::{query_param, token_param};
use crate::session_token::SessionToken;

pub(crate) async fn upload(State(state): State<AppState>, headers: HeaderMap, uri: Uri, body: Body) -> Response {
    match receive(&state, &headers, &uri, body).await {
        Ok(attachment) => {
            (StatusCode::CREATED, Json(attachment_json(&state.files.signer, &attachment, now_secs()))).into_response()
        }
        Err(refused) => refused.into_response(),
    }
}

async fn receive(state: &AppState, headers: &HeaderMap, uri: &Uri, body: Body) -> Result<Attachment, FileError> {
    let files = &state.files;
    let gate = &state.gate;
    let query = uri.query();
    gate.origins.check(headers).map_err(|why| FileError::new(StatusCode::FORBIDDEN, "forbidden", why))?;
    let identity = match &gate.tokens {
        None => None,
        Some(keys) => Some(
            keys.verify(token_param(query).as_deref())
                .map_err(|why| FileError::new(StatusCode::UNAUTHORIZED, "unauthorized", why.to_string()))?,
        ),
    };
    let room = query_param(query, "room").filter(|r| !r.is_empty()).ok_or_else(|| {
        FileError::bad_request("say which room the file is for: /upload?room=<room>&name=<file name>&session=<session>")
    })?;
    chat_proto::names::check_room(&room).map_err(|why| FileError::bad_request(why.to_string()))?;
    let session = query_param(query, "session")
        .ok_or_else(|| FileError::bad_request("no session: upload with the session the WebSocket's welcome gave"))?;
    let session = SessionToken::parse(&session).map_err(FileError::bad_request)?;
    // The same user id the WebSocket session has: the token's subject,
    // else this browser session's member id.
    let user_id = identity.as_ref().map_or_else(|| session.member_id(None), |identity| identity.user.clone());
    let name = check_file_name(&query_param(query, "name").unwrap_or_default()).map_err(FileError::bad_request)?;
    let too_big = || {
        FileError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_big",
            format!("the file is over {} bytes, this chat's limit", files.max_upload_bytes),
        )
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > files.max_upload_bytes) {
        return Err(too_big());
    }
    if let Err(not_until) = files.rate.check_key(&Arc::from(user_id.as_str())) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        return Err(FileError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many uploads; wait a moment")
            .retry_after(wait.as_secs_f64().ceil() as u64));
    }
    let Ok(_permit) = Arc::clone(&files.uploads).try_acquire_owned() else {
        return Err(FileError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "this gateway is receiving as many uploads as it takes; try again soon",
        )
        .retry_after(2));
    };

    // Stream it in.
    let mut upload = files.store.begin().await.map_err(FileError::storage)?;
    let mut head = BytesMut::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                upload.abort().await;
                return Err(FileError::bad_request(format!("the upload broke off: {e}")));
            }
        };
        if upload.size() + chunk.len() as u64 > files.max_upload_bytes {
            upload.abort().await;
            return Err(too_big());
        }
        if head.len() < HEAD_BYTES {
            let take = (HEAD_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        if let Err(e) = upload.write(chunk).await {
            upload.abort().await;
            return Err(FileError::storage(e));
        }
    }
    if upload.size() == 0 {
        upload.abort().await;
        return Err(FileError::bad_request("the file is empty"));
    }

    // What it is.
    let sniffed = sniff(&head);
    let claim = claimed_image(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()), &name);
    if let Err(why) = check_claim(claim.as_deref(), &sniffed) {
        upload.abort().await;
        return Err(FileError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "not_an_image", why));
    }
    if let Some(format) = sniffed.image {
        // From the header alone; a JPEG whose size lies past the head is
        // checked again on the whole file before decoding.
        match super::images::check_dimensions(&head, format, files.max_image_pixels) {
            Err(too_many @ BadImage::TooManyPixels { .. }) => {
                upload.abort().await;
                return Err(bad_image(too_many));
            }
            Err(BadImage::Undecodable(_)) | Ok(_) => {}
        }
    }
    // An image takes its worker before its bytes become a blob: a busy
    // pool then drops only this upload's temp object. Deleting the blob
    // instead could delete a posted file: blobs are content-addressed, and
    // the same bytes may be someone's attachment already.
    let worker = match sniffed.image {
        None => None,
        Some(_) => match files.images.take().await {
            Ok(worker) => Some(worker),
            Err(_) => {
                upload.abort().await;
                return Err(FileError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "this gateway is busy with images; try again soon",
                )
                .retry_after(2));
            }
        },
    };
    let size = upload.size();
    let blob = upload.finish().await.map_err(FileError::storage)?;
    let mut attachment = Attachment {
        room: room.clone(),
        name,
        content_type: sniffed.content_type,
        size,
        blob,
        user_id: user_id.clone(),
        ..Default::default()
    };
    if let (Some(format), Some(worker)) = (sniffed.image, worker) {
        // The raw upload (with its EXIF) is not kept: the stripped file is
        // the blob. A raw blob another upload shares is just as raw, so it
        // goes either way.
        let raw = attachment.blob.clone();
        // The worker first (above), then the bytes: waiting uploads hold no image.
        let bytes = files.store.read_all(&raw).await.map_err(FileError::storage)?;
        let processed = match worker.run(bytes, format, files.max_image_pixels).await {
            Ok(processed) => processed,
            Err(bad) => {
                let _ = files.store.delete(&raw).await;
                return Err(bad_image(bad));
            }
        };
        attachment.size = processed.stripped.len() as u64;
        attachment.blob = files.store.put(processed.stripped).await.map_err(FileError::storage)?;
        if attachment.blob != raw {
            let _ = files.store.delete(&raw).await;
        }
        attachment.width = processed.width;
        attachment.height = processed.height;
        attachment.thumb_width = processed.thumb_width;
        attachment.thumb_height = processed.thumb_height;
        attachment.thumb_blob = files.store.put(processed.thumb).await.map_err(FileError::storage)?;
    }
    attach(state, &room, user_id, attachment).await
}

fn bad_image(bad: BadImage) -> FileError {
    FileError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_image", bad.to_string())
}

/// Records the stored file at the room's room-service, which checks the
/// uploader is a member. Its bytes stay when refused: the room-service
/// records a refused Attach's blobs for its sweep, which deletes them once
/// past the upload TTL if no attachment uses the same bytes.
async fn attach(
    state: &AppState,
    room: &str,
    user_id: String,
    attachment: Attachment,
) -> Result<Attachment, FileError> {
    let request = AttachRequest { user_id, attachment: Some(attachment) };
    state.shared.hub.services().call(room, request, |mut c, r| async move { c.attach(r).await }).await.map_err(
        |status| match status.code() {
            Code::PermissionDenied => {
                FileError::new(StatusCode::FORBIDDEN, "forbidden", format!("you are not in room {room}: join it first"))
            }
            Code::InvalidArgument | Code::NotFound => FileError::bad_request(status.message().to_owned()),
            code => {
                tracing::warn!(?code, message = status.message(), room, "Attach failed");
                FileError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the room's service is unavailable; try again soon",
                )
                .retry_after(2)
            }
        },
    )
}

/// Deletes what uploads older than an hour left behind, now and hourly.
pub(crate) async fn sweep_stale(store: chat_runtime::blobs::BlobStore, stop: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(super::STALE_UPLOAD);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            () = stop.cancelled() => return,
        }
        match store.sweep_uploads(super::STALE_UPLOAD).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(n, "deleted abandoned uploads"),
            Err(e) => tracing::warn!(error = %e, "could not sweep abandoned uploads"),
        }
    }
}
