//! Nothing acknowledged is lost when a part fails mid-burst: a room-service
//! killed with `kill -9` while ~2,000 messages/s flow through its rooms,
//! and PostgreSQL stopped for 5 s during a burst. Afterwards PostgreSQL
//! holds every acknowledged message exactly once, with no gap in any room's
//! seq. Real Redis, real scratch PostgreSQL, real room-service processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chat_proto::v1::room_service_client::RoomServiceClient;
use chat_proto::v1::{SendRequest, SubscribeRequest};
use chat_testkit::{PostgresServer, RedisServer};
use room_service::store::bounds::MAX_PAGE;
use room_service::store::{Store, StoredMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::archive::{archived_up_to, archiving, serve_room, stored_seqs};
use crate::process::{RoomServiceProcess, free_port};
use crate::support::{PATIENCE, eventually};

/// A message a room-service acknowledged.
#[derive(Debug, Clone)]
struct Acked {
    room: String,
    seq: u64,
    client_id: String,
}

/// Every message the store holds for `room`, oldest first.
async fn stored(store: &Store, room: &str) -> Vec<StoredMessage> {
    let mut messages = Vec::new();
    let mut before = None;
    loop {
        let page = store.before(room, before, MAX_PAGE).await.expect("a store page");
        messages.splice(0..0, page.messages);
        match page.next_before {
            Some(seq) => before = Some(seq),
            None => return messages,
        }
    }
}

/// One sender as a gateway sends: `n` messages to `room`, one every
/// `every`, each with its own client id; a send that fails goes again with
/// the same client id to the other room-service (and stays there, as a
/// gateway moves a room off one that failed).
async fn send_like_a_gateway(
    services: [RoomServiceClient<Channel>; 2],
    mut current: usize,
    sender: usize,
    room: String,
    n: usize,
    every: Duration,
    acked: Arc<AtomicUsize>,
) -> Vec<Acked> {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        tick.tick().await;
        let client_id = format!("{room}-s{sender}-{i}");
        let request = SendRequest {
            room: room.clone(),
            text: format!("message {i} of {client_id}"),
            client_id: client_id.clone(),
            ..Default::default()
        };
        let deadline = Instant::now() + PATIENCE;
        loop {
            let mut call = tonic::Request::new(request.clone());
            call.set_timeout(Duration::from_secs(2));
            match services[current].clone().send(call).await {
                Ok(reply) => {
                    let event = reply.into_inner().event.expect("the stored event");
                    out.push(Acked { room: room.clone(), seq: event.seq, client_id: client_id.clone() });
                    acked.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(status) => {
                    assert!(Instant::now() < deadline, "{client_id} was never acknowledged: {status}");
                    current = 1 - current;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }
    out
}

/// Subscribes to `room` on `grpc` as a gateway does, reading (and dropping)
/// its events until the stream ends: the room-service serves and archives
/// the room meanwhile.
async fn read_room(mut grpc: RoomServiceClient<Channel>, room: &str) {
    let request = SubscribeRequest { room: room.into(), gateway: "test".into(), ..Default::default() };
    let mut stream = grpc.subscribe(request).await.expect("Subscribe").into_inner();
    tokio::spawn(async move { while let Ok(Some(_)) = stream.message().await {} });
}

/// Checks that the store holds every acknowledged message once under its
/// seq, and each room's seqs 1..=max with no gap.
async fn assert_every_acknowledged_message_stored_once(store: &Store, acked: &[Acked], rooms: &[String]) {
    for room in rooms {
        let mine: Vec<&Acked> = acked.iter().filter(|a| &a.room == room).collect();
        let last = mine.iter().map(|a| a.seq).max().expect("the room got messages");
        archived_up_to(store, room, last, PATIENCE * 3).await;
        let messages = stored(store, room).await;
        let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=last).collect::<Vec<_>>(), "{room}: seqs 1..={last}, each once, no gap");
        let mut client_ids: Vec<&str> = messages.iter().map(|m| m.client_id.as_str()).collect();
        client_ids.sort_unstable();
        client_ids.dedup();
        assert_eq!(client_ids.len(), messages.len(), "{room}: no message stored twice under two seqs");
        for a in mine {
            let at = &messages[usize::try_from(a.seq - 1).expect("a seq")];
            assert_eq!(at.client_id, a.client_id, "{room}: seq {} is the message acknowledged with it", a.seq);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_service_killed_mid_burst_loses_no_acknowledged_message() {
    killed_mid_burst(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_store_sync_a_room_service_killed_mid_burst_loses_no_acknowledged_message() {
    killed_mid_burst(true).await;
}

/// Two room-services (with `STORE_SYNC=1` when `sync`), one killed with
/// `kill -9` while ~2,000 messages/s flow through the rooms both serve.
async fn killed_mid_burst(sync: bool) {
    let postgres = PostgresServer::start().await;
    let redis = RedisServer::start().await;
    let env = [
        ("REDIS_URL", redis.url()),
        ("DATABASE_URL", postgres.url()),
        ("STORE_SYNC", if sync { "1" } else { "0" }.to_owned()),
    ];
    let mut doomed = RoomServiceProcess::start(free_port(), &env).await;
    let survivor = RoomServiceProcess::start(free_port(), &env).await;
    let rooms: Vec<String> = (0..4).map(|n| format!("burst-{n}")).collect();
    for room in &rooms {
        read_room(doomed.grpc(), room).await;
        read_room(survivor.grpc(), room).await;
    }

    // 8 senders, two per room, each 250 messages/s: ~2,000/s in all, half
    // of them sent to the room-service about to die.
    let acked = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..8)
        .map(|n| {
            let services = [doomed.grpc(), survivor.grpc()];
            let (room, first) = (rooms[n % rooms.len()].clone(), n / rooms.len());
            let every = Duration::from_millis(4);
            tokio::spawn(send_like_a_gateway(services, first, n, room, 800, every, Arc::clone(&acked)))
        })
        .collect();
    let acked_ref = &acked;
    eventually("2,000 messages are acknowledged", || async move { acked_ref.load(Ordering::Relaxed) >= 2000 }).await;
    doomed.kill().await;
    let at_kill = acked.load(Ordering::Relaxed);

    let mut all = Vec::new();
    for sender in senders {
        all.extend(sender.await.expect("a sender"));
    }
    assert!(all.len() > at_kill, "sends went on after the kill");
    // Back on its port, it serves the rooms again: catching each up above
    // the store's high-water mark from Redis.
    doomed.restart().await;
    for room in &rooms {
        read_room(doomed.grpc(), room).await;
    }

    let store = Store::connect(&postgres.url()).await.expect("the test's own store connection");
    assert_every_acknowledged_message_stored_once(&store, &all, &rooms).await;
}

/// GET `path` over plain HTTP/1.1 on the room-service's gRPC port.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("ask");
    let mut text = String::new();
    tcp.read_to_string(&mut text).await.expect("read");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_stopped_for_five_seconds_mid_burst_loses_nothing_and_health_says_so() {
    let mut postgres = PostgresServer::start().await;
    let service = archiving(&postgres, 10_000).await;
    let mut grpc = service.grpc().await;
    let _reading = serve_room(&mut grpc, "general").await;

    // A steady burst, ~500 messages/s, until told to stop.
    let acked = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let burst = {
        let (acked, done, grpc) = (Arc::clone(&acked), Arc::clone(&done), grpc.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            let mut last = 0;
            while !done.load(Ordering::Relaxed) {
                tick.tick().await;
                let request = SendRequest { room: "general".into(), text: "burst".into(), ..Default::default() };
                let sent = grpc.clone().send(request).await.expect("chat goes on while PostgreSQL is down");
                last = sent.into_inner().event.expect("the stored event").seq;
                acked.fetch_add(1, Ordering::Relaxed);
            }
            last
        })
    };
    let count = &acked;
    eventually("the burst is under way", || async move { count.load(Ordering::Relaxed) >= 300 }).await;

    postgres.stop().await;
    let at_stop = acked.load(Ordering::Relaxed);
    let addr = service.addr;
    eventually("/healthz says the store is behind", || async move {
        http_get(addr, "/healthz").await.contains("store: behind")
    })
    .await;
    // The outage lasts 5 s, as the test promises; chat goes on meanwhile.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(acked.load(Ordering::Relaxed) > at_stop, "messages were acknowledged while PostgreSQL was down");
    postgres.restart().await;
    let at_restart = acked.load(Ordering::Relaxed);
    eventually(
        "the burst goes on after the restart",
        || async move { count.load(Ordering::Relaxed) >= at_restart + 300 },
    )
    .await;
    done.store(true, Ordering::Relaxed);
    let last = burst.await.expect("the burst");

    let store = Store::connect(&postgres.url()).await.expect("store");
    archived_up_to(&store, "general", last, PATIENCE * 3).await;
    assert_eq!(stored_seqs(&store, "general").await, (1..=last).collect::<Vec<_>>(), "every message once, no gap");
    eventually("/healthz no longer says the store is behind", || async move {
        !http_get(addr, "/healthz").await.contains("store: behind")
    })
    .await;
}
