//! The `Records` trait's promises (attachments' records: claims, releases,
//! the unposted list, blob uses, blobs a refused Attach left) and the
//! sweep built on them, with the same
//! steps on a real `redis-server`, a real Redis Cluster (an attachment's
//! keys and the lists sit on different slots) and the in-process broker.
//!
//! The sweep deletes bytes through its `Blobs` seam; here a recorder that
//! keeps the names it was asked to delete, so each case checks which blobs
//! the sweep picked (the real store is the gateway's `BlobStore`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_proto::v1::Attachment;
use chat_runtime::blobs::BlobError;
use chat_testkit::{RedisCluster, RedisServer};
use room_service::attachments::{Blobs, Claim, Poster, Records, Sweep};
use room_service::{Fanout, MemoryBroker, RedisBroker, Retention, RoomServiceMetrics};

const RETENTION: Retention = Retention { history_len: 20, room_ttl: Duration::from_secs(600) };
const TTL: Duration = Duration::from_secs(3600);
const HOUR_MS: i64 = 3_600_000;

fn fanout() -> Arc<Fanout> {
    Fanout::new(1024, Arc::new(RoomServiceMetrics::new("attachments")))
}

/// The blobs a sweep asked to delete, in order.
#[derive(Debug, Default, Clone)]
struct Deleted(Arc<Mutex<Vec<String>>>);

impl Blobs for Deleted {
    async fn delete(&self, blob: &str) -> Result<(), BlobError> {
        self.0.lock().expect("unpoisoned").push(blob.to_owned());
        Ok(())
    }
}

impl Deleted {
    fn take(&self) -> Vec<String> {
        let mut all = std::mem::take(&mut *self.0.lock().expect("unpoisoned"));
        all.sort();
        all
    }
}

fn blob(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

/// An attachment `n` of `user` in `room`, uploaded at `at` (ms).
fn attachment(n: u32, room: &str, user: &str, blob: &str, thumb: &str, at: i64) -> Attachment {
    Attachment {
        id: chat_proto::files::new_attachment_id(u128::from(n) + 0xa000 * at as u128),
        room: room.into(),
        name: format!("file-{n}.png"),
        content_type: "image/png".into(),
        size: 100 + u64::from(n),
        blob: blob.into(),
        thumb_blob: thumb.into(),
        user_id: user.into(),
        uploaded_ms: at,
        ..Default::default()
    }
}

fn poster(member: &str, client: &str) -> Poster {
    Poster { member_id: member.into(), client_id: client.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_records_keep_the_contract() {
    let redis = RedisServer::start().await;
    let broker = RedisBroker::connect(&redis.url(), RETENTION, fanout()).await.expect("connects");
    contract(Arc::new(broker)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_cluster_records_keep_the_same_contract() {
    let cluster = RedisCluster::start(3, 0).await;
    let broker = RedisBroker::connect_cluster(&cluster.urls(), None, RETENTION, fanout()).await.expect("connects");
    contract(Arc::new(broker)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_records_keep_the_same_contract() {
    contract(Arc::new(MemoryBroker::new(RETENTION, fanout()))).await;
}

async fn contract<R: Records>(records: Arc<R>) {
    claims_check_room_user_and_poster(&*records).await;
    a_release_undoes_only_its_own_claim(&*records).await;
    the_sweep_removes_unposted_uploads_and_unshared_blobs(Arc::clone(&records)).await;
    a_refused_uploads_blob_goes_after_its_grace_when_unused(records).await;
}

async fn claims_check_room_user_and_poster<R: Records>(records: &R) {
    let a = attachment(1, "general", "u-ada", &blob(1), &blob(2), 1_000);
    records.put_attachment(&a).await.expect("put");
    assert_eq!(records.attachment(&a.id).await.expect("get"), Some(a.clone()), "the record as put");
    let unknown = chat_proto::files::new_attachment_id(7);
    assert_eq!(records.attachment(&unknown).await.expect("get"), None, "an unknown id");

    let ada = poster("m-ada", "c-1");
    let cases = [
        ("an unknown id", unknown.as_str(), "general", "u-ada", Claim::Unknown),
        ("another room", a.id.as_str(), "random", "u-ada", Claim::OtherRoom("general".into())),
        ("another user", a.id.as_str(), "general", "u-bob", Claim::OtherUser),
    ];
    for (case, id, room, user, expected) in cases {
        assert_eq!(records.claim(id, room, user, &ada).await.expect(case), expected, "{case}");
    }
    let claimed = records.claim(&a.id, "general", "u-ada", &ada).await.expect("claim");
    assert_eq!(claimed, Claim::Claimed(a.clone()), "the first claim");
    let again = records.claim(&a.id, "general", "u-ada", &ada).await.expect("claim again");
    assert_eq!(again, Claim::Claimed(a.clone()), "the same send retried claims it again");
    let other = records.claim(&a.id, "general", "u-ada", &poster("m-ada", "c-2")).await.expect("claim");
    assert_eq!(other, Claim::Posted, "another message of the same member");
    let unposted = records.unposted_before(i64::MAX, 100).await.expect("list");
    assert!(!unposted.contains(&a.id), "a claimed attachment is not waiting any more: {unposted:?}");
    assert_eq!(records.remove_unposted(&a.id).await.expect("remove"), None, "a posted one stays");
    assert!(records.attachment(&a.id).await.expect("get").is_some(), "still there");
}

async fn a_release_undoes_only_its_own_claim<R: Records>(records: &R) {
    let b = attachment(2, "general", "u-bob", &blob(3), "", 2_000);
    records.put_attachment(&b).await.expect("put");
    let bob = poster("m-bob", "c-1");
    assert_eq!(records.claim(&b.id, "general", "u-bob", &bob).await.expect("claim"), Claim::Claimed(b.clone()));
    records.release(&b.id, &poster("m-bob", "c-other")).await.expect("release");
    let by_other = records.claim(&b.id, "general", "u-bob", &poster("m-bob", "c-2")).await.expect("claim");
    assert_eq!(by_other, Claim::Posted, "another poster's release left the claim");
    records.release(&b.id, &bob).await.expect("release");
    let unposted = records.unposted_before(i64::MAX, 100).await.expect("list");
    assert!(unposted.contains(&b.id), "released: waiting again: {unposted:?}");
    let by_other = records.claim(&b.id, "general", "u-bob", &poster("m-bob", "c-2")).await.expect("claim");
    assert_eq!(by_other, Claim::Claimed(b), "released: another message may post it");
}

async fn the_sweep_removes_unposted_uploads_and_unshared_blobs<R: Records>(records: Arc<R>) {
    let now = 100 * HOUR_MS;
    let old = now - 2 * HOUR_MS;
    // Old and unposted, its blobs used by nothing else: all goes.
    let lone = attachment(10, "general", "u-cy", &blob(10), &blob(11), old);
    // Old and unposted, but its file is also a posted attachment's.
    let shared = attachment(11, "general", "u-cy", &blob(12), &blob(13), old);
    let posted = attachment(12, "random", "u-dan", &blob(12), "", old);
    // Unposted, but newer than the TTL.
    let fresh = attachment(13, "general", "u-cy", &blob(14), "", now - HOUR_MS / 2);
    for a in [&lone, &shared, &posted, &fresh] {
        records.put_attachment(a).await.expect("put");
    }
    let claim = records.claim(&posted.id, "random", "u-dan", &poster("m-dan", "c-1")).await.expect("claim");
    assert_eq!(claim, Claim::Claimed(posted.clone()));

    let deleted = Deleted::default();
    let sweep = Sweep::new(Arc::clone(&records), Some(deleted.clone()), TTL);
    let swept = sweep.round(now).await.expect("a round");
    let mut ids = swept.attachments.clone();
    ids.sort();
    let mut expected = vec![lone.id.clone(), shared.id.clone()];
    expected.sort();
    // The two left unposted by the earlier cases (uploaded at 1-2 s) are
    // old too: 'a' was posted, 'b' claimed again; neither goes.
    assert_eq!(ids, expected, "the old unposted uploads, and only them");
    let mut blobs = vec![blob(10), blob(11), blob(13)];
    blobs.sort();
    assert_eq!(deleted.take(), blobs, "their blobs but the one a posted attachment shares");
    for gone in [&lone, &shared] {
        assert_eq!(records.attachment(&gone.id).await.expect("get"), None, "{} was swept", gone.name);
    }
    for kept in [&posted, &fresh] {
        assert!(records.attachment(&kept.id).await.expect("get").is_some(), "{} was kept", kept.name);
    }
    let again = sweep.round(now).await.expect("a second round");
    assert!(again.attachments.is_empty() && deleted.take().is_empty(), "nothing left to sweep: {again:?}");

    // Past the fresh one's TTL too; its blob was its own.
    let later = sweep.round(now + HOUR_MS).await.expect("a later round");
    assert_eq!(later.attachments, vec![fresh.id.clone()], "the fresh one, once old");
    assert_eq!(deleted.take(), vec![blob(14)]);
}

async fn a_refused_uploads_blob_goes_after_its_grace_when_unused<R: Records>(records: Arc<R>) {
    let now = 200 * HOUR_MS;
    let (used, unused, fresh) = (blob(20), blob(21), blob(22));
    // A recent upload (not swept) of the same bytes as one refused Attach.
    let recent = attachment(20, "general", "u-eve", &used, "", now - HOUR_MS / 4);
    records.put_attachment(&recent).await.expect("put");
    records.put_blob_candidate(&used, now - 2 * HOUR_MS).await.expect("a candidate");
    records.put_blob_candidate(&unused, now - 2 * HOUR_MS).await.expect("a candidate");
    // Refused again with an earlier clock: the later time stays.
    records.put_blob_candidate(&unused, now - 3 * HOUR_MS).await.expect("again");
    records.put_blob_candidate(&fresh, now - HOUR_MS / 2).await.expect("a candidate");
    assert_eq!(records.blob_uses(&used).await.expect("uses"), 1, "the recent upload uses it");
    assert_eq!(records.blob_uses(&unused).await.expect("uses"), 0);
    let waiting = records.blob_candidates_before(now - HOUR_MS, 100).await.expect("candidates");
    assert_eq!(waiting, vec![used.clone(), unused.clone()], "past the grace, oldest first");

    let deleted = Deleted::default();
    let sweep = Sweep::new(Arc::clone(&records), Some(deleted.clone()), TTL);
    let swept = sweep.round(now).await.expect("a round");
    assert_eq!(deleted.take(), vec![unused.clone()], "the unused one past its grace, and only it");
    assert_eq!(swept.blobs, vec![unused]);
    assert!(swept.attachments.is_empty(), "no attachment was old: {swept:?}");
    let left = records.blob_candidates_before(i64::MAX, 100).await.expect("candidates");
    assert_eq!(left, vec![fresh.clone()], "every candidate looked at is forgotten, used or not");

    // Refused again now: its grace starts over, and forgetting it with the
    // earlier cutoff leaves it.
    records.put_blob_candidate(&fresh, now).await.expect("again");
    records.forget_blob_candidate(&fresh, now - HOUR_MS / 4).await.expect("forget");
    assert_eq!(records.blob_candidates_before(i64::MAX, 100).await.expect("candidates"), vec![fresh.clone()]);
    let later = sweep.round(now + 2 * HOUR_MS).await.expect("a later round");
    // The recent upload is old now too: it goes, and the last use of
    // `used` with it; `fresh` is past its new grace.
    assert_eq!(later.attachments, vec![recent.id], "the upload nobody posted");
    assert_eq!(deleted.take(), vec![used, fresh], "its blob, and the candidate past its new grace");
}
