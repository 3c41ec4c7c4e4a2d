//! Failures and restarts: gateways and room-services stopping or crashing,
//! Redis restarting or going away, and chat going on through all of it.

use std::time::Duration;

use crate::support::{Client, PATIENCE, Topology, messages, texts};
use chat_proto::v1::GetRoomRequest;

/// Has `from` say numbered messages until one reaches `to`, failing after
/// `patience`: for recoveries where early sends may be refused or lost.
async fn until_delivered(from: &mut Client, to: &mut Client, label: &str, patience: Duration) {
    let deadline = tokio::time::Instant::now() + patience;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let text = format!("{label} {attempt}");
        from.say("general", &text).await;
        let got = tokio::time::timeout(
            Duration::from_millis(1500),
            to.next_where(|f| f["type"] == "message" && f["text"] == text.as_str()),
        )
        .await;
        if got.is_ok() {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{label}: live delivery did not resume");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_gateway_leaves_the_others_chatting() {
    let mut topology = Topology::start(2, 3).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    let mut bob = topology.client(1).await;
    bob.join("general", "bob").await;
    let mut cy = topology.client(2).await;
    cy.join("general", "cy").await;

    topology.stop_gateway(2).await;
    let reconnect = cy.next_of("reconnect").await;
    assert_eq!(reconnect["reason"], "gateway shutting down", "{reconnect}");
    assert!(reconnect["after_ms"].as_u64().is_some_and(|ms| ms > 0), "{reconnect}");
    let gone = ada.next_leave_of("cy").await;
    assert_eq!(gone["reason"], "disconnected", "{gone}");

    ada.say("general", "still here?").await;
    let frame = bob.next_where(|f| f["type"] == "message").await;
    assert_eq!(frame["text"], "still here?");
}

async fn room_service_failover(crash: bool) {
    let mut topology = Topology::start(2, 3).await;
    let owner = topology.owner_of("general");
    let mut clients = Vec::new();
    for (i, name) in ["ada", "bob", "cy"].iter().enumerate() {
        let mut client = topology.client(i).await;
        client.join("general", name).await;
        clients.push(client);
    }
    clients[0].say("general", "before").await;
    for client in &mut clients {
        assert_eq!(texts(&messages(client, "general", 1).await), ["before"]);
    }

    if crash {
        topology.kill_room_service(owner).await;
    } else {
        topology.stop_room_service(owner).await;
    }

    // The room moves to the other room-service; a send may be refused while
    // it does, so keep trying until one goes through.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut attempt = 0;
    loop {
        attempt += 1;
        clients[1].say("general", &format!("after {attempt}")).await;
        let frame = clients[1].next_where(|f| f["type"] == "message" || f["type"] == "error").await;
        if frame["type"] == "message" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "chat did not resume after the room-service stopped: {frame}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    clients[2].say("general", "and again").await;
    for client in [0, 2] {
        let got = clients[client].next_where(|f| f["type"] == "message" && f["text"] == "and again").await;
        assert_eq!(got["room"], "general");
    }
    let room = topology
        .grpc(1 - owner)
        .await
        .get_room(GetRoomRequest { room: "general".into(), ..Default::default() })
        .await
        .expect("GetRoom")
        .into_inner();
    assert_eq!(room.member_count, 3, "presence survives the room-service: {:?}", room.members);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_room_service_moves_its_rooms_and_chat_goes_on() {
    room_service_failover(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_room_service_moves_its_rooms_and_chat_goes_on() {
    room_service_failover(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_a_crashed_gateway_expire_with_a_leave_notice() {
    let mut topology = Topology::start(1, 2).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    let mut bob = topology.client(1).await;
    bob.join("general", "bob").await;
    ada.next_join_of("bob").await;

    // Abort the gateway: no drain, no leave call, heartbeats just stop.
    topology.kill_gateway(1).await;
    let gone = ada.next_leave_of("bob").await;
    assert_eq!(gone["reason"], "expired", "{gone}");
    drop(bob);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_resumes_after_redis_restarts() {
    let mut topology = Topology::start(2, 2).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    let mut bob = topology.client(1).await;
    bob.join("general", "bob").await;

    topology.redis.as_mut().expect("redis").restart().await;

    // Redis came back empty: the subscriptions are made again and the
    // gateways' heartbeats put their members back; then chat flows.
    until_delivered(&mut ada, &mut bob, "after restart", PATIENCE * 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_resumes_after_a_redis_outage_longer_than_its_reconnect_backoff() {
    let mut topology = Topology::start(1, 2).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    let mut bob = topology.client(1).await;
    bob.join("general", "bob").await;

    let redis = topology.redis.as_mut().expect("redis");
    redis.stop().await;
    // Long enough for four reconnect attempts at the longest delay to fail:
    // a reconnect loop with a handful of doubling retries would give up.
    tokio::time::sleep(room_service::RECONNECT_MAX_DELAY * 4).await;
    redis.restart().await;

    until_delivered(&mut ada, &mut bob, "after the outage", PATIENCE * 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_come_back_silently_after_redis_restarts_empty() {
    let mut topology = Topology::start(1, 2).await;
    let names = ["ada", "bob", "cy", "dee", "eve"];
    let mut clients = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut client = topology.client(i % 2).await;
        client.join("general", name).await;
        clients.push(client);
    }
    for client in &mut clients {
        client.drain(Duration::from_millis(500)).await;
    }

    topology.redis.as_mut().expect("redis").restart().await;

    // Redis lost every member; the gateways put theirs back.
    let (first, rest) = clients.split_at_mut(1);
    until_delivered(&mut first[0], &mut rest[0], "after restart", PATIENCE * 2).await;
    let mut grpc = topology.grpc(0).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let room = grpc
            .get_room(GetRoomRequest { room: "general".into(), ..Default::default() })
            .await
            .expect("GetRoom")
            .into_inner();
        if room.member_count == 5 {
            let mut listed: Vec<_> = room.members.iter().map(|m| m.username.as_str()).collect();
            listed.sort_unstable();
            assert_eq!(listed, names, "everyone is listed again");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "members not restored: {room:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Nobody left or joined, so nobody is told so: at most frames that
    // only set the count right.
    for (client, name) in clients.iter_mut().zip(names) {
        for frame in client.drain(Duration::from_millis(1500)).await {
            if frame["type"] == "presence" {
                assert_eq!(
                    (frame["joined"].as_u64(), frame["left"].as_u64()),
                    (Some(0), Some(0)),
                    "{name} got {frame}"
                );
            }
        }
    }
}
