//! `HISTORY_RETENTION_DAYS` on a running room-service with a real
//! PostgreSQL: messages older than the retention leave the store, recent
//! ones and each room's newest stay, and sends go on meanwhile.

use chat_proto::v1::SendRequest;
use chat_runtime::clock::now_ms;
use chat_testkit::PostgresServer;
use room_service::store::{Store, StoredMessage};

use crate::archive::{archived_up_to, reqwest_metrics, serve_room, stored_seqs};
use crate::support::{PATIENCE, RoomService, eventually};

const DAY_MS: i64 = 86_400_000;

fn message(room: &str, seq: u64, ts_ms: i64) -> StoredMessage {
    StoredMessage {
        room: room.into(),
        seq,
        epoch: "ep0ch".into(),
        ts_ms,
        member_id: String::new(),
        username: "system".into(),
        text: format!("message {seq}"),
        client_id: format!("c{seq}"),
        attachments: Vec::new(),
        ..StoredMessage::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_messages_keeps_recent_ones_and_each_room_s_newest() {
    let postgres = PostgresServer::start().await;
    let store = Store::connect(&postgres.url()).await.expect("the test's own store connection");
    // "quiet": 50 messages, all 10 days old. "busy": 30 that old, then 10 of today.
    let now = now_ms();
    let mut old: Vec<StoredMessage> = (1..=50).map(|seq| message("quiet", seq, now - 10 * DAY_MS)).collect();
    old.extend((1..=30).map(|seq| message("busy", seq, now - 10 * DAY_MS + seq as i64)));
    old.extend((31..=40).map(|seq| message("busy", seq, now - 1000)));
    store.append(&old).await.expect("append");

    let url = postgres.url();
    let service = RoomService::start(move |config| {
        config.database_url = Some(url);
        config.history_retention_days = 3;
    })
    .await;
    let mut grpc = service.grpc().await;
    let _reading = serve_room(&mut grpc, "live").await;
    // Sends go on while retention runs.
    for n in 1..=100 {
        let request = SendRequest { room: "live".into(), text: format!("live {n}"), ..Default::default() };
        grpc.send(request).await.expect("Send while retention runs");
    }

    let store_ref = &store;
    eventually("the old messages are removed", || async move { stored_seqs(store_ref, "busy").await.len() == 10 })
        .await;
    assert_eq!(stored_seqs(&store, "busy").await, (31..=40).collect::<Vec<_>>(), "the recent ones stay");
    assert_eq!(stored_seqs(&store, "quiet").await, [50], "a room whose every message is old keeps its newest");
    archived_up_to(&store, "live", 100, PATIENCE).await;
    assert_eq!(stored_seqs(&store, "live").await, (1..=100).collect::<Vec<_>>(), "today's sends all stored");
    let metrics = reqwest_metrics(&service).await;
    assert!(
        metrics.lines().any(|l| l.starts_with("chat_retention_removed_total") && l.ends_with(" 79")),
        "79 removed (49 + 30) are counted:\n{metrics}"
    );
}
