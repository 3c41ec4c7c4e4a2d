//! Redis as a cache in front of the store (docs/protocol.md, "Epochs"):
//! with `DATABASE_URL`, a room Redis lost — to `FLUSHALL`, or forgotten
//! after `ROOM_TTL_SECS` — keeps its history, its epoch and its numbering,
//! and a browser resuming from before the loss gets exactly what it
//! missed. Real parts throughout: a redis-server, a scratch PostgreSQL,
//! room-services and gateways on port 0, WebSocket and gRPC clients.

use std::time::Duration;

use chat_proto::v1::room_service_client::RoomServiceClient;
use chat_proto::v1::{HistoryRequest, RoomEvent, SearchRequest, SendRequest, SubscribeRequest};
use chat_testkit::PostgresServer;
use room_service::store::Store;
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::support::{Client, PATIENCE, Topology, archived_up_to, messages, texts};

const ROOM: &str = "lobby";

/// How a room is lost from Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loss {
    /// `FLUSHALL`: Redis restarted empty, or was emptied.
    Flush,
    /// No event for `ROOM_TTL_SECS` (1 s here): the room's keys expired.
    Ttl,
}

/// A message's seq, id and text: what identifies it, in frames and events.
type Said = (u64, String, String);

fn said_in_frames(frames: &[Value]) -> Vec<Said> {
    frames
        .iter()
        .map(|f| {
            let seq = f["seq"].as_u64().unwrap_or_else(|| panic!("a message has a seq: {f}"));
            (seq, f["id"].as_str().unwrap_or_default().to_owned(), f["text"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

fn said_in_events(events: &[RoomEvent]) -> Vec<Said> {
    events
        .iter()
        .map(|e| {
            let text = match &e.kind {
                Some(chat_proto::v1::room_event::Kind::Message(m)) => m.text.clone(),
                other => panic!("not a message: {other:?}"),
            };
            (e.seq, e.id.clone(), text)
        })
        .collect()
}

/// Has `client` send `n` messages `label i` and reads back their echoes.
async fn post(client: &mut Client, label: &str, n: usize) -> Vec<Value> {
    for i in 0..n {
        client.send(json!({"type": "send", "room": ROOM, "text": format!("{label} {i}")})).await;
    }
    let echoes = messages(client, ROOM, n).await;
    assert_eq!(texts(&echoes), (0..n).map(|i| format!("{label} {i}")).collect::<Vec<_>>(), "{label}: in order");
    echoes
}

/// Sends `n` system messages `label i` over gRPC, one after another.
async fn send_system(grpc: &mut RoomServiceClient<Channel>, label: &str, n: usize) -> Vec<RoomEvent> {
    let mut events = Vec::new();
    for i in 0..n {
        let request = SendRequest { room: ROOM.into(), text: format!("{label} {i}"), ..Default::default() };
        events.push(grpc.send(request).await.expect("Send").into_inner().event.expect("the stored event"));
    }
    events
}

/// Loses the room from Redis: empties Redis, or waits until the room's
/// keys expired (its history stream is gone: only a message brings it back).
async fn lose(topology: &Topology, loss: Loss) {
    let mut redis = topology.redis.as_ref().expect("redis").connection().await;
    match loss {
        Loss::Flush => redis::cmd("FLUSHALL").query_async::<()>(&mut redis).await.expect("FLUSHALL"),
        Loss::Ttl => {
            let deadline = tokio::time::Instant::now() + PATIENCE;
            let log = format!("chat:{{{ROOM}}}:log");
            while redis::cmd("EXISTS").arg(&log).query_async::<i64>(&mut redis).await.expect("EXISTS") == 1 {
                assert!(tokio::time::Instant::now() < deadline, "the room's keys did not expire");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Every message of the room, paged back by History from the newest to the
/// first; checks each page is in the room's epoch.
async fn whole_history(grpc: &mut RoomServiceClient<Channel>, epoch: &str) -> Vec<RoomEvent> {
    let mut events = Vec::new();
    let mut before_seq = 0;
    for _ in 0..100 {
        let request = HistoryRequest { room: ROOM.into(), limit: 100, before_seq, ..Default::default() };
        let page = grpc.history(request).await.expect("History").into_inner();
        assert_eq!(page.epoch, epoch, "History is in the room's epoch");
        events.splice(0..0, page.events);
        if page.reached_first {
            return events;
        }
        before_seq = page.next_before_seq;
    }
    panic!("History did not reach the first message in 100 pages");
}

/// A room of 300 messages (HISTORY_LEN 100), archived, lost from Redis;
/// then 10 more. Everything the store took is still the room's, in the same
/// epoch, numbered on from the last.
async fn a_lost_room_keeps_its_history_epoch_and_numbering(loss: Loss) {
    let postgres = PostgresServer::start().await;
    let url = postgres.url();
    let topology = Topology::start_configured(
        1,
        2,
        |rs| {
            rs.database_url = Some(url);
            rs.history_len = 100;
            if loss == Loss::Ttl {
                rs.room_ttl_secs = 1;
            }
        },
        // ada is away for the whole test and must still resume.
        |gw| gw.resume_grace_secs = 120,
    )
    .await;
    let store = Store::connect(&postgres.url()).await.expect("the test's own store connection");
    let mut ada = topology.client(0).await;
    let session = ada.session();
    let epoch = ada.join(ROOM, "ada").await["epoch"].as_str().expect("an epoch").to_owned();
    let mut bob = topology.client(1).await;
    bob.join(ROOM, "bob").await;
    post(&mut bob, "seen", 100).await;
    let after_seq = said_in_frames(&messages(&mut ada, ROOM, 100).await)[99].0;
    ada.vanish();
    let missed_before = said_in_frames(&post(&mut bob, "missed", 200).await);
    let last = missed_before.last().expect("200 posted").0;
    assert_eq!(last, 300);
    archived_up_to(&store, ROOM, last).await;

    lose(&topology, loss).await;

    // Before anything else touches the room: a Search cursor into what only
    // the store holds is accepted (the room is seeded from the store first,
    // else every cursor would look past the end of an empty room).
    let mut grpc = topology.grpc(0).await;
    let request =
        SearchRequest { room: ROOM.into(), query: "missed".into(), before_seq: 200, limit: 5, ..Default::default() };
    let found = grpc.search(request).await.expect("Search with a cursor after the loss").into_inner();
    let seqs: Vec<u64> = found.hits.iter().filter_map(|h| h.event.as_ref().map(|e| e.seq)).collect();
    assert_eq!(seqs, vec![199, 198, 197, 196, 195], "{loss:?}: search pages below the cursor, newest first");
    let after = send_system(&mut grpc, "after", 10).await;
    assert_eq!((after[0].epoch.as_str(), after[0].seq), (epoch.as_str(), last + 1), "{loss:?}: numbering goes on");
    archived_up_to(&store, ROOM, last + 10).await;

    let history = whole_history(&mut grpc, &epoch).await;
    assert_eq!(
        history.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=last + 10).collect::<Vec<_>>(),
        "{loss:?}: History pages back to the first message, no gap, no repeat"
    );

    let mut cy = topology.client(1).await;
    let joined = cy.join(ROOM, "cy").await;
    assert_eq!(joined["epoch"], epoch.as_str(), "{loss:?}: a join shows the same epoch: {}", joined["epoch"]);
    assert_eq!(joined["last_seq"], last + 10);
    let shown = said_in_frames(joined["history"].as_array().expect("a history"));
    assert_eq!(
        shown.iter().map(|s| s.0).collect::<Vec<_>>(),
        (last + 10 - 49..=last + 10).collect::<Vec<_>>(),
        "{loss:?}: a join shows the newest 50, from the store below what Redis holds"
    );

    let mut ada = Client::resume(topology.gateway_addr(1), &session).await;
    assert_eq!(ada.welcome["resumed"], true, "{}", ada.welcome);
    let joined = ada.join_after(ROOM, "ada", after_seq, &epoch).await;
    assert_eq!(joined["recovered"], true, "{loss:?}: a resume from before the loss is recovered: {joined}");
    let mut missed = missed_before;
    missed.extend(said_in_events(&after));
    assert_eq!(
        said_in_frames(joined["history"].as_array().expect("a history")),
        missed,
        "{loss:?}: exactly the {} messages missed, in order",
        missed.len()
    );

    send_system(&mut grpc, "live", 1).await;
    let live = ada.next_where(|f| f["type"] == "message").await;
    assert_eq!((live["text"].as_str(), live["seq"].as_u64()), (Some("live 0"), Some(last + 11)), "{live}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_loses_no_history_the_store_took() {
    a_lost_room_keeps_its_history_epoch_and_numbering(Loss::Flush).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_forgotten_by_its_ttl_keeps_its_history() {
    a_lost_room_keeps_its_history_epoch_and_numbering(Loss::Ttl).await;
}

/// A Subscribe stream kept open, so the room-service serves the room (its
/// archiver and fanout see every message of it).
async fn serve_room(grpc: &mut RoomServiceClient<Channel>) -> tonic::Streaming<RoomEvent> {
    let request = SubscribeRequest { room: ROOM.into(), gateway: "test".into(), ..Default::default() };
    grpc.subscribe(request).await.expect("Subscribe").into_inner()
}

/// Sends `n` system messages over gRPC all at once; the stored events.
async fn send_together(grpc: &RoomServiceClient<Channel>, label: &str, n: usize) -> Vec<RoomEvent> {
    let sends = (0..n).map(|i| {
        let mut grpc = grpc.clone();
        let request = SendRequest { room: ROOM.into(), text: format!("{label} {i}"), ..Default::default() };
        async move { grpc.send(request).await.expect("Send").into_inner().event.expect("the stored event") }
    });
    futures_util::future::join_all(sends).await
}

/// Right after a flush two room-services both find the room unseeded and
/// both seed it: one wins, and every message is in the one epoch with no
/// seq given twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_room_services_seeding_a_room_at_once_agree_on_it() {
    let postgres = PostgresServer::start().await;
    let url = postgres.url();
    let topology = Topology::start_configured(2, 0, |rs| rs.database_url = Some(url), |_| {}).await;
    let store = Store::connect(&postgres.url()).await.expect("store");
    let (mut a, mut b) = (topology.grpc(0).await, topology.grpc(1).await);
    let _serving = (serve_room(&mut a).await, serve_room(&mut b).await);
    let before = send_system(&mut a, "before", 50).await;
    let epoch = before[0].epoch.clone();
    archived_up_to(&store, ROOM, 50).await;

    lose(&topology, Loss::Flush).await;
    let (on_a, on_b) = tokio::join!(send_together(&a, "a", 20), send_together(&b, "b", 20));

    let mut seqs: Vec<u64> = on_a.iter().chain(&on_b).map(|e| e.seq).collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (51..=90).collect::<Vec<_>>(), "no seq given twice, none skipped");
    let epochs: Vec<&str> = on_a.iter().chain(&on_b).map(|e| e.epoch.as_str()).collect();
    assert!(epochs.iter().all(|e| *e == epoch), "one epoch, the room's: {epochs:?}");
}

/// Without a store Redis is the record: a flush starts the room over at a
/// new epoch, as it always did, and says so by the epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_a_flushed_room_starts_a_new_epoch() {
    let topology = Topology::start(1, 0).await;
    let mut grpc = topology.grpc(0).await;
    let before = send_system(&mut grpc, "before", 3).await;
    lose(&topology, Loss::Flush).await;
    let after = send_system(&mut grpc, "after", 1).await;
    assert_eq!(after[0].seq, 1, "numbering starts over");
    assert_ne!(after[0].epoch, before[0].epoch, "in a new epoch");
}

/// On a Redis Cluster the same scripts run in each room's slot: a room
/// whose master was flushed goes on in its epoch from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_redis_cluster_a_flushed_room_goes_on_from_the_store() {
    let postgres = PostgresServer::start().await;
    let url = postgres.url();
    let topology = Topology::on_cluster_with(3, 0, 1, 0, |rs| rs.database_url = Some(url)).await;
    let store = Store::connect(&postgres.url()).await.expect("store");
    let mut grpc = topology.grpc(0).await;
    let _serving = serve_room(&mut grpc).await;
    let before = send_system(&mut grpc, "before", 5).await;
    archived_up_to(&store, ROOM, 5).await;

    let cluster = topology.redis_cluster.as_ref().expect("a cluster");
    for port in cluster.masters().await {
        redis::cmd("FLUSHALL").query_async::<()>(&mut cluster.node(port).await).await.expect("FLUSHALL");
    }
    let after = send_system(&mut grpc, "after", 1).await;
    assert_eq!((after[0].epoch.as_str(), after[0].seq), (before[0].epoch.as_str(), 6), "numbering goes on");
    let history = whole_history(&mut grpc, &before[0].epoch).await;
    assert_eq!(history.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>());
}
