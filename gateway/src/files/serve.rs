//! `GET /files/<id>[/thumb]?exp=&sig=`: an attachment's bytes, from any
//! gateway, to whoever holds a signed URL (only members get one: it comes
//! in `message` frames). Streamed from the store, never whole in memory;
//! with the headers that keep a served file from acting as a page.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chat_proto::files::is_attachment_id;
use chat_proto::v1::{Attachment, GetAttachmentRequest};
use chat_runtime::blobs::BlobError;
use futures_util::StreamExt;
use tonic::Code;

use super::urls::{BadUrl, Part};
use super::{FileError, now_secs};
use crate::app::AppState;
use crate::auth::query_param;

pub(crate) async fn file(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    serve(&state, &id, Part::File, &headers, &uri).await.unwrap_or_else(IntoResponse::into_response)
}

pub(crate) async fn thumb(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    serve(&state, &id, Part::Thumb, &headers, &uri).await.unwrap_or_else(IntoResponse::into_response)
}

async fn serve(state: &AppState, id: &str, part: Part, headers: &HeaderMap, uri: &Uri) -> Result<Response, FileError> {
    let files = &state.files;
    if !is_attachment_id(id) {
        return Err(FileError::new(StatusCode::NOT_FOUND, "bad_attachment", format!("{id:?} is not an attachment id")));
    }
    let query = uri.query();
    files
        .signer
        .check(id, part, query_param(query, "exp").as_deref(), query_param(query, "sig").as_deref(), now_secs())
        .map_err(|bad| match bad {
            BadUrl::Forged => FileError::new(StatusCode::FORBIDDEN, "forbidden", bad.to_string()),
            BadUrl::Expired => FileError::new(StatusCode::GONE, "expired", bad.to_string()),
        })?;
    let attachment = metadata(state, id).await?;
    let (blob, content_type) = match part {
        Part::File => (attachment.blob.clone(), attachment.content_type.clone()),
        Part::Thumb if attachment.thumb_blob.is_empty() => {
            return Err(FileError::new(StatusCode::NOT_FOUND, "bad_attachment", "this attachment has no thumbnail"));
        }
        Part::Thumb => (attachment.thumb_blob.clone(), String::new()),
    };
    let etag = format!("\"{blob}\"");
    let mut response = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, "private, max-age=31536000, immutable")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, "sandbox; default-src 'none'")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::ACCEPT_RANGES, "bytes");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"))
    {
        return response.status(StatusCode::NOT_MODIFIED).body(Body::empty()).map_err(FileError::storage);
    }
    let size = files.store.size(&blob).await.map_err(gone)?;
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(spec) => match parse_range(spec, size) {
            Some(range) => Some(range),
            None => {
                return response
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .body(Body::empty())
                    .map_err(FileError::storage);
            }
        },
    };
    let mut stream = files.store.read(&blob, range.clone()).await.map_err(gone)?;
    // A thumbnail is JPEG, or PNG when it has transparency: its first
    // bytes say which.
    let first = stream.next().await.transpose().map_err(gone)?.unwrap_or_default();
    let content_type = if content_type.is_empty() {
        if first.starts_with(b"\x89PNG") { "image/png".to_owned() } else { "image/jpeg".to_owned() }
    } else {
        content_type
    };
    let inline = content_type.starts_with("image/");
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        percent_encode(&attachment.name)
    );
    response = response
        .header(header::CONTENT_TYPE, HeaderValue::from_str(&content_type).map_err(FileError::storage)?)
        .header(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).map_err(FileError::storage)?);
    let body = Body::from_stream(futures_util::stream::once(async move { Ok::<_, BlobError>(first) }).chain(stream));
    match range {
        Some(range) => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", range.start, range.end - 1))
            .header(header::CONTENT_LENGTH, range.end - range.start),
        None => response.status(StatusCode::OK).header(header::CONTENT_LENGTH, size),
    }
    .body(body)
    .map_err(FileError::storage)
}

fn gone(e: BlobError) -> FileError {
    match e {
        BlobError::NotFound(_) => {
            FileError::new(StatusCode::NOT_FOUND, "bad_attachment", "this file is no longer stored")
        }
        e => FileError::storage(e),
    }
}

/// The operator's view (empty user id): the signed URL already says the
/// holder may see it.
async fn metadata(state: &AppState, id: &str) -> Result<Attachment, FileError> {
    let request = GetAttachmentRequest { id: id.to_owned(), user_id: String::new() };
    // Any room-service can answer: the attachment's room is what we are
    // asking for, so route by the id.
    state.shared.hub.services().call(id, request, |mut c, r| async move { c.get_attachment(r).await }).await.map_err(
        |status| match status.code() {
            Code::NotFound | Code::InvalidArgument => {
                FileError::new(StatusCode::NOT_FOUND, "bad_attachment", format!("no attachment {id}"))
            }
            code => {
                tracing::warn!(?code, message = status.message(), id, "GetAttachment failed");
                FileError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the chat's service is unavailable; try again soon",
                )
                .retry_after(2)
            }
        },
    )
}

/// One `bytes=` range of a `size`-byte file as start..end (end exclusive);
/// `None` when unsatisfiable or not one range.
fn parse_range(spec: &str, size: u64) -> Option<std::ops::Range<u64>> {
    let spec = spec.strip_prefix("bytes=")?.trim();
    if spec.contains(',') || size == 0 {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let (start, end) = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (size.saturating_sub(n), size - 1)
        }
        (start, "") => (start.parse().ok()?, size - 1),
        (start, end) => (start.parse().ok()?, end.parse::<u64>().ok()?.min(size - 1)),
    };
    (start <= end && start < size).then_some(start..end + 1)
}

/// RFC 5987's attr-char set kept, everything else %XX.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z'
            | b'A'..=b'Z'
            | b'0'..=b'9'
            | b'!'
            | b'#'
            | b'$'
            | b'&'
            | b'+'
            | b'-'
            | b'.'
            | b'^'
            | b'_'
            | b'`'
            | b'|'
            | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_one_satisfiable_span() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100), Some(90..100));
        assert_eq!(parse_range("bytes=-5", 100), Some(95..100));
        assert_eq!(parse_range("bytes=50-500", 100), Some(50..100));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn names_are_percent_encoded_for_content_disposition() {
        assert_eq!(percent_encode("résumé 1.pdf"), "r%C3%A9sum%C3%A9%201.pdf");
        assert_eq!(percent_encode("a\"b;c.txt"), "a%22b%3Bc.txt");
    }
}
