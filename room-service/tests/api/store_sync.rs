//! `STORE_SYNC=1`: a send is acknowledged only once PostgreSQL committed it.
//! Checked right after each acknowledgement, in a burst from concurrent
//! senders; with PostgreSQL stopped, sends fail saying so, and the
//! gateway's retry with the same client id succeeds once it is back; and
//! `FLUSHALL` on Redis mid-burst loses nothing acknowledged, the numbering
//! going on above what the store holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chat_proto::v1::{HistoryRequest, SendRequest};
use chat_testkit::PostgresServer;
use room_service::store::Store;

use crate::archive::{reqwest_metrics, stored_seqs};
use crate::support::{RoomService, eventually};

/// A room-service on its own Redis that acknowledges sends once `postgres`
/// committed them. No Subscribe stream is open, so its archiver is offered
/// nothing: whatever reaches the store got there through the committer.
async fn syncing(postgres: &PostgresServer) -> RoomService {
    let url = postgres.url();
    RoomService::start(move |config| {
        config.database_url = Some(url);
        config.store_sync = true;
    })
    .await
}

/// The message the store holds at `seq` in `room`, if any.
async fn stored_at(store: &Store, room: &str, seq: u64) -> Option<room_service::store::StoredMessage> {
    let page = store.before(room, Some(seq + 1), 1).await.expect("a store page");
    page.messages.into_iter().next().filter(|m| m.seq == seq)
}

/// The value of a metric line starting with `name` (any labels).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_store_sync_every_acknowledged_send_is_already_in_postgresql() {
    let postgres = PostgresServer::start().await;
    let service = syncing(&postgres).await;
    let grpc = service.grpc().await;
    let store = Store::connect(&postgres.url()).await.expect("the test's own store connection");

    // 8 senders at once, each checking the store right after every ack.
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let (mut grpc, store) = (grpc.clone(), store.clone());
            tokio::spawn(async move {
                for i in 0..100 {
                    let client_id = format!("s{sender}-{i}");
                    let request = SendRequest {
                        room: format!("room-{}", sender % 2),
                        text: format!("message {i}"),
                        client_id: client_id.clone(),
                        ..Default::default()
                    };
                    let event = grpc.send(request.clone()).await.expect("Send").into_inner().event.expect("event");
                    let at_ack = stored_at(&store, &request.room, event.seq).await;
                    let at_ack = at_ack
                        .unwrap_or_else(|| panic!("{client_id} (seq {}) acknowledged, not in PostgreSQL", event.seq));
                    assert_eq!(at_ack.client_id, client_id, "the message stored at seq {}", event.seq);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("a sender");
    }

    // Group commit: the concurrent sends shared statements.
    let metrics = reqwest_metrics(&service).await;
    let messages = metric(&metrics, "chat_store_sync_group_messages_sum");
    let groups = metric(&metrics, "chat_store_sync_group_messages_count");
    assert_eq!(messages, 800.0, "every message committed once");
    assert!(groups < messages, "some commit carried several sends: {groups} commits for {messages} messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_store_sync_sends_fail_while_postgresql_is_down_and_a_retry_succeeds_once_it_is_back() {
    let mut postgres = PostgresServer::start().await;
    let service = syncing(&postgres).await;
    let mut grpc = service.grpc().await;
    let send = |client_id: &str| SendRequest {
        room: "general".into(),
        text: format!("sent as {client_id}"),
        client_id: client_id.into(),
        ..Default::default()
    };
    grpc.send(send("before")).await.expect("acknowledged while PostgreSQL is up");

    postgres.stop().await;
    let refused = grpc.send(send("during")).await.expect_err("not acknowledged while PostgreSQL is down");
    assert_eq!(refused.code(), tonic::Code::Internal, "{refused:?}");
    for says in ["store is not reachable", "not acknowledged", "same client_id"] {
        assert!(refused.message().contains(says), "says {says:?}: {}", refused.message());
    }
    // Redis holds it (numbered, published): unacknowledged, not lost.
    let history =
        grpc.history(HistoryRequest { room: "general".into(), limit: 1, before_seq: 0, ..Default::default() }).await;
    assert_eq!(history.expect("History from Redis").into_inner().last_seq, 2);

    postgres.restart().await;
    let store = Store::connect(&postgres.url()).await.expect("store");
    // The gateway's retry, same client id: the stored message, committed now.
    let retried = grpc.send(send("during")).await.expect("acknowledged once PostgreSQL is back").into_inner();
    assert!(retried.repeat, "stored once in Redis, not twice");
    let seq = retried.event.expect("event").seq;
    assert_eq!(seq, 2);
    assert_eq!(stored_at(&store, "general", seq).await.map(|m| m.client_id).as_deref(), Some("during"));
    let next = grpc.send(send("after")).await.expect("new sends are acknowledged again").into_inner();
    let next_seq = next.event.expect("event").seq;
    assert_eq!(next_seq, 3);
    assert!(stored_at(&store, "general", next_seq).await.is_some(), "in PostgreSQL at the ack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_store_sync_flushall_mid_burst_loses_no_acknowledged_message_and_numbering_continues() {
    let postgres = PostgresServer::start().await;
    let service = syncing(&postgres).await;
    let grpc = service.grpc().await;
    let store = Store::connect(&postgres.url()).await.expect("store");

    // 4 senders at once, each keeping what was acknowledged; a send refused
    // (e.g. in flight at the flush) is not acknowledged and not counted.
    let acked = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let (mut grpc, acked, done) = (grpc.clone(), Arc::clone(&acked), Arc::clone(&done));
            tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut i = 0;
                while !done.load(Ordering::Relaxed) {
                    i += 1;
                    let client_id = format!("s{sender}-{i}");
                    let request = SendRequest {
                        room: "general".into(),
                        text: format!("message {i}"),
                        client_id: client_id.clone(),
                        ..Default::default()
                    };
                    if let Ok(reply) = grpc.send(request).await {
                        mine.push((reply.into_inner().event.expect("event").seq, client_id));
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                }
                mine
            })
        })
        .collect();
    let count = &acked;
    eventually("the burst is under way", || async move { count.load(Ordering::Relaxed) >= 300 }).await;
    let mut redis = service.redis.connection().await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut redis).await.expect("FLUSHALL");
    let at_flush = acked.load(Ordering::Relaxed);
    // Sends are acknowledged again: numbered above what the store holds
    // (numbering again from 1 would find every seq taken and be refused).
    eventually(
        "sends are acknowledged after the flush",
        || async move { count.load(Ordering::Relaxed) >= at_flush + 300 },
    )
    .await;
    done.store(true, Ordering::Relaxed);
    let mut all: Vec<(u64, String)> = Vec::new();
    for sender in senders {
        all.extend(sender.await.expect("a sender"));
    }

    all.sort();
    let seqs: Vec<u64> = all.iter().map(|(seq, _)| *seq).collect();
    let mut unique = seqs.clone();
    unique.dedup();
    assert_eq!(unique.len(), seqs.len(), "no seq acknowledged twice");
    for (seq, client_id) in &all {
        let at = stored_at(&store, "general", *seq).await;
        assert_eq!(
            at.map(|m| m.client_id).as_deref(),
            Some(client_id.as_str()),
            "acknowledged seq {seq} is in PostgreSQL"
        );
    }
    let last = *seqs.last().expect("acknowledged sends");
    let page_seqs = stored_seqs(&store, "general").await;
    assert_eq!(page_seqs, (1..=page_seqs.len() as u64).collect::<Vec<_>>(), "no gap in PostgreSQL");
    assert!(page_seqs.len() as u64 >= last);
}
