//! Attachments' records with a store: written through to a scratch
//! PostgreSQL beside a real `redis-server`, so a Redis flush loses nothing
//! a person can see, and the sweep, counting a blob's uses in PostgreSQL,
//! never deletes the bytes of a posted file. The blobs are real files in a
//! local `BlobStore` (a folder in the scratch PostgreSQL's dir), checked on
//! disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chat_proto::v1::room_event::Kind;
use chat_proto::v1::room_service_client::RoomServiceClient;
use chat_proto::v1::{AttachRequest, Attachment, GetAttachmentRequest, HistoryRequest, SendRequest, SendResponse};
use chat_runtime::blobs::{BlobArgs, BlobStore};
use chat_testkit::{PostgresServer, RedisServer};
use room_service::attachments::{AttachmentRecords, Claim, Poster, Records, Sweep};
use room_service::store::Store;
use room_service::{Fanout, RedisBroker, Retention, RoomServiceMetrics};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::support::{PATIENCE, RoomService, eventually, join};

type Grpc = RoomServiceClient<Channel>;

const HOUR_MS: i64 = 3_600_000;

/// A local blob store in `dir`, and where its blobs lie on disk.
fn blob_store(dir: &Path) -> BlobStore {
    BlobStore::open(&BlobArgs { files_dir: Some(dir.to_owned()), ..Default::default() }).expect("a local blob store")
}

fn on_disk(dir: &Path, blob: &str) -> PathBuf {
    dir.join("blobs").join(blob)
}

/// A stored file (not an image) as a gateway describes it.
fn stored(room: &str, name: &str, blob: &str) -> Attachment {
    Attachment {
        room: room.into(),
        name: name.into(),
        content_type: "application/pdf".into(),
        size: 20,
        blob: blob.into(),
        ..Default::default()
    }
}

async fn attach(grpc: &mut Grpc, name: &str, attachment: Attachment) -> Result<Attachment, Status> {
    let request = AttachRequest { user_id: format!("u-{name}"), attachment: Some(attachment) };
    grpc.attach(request).await.map(tonic::Response::into_inner)
}

async fn send(grpc: &mut Grpc, name: &str, client_id: &str, ids: &[String]) -> Result<SendResponse, Status> {
    let request = SendRequest {
        room: "general".into(),
        member_id: format!("m-{name}"),
        text: "see attached".into(),
        client_id: client_id.into(),
        attachment_ids: ids.to_vec(),
        user_id: format!("u-{name}"),
        ..Default::default()
    };
    grpc.send(request).await.map(tonic::Response::into_inner)
}

async fn get(grpc: &mut Grpc, id: &str, user: &str) -> Result<Attachment, Status> {
    let request = GetAttachmentRequest { id: id.into(), user_id: user.into() };
    grpc.get_attachment(request).await.map(tonic::Response::into_inner)
}

async fn flush(redis: &RedisServer) {
    let mut redis = redis.connection().await;
    redis::cmd("FLUSHALL").query_async::<()>(&mut redis).await.expect("FLUSHALL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_attachment_is_still_found_after_redis_is_flushed() {
    let postgres = PostgresServer::start().await;
    let service = crate::archive::archiving(&postgres, 1000).await;
    let store = Store::connect(&postgres.url()).await.expect("the store");
    let mut grpc = service.grpc().await;
    join(&mut grpc, "general", "ada").await;
    join(&mut grpc, "general", "bob").await;
    let _serving = crate::archive::serve_room(&mut grpc, "general").await;
    let report = attach(&mut grpc, "ada", stored("general", "report.pdf", &"ab".repeat(32))).await.expect("attaches");
    let later = attach(&mut grpc, "ada", stored("general", "later.pdf", &"cd".repeat(32))).await.expect("attaches");
    let sent = send(&mut grpc, "ada", "c-1", std::slice::from_ref(&report.id)).await.expect("posts the report");
    let seq = sent.event.expect("stored").seq;
    crate::archive::archived_up_to(&store, "general", seq, PATIENCE).await;

    flush(&service.redis).await;

    assert_eq!(get(&mut grpc, &report.id, "u-bob").await.expect("GetAttachment after the flush"), report);
    assert_eq!(get(&mut grpc, &later.id, "").await.expect("an unposted one too"), later);
    let history = grpc
        .history(HistoryRequest { room: "general".into(), limit: 10, ..Default::default() })
        .await
        .expect("History")
        .into_inner();
    let event = history.events.iter().find(|e| e.seq == seq).expect("the message in History");
    let Some(Kind::Message(message)) = &event.kind else { panic!("not a message: {event:?}") };
    assert_eq!(message.attachments, vec![report.clone()], "the message still shows it");

    // Posted or not, as the store says: members are in Redis again once
    // they join again (presence is Redis' alone).
    join(&mut grpc, "general", "ada").await;
    let again = send(&mut grpc, "ada", "c-2", std::slice::from_ref(&report.id)).await;
    let refused = again.expect_err("posted already, by the message before the flush");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("posted already"), "{refused:?}");
    let posted = send(&mut grpc, "ada", "c-3", std::slice::from_ref(&later.id)).await.expect("the unposted one posts");
    let Some(Kind::Message(message)) = posted.event.expect("stored").kind else { panic!("not a message") };
    assert_eq!(message.attachments, vec![later]);
}

/// The sweep on Redis + PostgreSQL, driven round by round: two uploads of
/// the same bytes, one posted; Redis flushed (its use sets with it); the
/// unposted one is swept, and the bytes stay because PostgreSQL counts the
/// posted one. Once nothing uses them, they go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_keeps_a_blob_a_posted_attachment_uses_after_a_flush() {
    let redis = RedisServer::start().await;
    let postgres = PostgresServer::start().await;
    let store = Store::connect(&postgres.url()).await.expect("the store");
    let retention = Retention { history_len: 20, room_ttl: Duration::from_secs(600) };
    let fanout = Fanout::new(1024, Arc::new(RoomServiceMetrics::new("attachments-store")));
    let broker = RedisBroker::connect(&redis.url(), retention, fanout).await.expect("connects");
    let records = Arc::new(AttachmentRecords::new(Arc::new(broker), Some(store)));
    let dir = postgres.dir().join("files");
    let blobs = blob_store(&dir);
    let blob = blobs.put(b"the quarterly report, twice uploaded".to_vec().into()).await.expect("put");
    let path = on_disk(&dir, &blob);
    assert!(path.exists(), "the blob is a file at {}", path.display());

    let now = 100 * HOUR_MS;
    let old = now - 2 * HOUR_MS;
    let upload = |n: u128, user: &str| Attachment {
        id: chat_proto::files::new_attachment_id(n),
        uploaded_ms: old,
        user_id: user.into(),
        ..stored("general", "report.pdf", &blob)
    };
    let posted = upload(1, "u-ada");
    let duplicate = upload(2, "u-bob");
    records.put_attachment(&posted).await.expect("put");
    records.put_attachment(&duplicate).await.expect("put");
    let ada = Poster { member_id: "m-ada".into(), client_id: "c-1".into() };
    let claim = records.claim(&posted.id, "general", "u-ada", &ada).await.expect("claim");
    assert_eq!(claim, Claim::Claimed(posted.clone()));

    flush(&redis).await;

    let sweep = Sweep::new(Arc::clone(&records), Some(blobs), Duration::from_secs(3600));
    let swept = sweep.round(now).await.expect("a round");
    assert_eq!(swept.attachments, vec![duplicate.id.clone()], "the unposted duplicate, and only it");
    assert!(swept.blobs.is_empty(), "no blob deleted: {swept:?}");
    assert!(path.exists(), "the posted attachment's file is still on disk");
    assert_eq!(records.attachment(&duplicate.id).await.expect("get"), None, "the duplicate is gone");
    assert_eq!(records.attachment(&posted.id).await.expect("get"), Some(posted.clone()), "the posted one stays");
    let other = Poster { member_id: "m-ada".into(), client_id: "c-2".into() };
    let by_other = records.claim(&posted.id, "general", "u-ada", &other).await.expect("claim");
    assert_eq!(by_other, Claim::Posted, "still posted by its message after the flush");

    // Its message was refused after all: released, it waits like any
    // upload, and with it goes the last use of the bytes.
    records.release(&posted.id, &ada).await.expect("release");
    let swept = sweep.round(now).await.expect("a second round");
    assert_eq!(swept.attachments, vec![posted.id.clone()]);
    assert_eq!(swept.blobs, vec![blob.clone()], "nothing uses the blob any more");
    assert!(!path.exists(), "the file is deleted from disk");
}

/// A refused Attach's blob (the gateway stored the bytes first) is deleted
/// by the room-service's own sweep once older than the upload TTL and
/// unused, and kept when a posted attachment uses the same bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_uploads_blob_is_swept_unless_something_uses_it() {
    let postgres = PostgresServer::start().await;
    let dir = postgres.dir().join("files");
    let (url, files) = (postgres.url(), dir.clone());
    let service = RoomService::start(move |config| {
        config.database_url = Some(url);
        config.blobs.files_dir = Some(files);
        config.upload_ttl_secs = 1;
    })
    .await;
    let store = Store::connect(&postgres.url()).await.expect("the store");
    let blobs = blob_store(&dir);
    let shared = blobs.put(b"posted by ada, refused for cy".to_vec().into()).await.expect("put");
    let lone = blobs.put(b"refused for cy, nobody's".to_vec().into()).await.expect("put");
    let malformed = blobs.put(b"refused for a bad content type".to_vec().into()).await.expect("put");

    let mut grpc = service.grpc().await;
    join(&mut grpc, "general", "ada").await;
    let report = attach(&mut grpc, "ada", stored("general", "report.pdf", &shared)).await.expect("attaches");
    send(&mut grpc, "ada", "c-1", std::slice::from_ref(&report.id)).await.expect("posts it");
    let refused = attach(&mut grpc, "cy", stored("general", "copy.pdf", &shared)).await.expect_err("cy is no member");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let refused = attach(&mut grpc, "cy", stored("general", "mine.pdf", &lone)).await.expect_err("cy is no member");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let bad = Attachment { content_type: "pdf".into(), ..stored("general", "x.pdf", &malformed) };
    let refused = attach(&mut grpc, "ada", bad).await.expect_err("not a MIME type");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");

    let gone = |blob: String| {
        let path = on_disk(&dir, &blob);
        move || {
            let path = path.clone();
            async move { !path.exists() }
        }
    };
    eventually("the unused refused blob is deleted", gone(lone)).await;
    eventually("the malformed upload's blob is deleted", gone(malformed)).await;
    // Every candidate looked at: none left waiting.
    let store = &store;
    eventually("the sweep went through every candidate", || async move {
        store.blob_candidates_before(i64::MAX, 10).await.expect("candidates").is_empty()
    })
    .await;
    assert!(on_disk(&dir, &shared).exists(), "the blob a posted attachment uses stays");
    assert_eq!(get(&mut grpc, &report.id, "u-ada").await.expect("still served"), report);
}
