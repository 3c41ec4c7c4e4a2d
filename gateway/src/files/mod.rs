//! Attachments at the gateway: `POST /upload` streams a file into the blob
//! store ([`upload`]), decides what it is from its bytes ([`sniff`]),
//! strips and thumbnails images ([`images`]) on low-priority threads
//! ([`workers`]), and records
//! it at the room-service (`Attach`); `GET /files/<id>[/thumb]` serves it
//! back from any gateway behind a signed URL ([`urls`], [`serve`]).
//! `docs/files.md` has the flow and every bound.

pub(crate) mod images;
pub(crate) mod serve;
pub(crate) mod sniff;
pub(crate) mod upload;
pub(crate) mod urls;
pub(crate) mod workers;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chat_proto::v1::Attachment;
use chat_runtime::blobs::BlobStore;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use self::urls::{Part, Signer};
use self::workers::ImageWorkers;

/// Uploads one user (or session) may start in [`UPLOAD_WINDOW`].
pub(crate) const UPLOAD_BURST: u32 = 10;
pub(crate) const UPLOAD_WINDOW: Duration = Duration::from_secs(10);
/// How old an object in `uploads/` must be to count as abandoned.
pub(crate) const STALE_UPLOAD: Duration = Duration::from_secs(3600);

/// Everything the file routes share.
#[derive(Debug)]
pub(crate) struct Files {
    pub store: BlobStore,
    pub signer: Signer,
    pub max_upload_bytes: u64,
    pub max_image_pixels: u64,
    pub images: ImageWorkers,
    /// `MAX_UPLOADS`: uploads streaming at once; more get 503.
    pub uploads: Arc<Semaphore>,
    /// Uploads started per user (per session without tokens).
    pub rate: DefaultKeyedRateLimiter<Arc<str>>,
}

impl Files {
    pub(crate) fn new(
        store: BlobStore,
        signer: Signer,
        max_upload_bytes: u64,
        max_image_pixels: u64,
        image_workers: usize,
        max_uploads: usize,
    ) -> std::io::Result<Self> {
        let per = UPLOAD_WINDOW / UPLOAD_BURST;
        let quota = Quota::with_period(per)
            .unwrap_or_else(|| unreachable!())
            .allow_burst(std::num::NonZeroU32::new(UPLOAD_BURST).unwrap_or(std::num::NonZeroU32::MIN));
        Ok(Files {
            store,
            signer,
            max_upload_bytes,
            max_image_pixels,
            images: ImageWorkers::start(image_workers)?,
            uploads: Arc::new(Semaphore::new(max_uploads.max(1))),
            rate: RateLimiter::keyed(quota),
        })
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

/// An attachment as browsers see it (the upload's answer, and in every
/// `message` frame): relative, signed URLs; image fields only for images.
pub(crate) fn attachment_json(signer: &Signer, a: &Attachment, now: u64) -> serde_json::Value {
    let mut json = serde_json::json!({
        "id": a.id,
        "name": a.name,
        "type": a.content_type,
        "size": a.size,
        "url": signer.url(&a.id, Part::File, now),
    });
    if a.width > 0 {
        json["width"] = a.width.into();
        json["height"] = a.height.into();
    }
    if !a.thumb_blob.is_empty() {
        json["thumb"] = serde_json::json!({
            "url": signer.url(&a.id, Part::Thumb, now),
            "width": a.thumb_width,
            "height": a.thumb_height,
        });
    }
    json
}

/// A refusal of a file route: its HTTP status, code and message, as JSON.
#[derive(Debug)]
pub(crate) struct FileError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl FileError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        FileError { status, code, message: message.into(), retry_after: None }
    }
    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %e, "file storage failed");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable", "file storage is unavailable; try again soon")
            .retry_after(5)
    }
}

impl IntoResponse for FileError {
    fn into_response(self) -> Response {
        let mut response =
            (self.status, Json(serde_json::json!({"code": self.code, "message": self.message}))).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert("retry-after", HeaderValue::from(secs));
        }
        response
    }
}
