//! `STORE_SYNC=1`: a send is acknowledged only once PostgreSQL committed it.
//! Checked right after each acknowledgement, in a burst from concurrent
//! senders; and with PostgreSQL stopped, sends fail saying so, and the
//! gateway's retry with the same client id succeeds once it is back.

use chat_proto::v1::{HistoryRequest, SendRequest};
use chat_testkit::PostgresServer;
use room_service::store::Store;

use crate::archive::reqwest_metrics;
use crate::support::RoomService;

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
    let history = grpc.history(HistoryRequest { room: "general".into(), limit: 1, before_seq: 0 }).await;
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
