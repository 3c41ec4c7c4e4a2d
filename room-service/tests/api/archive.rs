//! The archiver and the store behind the gRPC API, with real parts: a
//! room-service on its own `redis-server` with `DATABASE_URL` set to a
//! scratch PostgreSQL. Messages sent over gRPC reach PostgreSQL exactly
//! once, also across PostgreSQL stopping mid-burst; History pages back
//! through Redis and then the store to a room's first message; Search finds
//! what one room said and not another's.

use chat_proto::v1::room_service_client::RoomServiceClient;
use chat_proto::v1::{HistoryRequest, SearchRequest, SendRequest, SubscribeRequest};
use chat_testkit::PostgresServer;
use room_service::store::Store;
use room_service::store::bounds::MAX_PAGE;
use tonic::transport::Channel;

use crate::support::{PATIENCE, RoomService};

/// A room-service on its own Redis, archiving into `postgres`, keeping
/// `history_len` messages per room in Redis.
pub(crate) async fn archiving(postgres: &PostgresServer, history_len: usize) -> RoomService {
    let url = postgres.url();
    RoomService::start(move |config| {
        config.database_url = Some(url);
        config.history_len = history_len;
    })
    .await
}

/// A Subscribe stream for `room`, kept open: the room-service serves (and
/// archives) a room while a gateway reads it.
pub(crate) async fn serve_room(
    grpc: &mut RoomServiceClient<Channel>,
    room: &str,
) -> tonic::Streaming<chat_proto::v1::RoomEvent> {
    let request = SubscribeRequest { room: room.into(), gateway: "test".into(), ..Default::default() };
    grpc.subscribe(request).await.expect("Subscribe").into_inner()
}

/// Sends `texts` to `room` as system messages, one Send each; returns the
/// last seq acknowledged.
async fn send_all(grpc: &mut RoomServiceClient<Channel>, room: &str, texts: impl IntoIterator<Item = String>) -> u64 {
    let mut last = 0;
    for text in texts {
        let sent = grpc.send(SendRequest { room: room.into(), text, ..Default::default() }).await.expect("Send");
        last = sent.into_inner().event.expect("the stored event").seq;
    }
    last
}

/// Every seq the store holds for `room`, paged oldest-last by keyset.
pub(crate) async fn stored_seqs(store: &Store, room: &str) -> Vec<u64> {
    let mut seqs = Vec::new();
    let mut before = None;
    loop {
        let page = store.before(room, before, MAX_PAGE).await.expect("a store page");
        seqs.splice(0..0, page.messages.iter().map(|m| m.seq));
        match page.next_before {
            Some(seq) => before = Some(seq),
            None => return seqs,
        }
    }
}

/// Waits until the store's high-water mark for `room` is `last`, within
/// `patience`.
pub(crate) async fn archived_up_to(store: &Store, room: &str, last: u64, patience: std::time::Duration) {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let high = store.high_water(room).await.ok().flatten();
        if high == Some(last) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the store reached {high:?}, not {last}, within {patience:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_over_grpc_reach_postgresql_exactly_once() {
    let postgres = PostgresServer::start().await;
    let service = archiving(&postgres, 1000).await;
    let store = Store::connect(&postgres.url()).await.expect("the test's own store connection");
    let mut grpc = service.grpc().await;
    let _reading = serve_room(&mut grpc, "general").await;

    let last = send_all(&mut grpc, "general", (1..=300).map(|n| format!("message {n}"))).await;
    assert_eq!(last, 300);
    archived_up_to(&store, "general", last, PATIENCE).await;

    assert_eq!(stored_seqs(&store, "general").await, (1..=300).collect::<Vec<_>>(), "each once, no gap");
    let newest = store.before("general", None, 1).await.expect("newest").messages;
    assert_eq!(newest[0].text, "message 300", "stored as sent");
    let metrics = reqwest_metrics(&service).await;
    assert!(metrics.contains("chat_archive_lag_messages"), "lag is a metric:\n{metrics}");
    assert!(metrics.contains("chat_archive_messages_total"), "archived is counted:\n{metrics}");
}

/// The room-service's /metrics text, over plain HTTP/1.1 on its gRPC port.
pub(crate) async fn reqwest_metrics(service: &RoomService) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(service.addr).await.expect("connect");
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("ask");
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.expect("read");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_back_through_redis_and_the_store_to_the_first_message() {
    let postgres = PostgresServer::start().await;
    // Redis keeps ~100: most pages must come from the store.
    let service = archiving(&postgres, 100).await;
    let store = Store::connect(&postgres.url()).await.expect("store");
    let mut grpc = service.grpc().await;
    let _reading = serve_room(&mut grpc, "general").await;
    let total = send_all(&mut grpc, "general", (1..=1050).map(|n| format!("message {n}"))).await;
    assert_eq!(total, 1050);
    archived_up_to(&store, "general", total, PATIENCE).await;

    let mut seen = Vec::new();
    let mut before_seq = 0;
    let mut pages = 0;
    loop {
        let page = grpc
            .history(HistoryRequest { room: "general".into(), limit: 100, before_seq, ..Default::default() })
            .await
            .expect("History")
            .into_inner();
        pages += 1;
        assert!(pages <= 11, "1050 messages take 11 pages of 100");
        assert!(page.events.windows(2).all(|w| w[0].seq + 1 == w[1].seq), "a page is oldest first, no gap");
        assert_eq!(page.last_seq, total);
        seen.splice(0..0, page.events.iter().map(|e| e.seq));
        if page.reached_first {
            assert_eq!(page.next_before_seq, 0);
            break;
        }
        assert_eq!(page.next_before_seq, page.events[0].seq, "the cursor is the page's oldest seq");
        before_seq = page.next_before_seq;
    }
    assert_eq!(seen, (1..=total).collect::<Vec<_>>(), "every message exactly once, in order");
    assert_eq!(pages, 11);

    let odd = grpc
        .history(HistoryRequest { room: "general".into(), limit: 7, before_seq: 500, ..Default::default() })
        .await
        .expect("a page from the store")
        .into_inner();
    assert_eq!(odd.events.iter().map(|e| e.seq).collect::<Vec<_>>(), (493..500).collect::<Vec<_>>());

    for (limit, before_seq, says) in [(101, 0, "limit is 101"), (10, total + 2, "before_seq is 1052")] {
        let refused = grpc
            .history(HistoryRequest { room: "general".into(), limit, before_seq, ..Default::default() })
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(refused.message().contains(says), "{}", refused.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_stopped_during_a_burst_loses_nothing() {
    let mut postgres = PostgresServer::start().await;
    let service = archiving(&postgres, 1000).await;
    let mut grpc = service.grpc().await;
    let _reading = serve_room(&mut grpc, "general").await;
    send_all(&mut grpc, "general", (1..=100).map(|n| format!("before {n}"))).await;

    postgres.stop().await;
    // Chat goes on on Redis while PostgreSQL is down.
    let last = send_all(&mut grpc, "general", (1..=400).map(|n| format!("during {n}"))).await;
    assert_eq!(last, 500);
    postgres.restart().await;

    let store = Store::connect(&postgres.url()).await.expect("store");
    archived_up_to(&store, "general", last, PATIENCE * 2).await;
    assert_eq!(stored_seqs(&store, "general").await, (1..=last).collect::<Vec<_>>(), "every message once, no gap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_a_room_s_message_and_not_another_room_s() {
    let postgres = PostgresServer::start().await;
    let service = archiving(&postgres, 1000).await;
    let store = Store::connect(&postgres.url()).await.expect("store");
    let mut grpc = service.grpc().await;
    let _general = serve_room(&mut grpc, "general").await;
    let _random = serve_room(&mut grpc, "random").await;
    send_all(&mut grpc, "general", ["the deploy is green".into(), "lunch?".into()]).await;
    send_all(&mut grpc, "random", ["deploy the cat pictures".into()]).await;
    archived_up_to(&store, "general", 2, PATIENCE).await;
    archived_up_to(&store, "random", 1, PATIENCE).await;

    let found = grpc
        .search(SearchRequest { room: "general".into(), query: "Deploy".into(), ..Default::default() })
        .await
        .expect("Search")
        .into_inner();
    assert_eq!(found.hits.len(), 1, "general's message only: {found:?}");
    let hit = &found.hits[0];
    let event = hit.event.as_ref().expect("the message");
    assert_eq!(event.seq, 1);
    assert_eq!(hit.highlights.len(), 1);
    let chat_proto::v1::room_event::Kind::Message(message) = event.kind.as_ref().expect("kind") else {
        panic!("not a message: {event:?}")
    };
    let range = hit.highlights[0].start as usize..hit.highlights[0].end as usize;
    assert_eq!(&message.text[range], "deploy");
    assert_eq!(found.next_before_seq, 0, "no more hits");

    for query in [String::new(), "a".repeat(257)] {
        let refused = grpc
            .search(SearchRequest { room: "general".into(), query, ..Default::default() })
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{}", refused.message());
        assert!(refused.message().contains("1 to 256 bytes"), "{}", refused.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_without_a_store_says_it_needs_database_url() {
    let service = RoomService::start(|_| {}).await;
    let refused = service
        .grpc()
        .await
        .search(SearchRequest { room: "general".into(), query: "deploy".into(), ..Default::default() })
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(refused.message().contains("search needs DATABASE_URL"), "{}", refused.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_service_taking_a_room_over_copies_what_the_last_one_did_not_archive() {
    let postgres = PostgresServer::start().await;
    // The first one keeps no store: as if it died before archiving anything.
    let first = RoomService::start(|_| {}).await;
    let mut grpc = first.grpc().await;
    let last = send_all(&mut grpc, "general", (1..=250).map(|n| format!("message {n}"))).await;

    // The next one, on the same Redis, starts serving the room.
    let mut config = room_service::Config::with_redis(Some(first.redis.url()));
    config.database_url = Some(postgres.url());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(room_service::run(config, listener, std::future::pending()));
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).expect("url");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let channel = loop {
        match channel.connect().await {
            Ok(channel) => break channel,
            Err(error) => assert!(tokio::time::Instant::now() < deadline, "not up: {error}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let mut next = RoomServiceClient::new(channel);
    let _reading = serve_room(&mut next, "general").await;

    let store = Store::connect(&postgres.url()).await.expect("store");
    archived_up_to(&store, "general", last, PATIENCE).await;
    assert_eq!(stored_seqs(&store, "general").await, (1..=last).collect::<Vec<_>>(), "all of it, once");
}

/// The embedded mode (no Redis) with a store: rooms live in the process and
/// go with it, but a room-service started again on the same store goes on
/// with each room's epoch and numbering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_room_service_restarted_on_its_store_goes_on_with_the_numbering() {
    let postgres = PostgresServer::start().await;
    let store = Store::connect(&postgres.url()).await.expect("store");
    let embedded = |url: String| {
        RoomService::start(move |config| {
            config.redis_url = None;
            config.database_url = Some(url);
        })
    };
    let first = embedded(postgres.url()).await;
    let mut grpc = first.grpc().await;
    let _reading = serve_room(&mut grpc, "general").await;
    let last = send_all(&mut grpc, "general", (1..=3).map(|n| format!("message {n}"))).await;
    archived_up_to(&store, "general", last, PATIENCE).await;
    let epoch = grpc.history(HistoryRequest { room: "general".into(), ..Default::default() }).await;
    let epoch = epoch.expect("History").into_inner().epoch;
    drop((_reading, grpc, first));

    let second = embedded(postgres.url()).await;
    let mut grpc = second.grpc().await;
    let sent = grpc.send(SendRequest { room: "general".into(), text: "again".into(), ..Default::default() }).await;
    let event = sent.expect("Send").into_inner().event.expect("the stored event");
    assert_eq!((event.epoch.as_str(), event.seq), (epoch.as_str(), last + 1), "the room goes on where it was");
}

/// The default mode's window: messages Redis acknowledged while PostgreSQL
/// was down, then Redis flushed. A room Redis lost takes nothing while the
/// store cannot say where its numbering stands (refused, saying why); once
/// PostgreSQL is back the room goes on above every seq it gave out, none
/// given twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_lost_while_postgresql_is_down_waits_for_it_and_reuses_no_seq() {
    let mut postgres = PostgresServer::start().await;
    let service = archiving(&postgres, 1000).await;
    let mut grpc = service.grpc().await;
    let _reading = serve_room(&mut grpc, "general").await;
    send_all(&mut grpc, "general", (1..=5).map(|n| format!("archived {n}"))).await;
    let store = Store::connect(&postgres.url()).await.expect("store");
    archived_up_to(&store, "general", 5, PATIENCE).await;

    postgres.stop().await;
    let last = send_all(&mut grpc, "general", (1..=5).map(|n| format!("only in Redis {n}"))).await;
    assert_eq!(last, 10);
    let mut redis = service.redis.connection().await;
    redis::cmd("FLUSHALL").query_async::<()>(&mut redis).await.expect("FLUSHALL");
    let request = || SendRequest { room: "general".into(), text: "after".into(), ..Default::default() };
    let refused = grpc.send(request()).await.expect_err("no numbering to go on from while PostgreSQL is down");
    assert!(refused.message().contains("try again once PostgreSQL answers"), "{}", refused.message());

    postgres.restart().await;
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    let event = loop {
        match grpc.send(request()).await {
            Ok(sent) => break sent.into_inner().event.expect("the stored event"),
            Err(status) => assert!(tokio::time::Instant::now() < deadline, "still refused: {status}"),
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(event.seq, last + 1, "above every seq given out, archived or not");
}
