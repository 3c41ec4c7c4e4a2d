//! The chat on a real Redis Cluster (REDIS_CLUSTER_URLS): rooms spread over
//! every master, events on sharded pub/sub, and a master failover that must
//! lose no acknowledged message.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use crate::support::{PATIENCE, Topology, messages, texts};
use chat_proto::v1::{GetRoomRequest, HistoryRequest, ListRoomsRequest, SendRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_land_on_every_master_and_every_gateway_gets_every_message_once_in_order() {
    let topology = Topology::on_cluster(3, 0, 2, 3).await;
    let cluster = topology.redis_cluster.as_ref().expect("a cluster");
    let rooms: Vec<String> = (0..12).map(|i| format!("room-{i}")).collect();

    // One member per gateway in every room.
    let mut clients = Vec::new();
    for (i, name) in ["ada", "bob", "cy"].iter().enumerate() {
        let mut client = topology.client(i).await;
        for room in &rooms {
            client.join(room, name).await;
        }
        clients.push(client);
    }
    for client in &mut clients[..2] {
        let mut waiting: std::collections::HashSet<String> = rooms.iter().cloned().collect();
        while !waiting.is_empty() {
            let frame = client
                .next_where(|f| {
                    f["type"] == "presence"
                        && f["joins"].as_array().is_some_and(|j| j.iter().any(|m| m["username"] == "cy"))
                })
                .await;
            waiting.remove(frame["room"].as_str().unwrap_or_default());
        }
    }

    const EACH: usize = 5;
    for round in 0..EACH {
        for room in &rooms {
            for (i, client) in clients.iter_mut().enumerate() {
                client.say(room, &format!("{room}/{i}/{round}")).await;
            }
        }
    }
    // Per room: every client sees the same 3 × EACH texts in one order, seq growing.
    let total = rooms.len() * 3 * EACH;
    let mut orders: Vec<Vec<(String, u64, String)>> = Vec::new();
    for client in &mut clients {
        let mut got = Vec::new();
        while got.len() < total {
            let frame = client.next_where(|f| f["type"] == "message").await;
            got.push((
                frame["room"].as_str().unwrap_or_default().to_owned(),
                frame["seq"].as_u64().expect("seq"),
                frame["text"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        got.sort();
        orders.push(got);
    }
    for room in &rooms {
        let of = |order: &Vec<(String, u64, String)>| -> Vec<String> {
            order.iter().filter(|(r, _, _)| r == room).map(|(_, _, t)| t.clone()).collect()
        };
        let first = of(&orders[0]);
        assert_eq!(first.len(), 3 * EACH, "{room}: every message, once");
        assert_eq!(first.iter().collect::<HashSet<_>>().len(), 3 * EACH, "{room}: no duplicates");
        assert!(first.iter().all(|t| t.starts_with(&format!("{room}/"))), "{room}: only its own messages");
        for (i, order) in orders.iter().enumerate().skip(1) {
            assert_eq!(of(order), first, "{room}: gateway {i} saw another order");
        }
    }
    for client in &mut clients {
        let extra = client.drain(Duration::from_millis(300)).await;
        assert!(texts(&extra).is_empty(), "duplicates arrived late: {extra:?}");
    }

    // Every master holds some of the rooms, and the registry in their slots.
    let masters = cluster.masters().await;
    assert_eq!(masters.len(), 3);
    let mut owners = BTreeSet::new();
    for room in &rooms {
        owners.insert(cluster.master_of(&format!("chat:{{{room}}}:seq")).await);
    }
    assert_eq!(owners.len(), 3, "12 rooms should land on all 3 masters");
    for &port in &masters {
        let mut node = cluster.node(port).await;
        let seqs: Vec<String> = redis::cmd("KEYS").arg("chat:{*}:seq").query_async(&mut node).await.expect("KEYS");
        let registries: Vec<String> =
            redis::cmd("KEYS").arg("chat:rooms:*").query_async(&mut node).await.expect("KEYS");
        assert!(
            !seqs.is_empty() && !registries.is_empty(),
            "master {port} holds rooms {seqs:?} and registries {registries:?}"
        );
        let global: Vec<String> = redis::cmd("KEYS").arg("chat:rooms").query_async(&mut node).await.expect("KEYS");
        assert!(global.is_empty(), "no cross-slot global registry on master {port}");
        // Events travel on sharded channels only.
        let shard: Vec<String> =
            redis::cmd("PUBSUB").arg("SHARDCHANNELS").query_async(&mut node).await.expect("PUBSUB SHARDCHANNELS");
        let classic: Vec<String> =
            redis::cmd("PUBSUB").arg("CHANNELS").query_async(&mut node).await.expect("PUBSUB CHANNELS");
        assert!(!shard.is_empty(), "master {port} carries its rooms' sharded channels");
        assert!(classic.is_empty(), "no classic pub/sub on master {port}: {classic:?}");
    }

    // ListRooms sees the rooms of every master, with their members.
    let listed = topology.grpc(0).await.list_rooms(ListRoomsRequest {}).await.expect("ListRooms").into_inner().rooms;
    let names: Vec<&str> = listed.iter().map(|r| r.name.as_str()).collect();
    let mut expected: Vec<&str> = rooms.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(names, expected);
    assert!(listed.iter().all(|r| r.member_count == 3 && r.last_seq == (3 * EACH) as u64), "{listed:?}");

    // Presence and history, as on one Redis.
    let room = topology
        .grpc(1)
        .await
        .get_room(GetRoomRequest { room: "room-7".into(), ..Default::default() })
        .await
        .expect("GetRoom")
        .into_inner();
    let mut members: Vec<&str> = room.members.iter().map(|m| m.username.as_str()).collect();
    members.sort();
    assert_eq!(members, ["ada", "bob", "cy"]);
    let history = topology
        .grpc(1)
        .await
        .history(HistoryRequest { room: "room-7".into(), limit: 100, ..Default::default() })
        .await
        .expect("History")
        .into_inner()
        .events;
    let seqs: Vec<u64> = history.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=(3 * EACH) as u64).collect::<Vec<_>>(), "history holds every event, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_failover_loses_no_acknowledged_message() {
    let topology = Topology::on_cluster(3, 1, 1, 2).await;
    let cluster = topology.redis_cluster.as_ref().expect("a cluster");
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    let mut bob = topology.client(1).await;
    bob.join("general", "bob").await;
    ada.next_join_of("bob").await;

    // Acknowledged = Send returned the stored event. Sends refused while the
    // cluster switches over are retried with the same client_id, so a lost
    // ack cannot store a message twice.
    let mut grpc = topology.grpc(0).await;
    let mut acknowledged = Vec::new();
    let mut failover = None;
    for i in 0..40 {
        if i == 20 {
            failover = Some(cluster.fail_over("chat:{general}:seq").await);
        }
        let request = SendRequest {
            room: "general".into(),
            member_id: String::new(),
            text: format!("m{i}"),
            client_id: format!("c{i}"),
            ..SendRequest::default()
        };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let event = loop {
            match grpc.send(request.clone()).await {
                Ok(response) => break response.into_inner().event.expect("the stored event"),
                Err(status) if tokio::time::Instant::now() < deadline => {
                    tracing::info!(%status, "send refused during the failover; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(status) => panic!("m{i} was never acknowledged: {status}"),
            }
        };
        acknowledged.push((event.seq, format!("m{i}")));
    }
    let (old, new) = failover.expect("failed over");
    assert_ne!(cluster.master_of("chat:{general}:seq").await, old, "the room moved from {old} to {new}");
    // Bob, reading live through the room-service's resubscribed channel,
    // gets every acknowledged message once and in order.
    let got = messages(&mut bob, "general", acknowledged.len()).await;
    let received: Vec<(u64, String)> = got
        .iter()
        .map(|f| (f["seq"].as_u64().expect("seq"), f["text"].as_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(received, acknowledged, "live delivery across the failover");
    let extra = bob.drain(Duration::from_millis(300)).await;
    assert!(texts(&extra).is_empty(), "duplicates arrived late: {extra:?}");

    // The room's sharded channel now lives on the new master only (a
    // subscription left on the demoted master would get no events), and a
    // message sent now arrives live.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut holders = Vec::new();
        for url in cluster.urls() {
            let port: u16 = url.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port");
            let channels: Vec<String> = redis::cmd("PUBSUB")
                .arg("SHARDCHANNELS")
                .query_async(&mut cluster.node(port).await)
                .await
                .expect("PUBSUB SHARDCHANNELS");
            if channels.iter().any(|c| c == "chat:{general}:events") {
                holders.push(port);
            }
        }
        if holders == [new] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the room's channel is on {holders:?}, not on the new master {new}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let request = SendRequest {
        room: "general".into(),
        member_id: String::new(),
        text: "after".into(),
        client_id: "after".into(),
        ..SendRequest::default()
    };
    let event =
        grpc.send(request).await.expect("Send after the failover").into_inner().event.expect("the stored event");
    acknowledged.push((event.seq, "after".to_owned()));
    let live = messages(&mut bob, "general", 1).await;
    assert_eq!(live[0]["text"], "after", "live delivery after the failover: {live:?}");

    // And the new master's history holds them all.
    let history = grpc
        .history(HistoryRequest { room: "general".into(), limit: 100, ..Default::default() })
        .await
        .expect("History")
        .into_inner()
        .events;
    let stored: Vec<String> = history
        .iter()
        .filter_map(|e| match &e.kind {
            Some(chat_proto::v1::room_event::Kind::Message(m)) => Some(m.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(stored, acknowledged.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>());
}
