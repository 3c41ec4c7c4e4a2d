//! The chat across many instances: three gateways and two room-services on a
//! real redis-server, with browser-protocol clients on every gateway.

use std::collections::HashSet;
use std::time::Duration;

use crate::support::{PATIENCE, Topology, messages, texts};
use chat_proto::v1::{BatchedMessage, GetRoomRequest, HistoryRequest, SendBatchRequest, SendRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_member_on_every_gateway_gets_every_message_once_in_one_order() {
    let topology = Topology::start(2, 3).await;
    let mut clients = Vec::new();
    for (i, name) in ["ada", "bob", "cy"].iter().enumerate() {
        let mut client = topology.client(i).await;
        client.join("general", name).await;
        clients.push(client);
    }
    // Everyone joined before anyone speaks; wait for the last join to reach all.
    for client in &mut clients[..2] {
        client.next_join_of("cy").await;
    }

    const EACH: usize = 20;
    for round in 0..EACH {
        for (i, client) in clients.iter_mut().enumerate() {
            client.say("general", &format!("m{i}-{round}")).await;
        }
    }
    let mut orders = Vec::new();
    for client in &mut clients {
        let got = messages(client, "general", 3 * EACH).await;
        let seqs: Vec<u64> = got.iter().map(|f| f["seq"].as_u64().expect("seq")).collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seq must grow: {seqs:?}");
        let unique: HashSet<String> = texts(&got).into_iter().collect();
        assert_eq!(unique.len(), 3 * EACH, "no duplicates, nothing missing");
        orders.push(texts(&got));
    }
    assert_eq!(orders[0], orders[1], "gateway 0 and 1 saw different orders");
    assert_eq!(orders[0], orders[2], "gateway 0 and 2 saw different orders");
    for client in &mut clients {
        let extra = client.drain(Duration::from_millis(300)).await;
        assert!(texts(&extra).is_empty(), "duplicates arrived late: {extra:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_sees_nothing_of_another_room() {
    let topology = Topology::start(2, 3).await;
    let mut general = topology.client(0).await;
    general.join("general", "ada").await;
    let mut dev = topology.client(1).await;
    dev.join("dev", "bob").await;
    let mut both = topology.client(2).await;
    both.join("general", "cy").await;
    both.join("dev", "cy").await;

    general.say("general", "only for general").await;
    dev.say("dev", "only for dev").await;

    let in_dev = dev.next_where(|f| f["type"] == "message").await;
    assert_eq!(in_dev["text"], "only for dev");
    let in_general = general.next_where(|f| f["type"] == "message").await;
    assert_eq!(in_general["text"], "only for general");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let frame = both.next_where(|f| f["type"] == "message").await;
        seen.push((
            frame["room"].as_str().unwrap_or_default().to_owned(),
            frame["text"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    seen.sort();
    assert_eq!(seen, vec![("dev".into(), "only for dev".into()), ("general".into(), "only for general".into())]);

    for client in [&mut general, &mut dev] {
        let rest = client.drain(Duration::from_millis(300)).await;
        assert!(texts(&rest).is_empty(), "a message crossed rooms: {rest:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_and_leave_notices_reach_other_gateways_and_get_room_lists_everyone() {
    let topology = Topology::start(2, 3).await;
    let mut ada = topology.client(0).await;
    let joined = ada.join("general", "ada").await;
    assert_eq!(joined["members"].as_array().map(Vec::len), Some(1));

    let mut bob = topology.client(1).await;
    let joined = bob.join("general", "bob").await;
    let names: Vec<&str> =
        joined["members"].as_array().expect("members").iter().filter_map(|m| m["username"].as_str()).collect();
    assert_eq!(names, ["ada", "bob"], "joined lists members of every gateway");
    let notice = ada.next_join_of("bob").await;
    assert_eq!(notice["gateway"].as_str(), Some(bob.gateway.as_str()), "bob's gateway: {notice}");

    let mut cy = topology.client(2).await;
    cy.join("general", "cy").await;
    for client in [&mut ada, &mut bob] {
        client.next_join_of("cy").await;
    }

    for i in 0..2 {
        let room = topology
            .grpc(i)
            .await
            .get_room(GetRoomRequest { room: "general".into(), ..Default::default() })
            .await
            .expect("GetRoom")
            .into_inner();
        let mut seen: Vec<(String, String)> =
            room.members.iter().map(|m| (m.username.clone(), m.gateway.clone())).collect();
        seen.sort();
        let expected = vec![
            ("ada".into(), ada.gateway.clone()),
            ("bob".into(), bob.gateway.clone()),
            ("cy".into(), cy.gateway.clone()),
        ];
        assert_eq!(seen, expected, "GetRoom on room-service {i}");
        assert_eq!(room.member_count, 3);
        assert_eq!(room.last_seq, 0, "joins are presence, not stored events");
    }

    cy.send(serde_json::json!({"type": "leave", "room": "general"})).await;
    cy.next_of("left").await;
    let left = ada.next_leave_of("cy").await;
    assert_eq!(left["reason"], "left", "{left}");

    bob.close().await;
    let gone = ada.next_leave_of("bob").await;
    assert_eq!(gone["reason"], "disconnected", "{gone}");

    let room = topology
        .grpc(1)
        .await
        .get_room(GetRoomRequest { room: "general".into(), ..Default::default() })
        .await
        .expect("GetRoom")
        .into_inner();
    assert_eq!(room.members.iter().map(|m| m.username.as_str()).collect::<Vec<_>>(), ["ada"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_returns_history_and_a_system_message_reaches_the_room() {
    let topology = Topology::start(2, 2).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    for i in 0..3 {
        ada.say("general", &format!("early {i}")).await;
    }
    messages(&mut ada, "general", 3).await;

    let mut bob = topology.client(1).await;
    let joined = bob.join("general", "bob").await;
    let history = joined["history"].as_array().expect("history");
    assert_eq!(texts(history), ["early 0", "early 1", "early 2"]);
    assert!(history.iter().all(|e| e["type"] == "message"), "joins and leaves are not history: {history:?}");
    assert_eq!(joined["member_count"], 2, "ada and bob");

    let mut grpc = topology.grpc(1).await;
    let sent = grpc
        .send(SendRequest { room: "general".into(), text: "maintenance at noon".into(), ..Default::default() })
        .await
        .expect("system message")
        .into_inner();
    assert!(sent.event.is_some());
    for client in [&mut ada, &mut bob] {
        let frame = client.next_where(|f| f["type"] == "message").await;
        assert_eq!((frame["username"].as_str(), frame["text"].as_str()), (Some("system"), Some("maintenance at noon")));
    }
    let history = grpc
        .history(HistoryRequest { room: "general".into(), limit: 2, ..Default::default() })
        .await
        .expect("History")
        .into_inner();
    assert_eq!(history.events.len(), 2);
    assert_eq!(history.events.last().map(|e| e.seq), Some(history.last_seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_room_has_one_redis_subscription_however_many_gateways_and_browsers() {
    let topology = Topology::start(2, 3).await;
    let mut clients = Vec::new();
    for i in 0..3 {
        for name in ["a", "b"] {
            let mut client = topology.client(i).await;
            client.join("general", name).await;
            clients.push(client);
        }
    }
    let mut redis = topology.redis.as_ref().expect("redis").connection().await;
    let numsub: (String, u32) =
        redis::cmd("PUBSUB").arg("NUMSUB").arg("chat:{general}:events").query_async(&mut redis).await.expect("PUBSUB");
    assert_eq!(numsub.1, 1, "six browsers on three gateways: one subscription, on the room's room-service");
    let patterns: u32 = redis::cmd("PUBSUB").arg("NUMPAT").query_async(&mut redis).await.expect("NUMPAT");
    assert_eq!(patterns, 0, "no pattern subscriptions on the message path");

    for client in clients {
        client.close().await;
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let numsub: (String, u32) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("chat:{general}:events")
            .query_async(&mut redis)
            .await
            .expect("PUBSUB");
        if numsub.1 == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the subscription outlived the room's last listener");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_on_the_same_gateway_never_make_its_other_browsers_miss_events() {
    let topology = Topology::start(2, 2).await;
    let mut ada = topology.client(0).await;
    let joined = ada.join("general", "ada").await;
    let mut last = joined["last_seq"].as_u64().expect("last_seq");
    // Keep events in flight from the other gateway while people join on
    // ada's: a join's snapshot then runs ahead of what ada's gateway has
    // received, which must not make ada's gateway skip those events.
    let mut talker = topology.client(1).await;
    talker.join("general", "talker").await;
    const SAID: usize = 300;
    for i in 0..SAID {
        talker.say("general", &format!("chatter {i}")).await;
    }
    const JOINS: usize = 20;
    let addr = topology.gateway_addr(0);
    let joiners: Vec<_> = (0..JOINS)
        .map(|i| {
            tokio::spawn(async move {
                let mut client = crate::support::Client::connect(addr).await;
                client.join("general", &format!("u{i}")).await;
                client
            })
        })
        .collect();
    let mut joined_clients = Vec::new();
    for joiner in joiners {
        joined_clients.push(joiner.await.expect("join task"));
    }
    // talker's messages: every one, in order.
    for _ in 0..SAID {
        let frame = ada.next_where(|f| f["seq"].as_u64().is_some()).await;
        let seq = frame["seq"].as_u64().expect("seq");
        assert_eq!(seq, last + 1, "ada missed an event before {frame}");
        last = seq;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_sender_that_reads_everything_is_not_taken_for_a_slow_consumer() {
    let topology = Topology::start(1, 1).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    const BURST: usize = 1100; // more than the 1024 frames a browser's queue holds
    for i in 0..BURST {
        ada.say("general", &format!("burst {i}")).await;
    }
    let got = messages(&mut ada, "general", BURST).await;
    let expected: Vec<String> = (0..BURST).map(|i| format!("burst {i}")).collect();
    assert_eq!(texts(&got), expected, "every message of the burst, once, in the order sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_sends_is_stored_in_order_and_a_repeated_client_id_once() {
    let topology = Topology::start(1, 1).await;
    let mut ada = topology.client(0).await;
    let joined = ada.join("general", "ada").await;
    let member_id = joined["member_id"].as_str().expect("member id").to_owned();
    let batch = |ids: &[&str]| SendBatchRequest {
        room: "general".into(),
        member_id: member_id.clone(),
        messages: ids
            .iter()
            .map(|id| BatchedMessage { text: format!("text {id}"), client_id: (*id).into(), ..Default::default() })
            .collect(),
        ..Default::default()
    };
    let mut grpc = topology.grpc(0).await;
    let first = grpc.send_batch(batch(&["a", "b", "a", "c"])).await.expect("SendBatch").into_inner().events;
    let seqs: Vec<u64> = first.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 1, 3], "in order; the repeated \"a\" is the first one again");
    let again = grpc.send_batch(batch(&["c", "d"])).await.expect("SendBatch").into_inner().events;
    assert_eq!(again.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4], "a retried batch stores only what is new");
    let got = messages(&mut ada, "general", 4).await;
    assert_eq!(texts(&got), ["text a", "text b", "text c", "text d"]);
    assert!(got.iter().all(|m| m["username"] == "ada"), "the sender's name comes from its membership: {got:?}");

    let too_many = grpc.send_batch(batch(&["x"; 65])).await.expect_err("65 messages");
    assert_eq!(too_many.code(), tonic::Code::InvalidArgument);
    assert!(too_many.message().contains("1 to 64"), "{}", too_many.message());
    let stranger = SendBatchRequest { member_id: "gw-x/none-1".into(), ..batch(&["z"]) };
    let refused = grpc.send_batch(stranger).await.expect_err("not a member");
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_costs_one_redis_call_whatever_the_room_size_or_gateway_count() {
    use futures_util::StreamExt;
    let topology = Topology::start(1, 3).await;
    let url = topology.redis.as_ref().expect("a redis").url();
    // A room of two on one gateway, and a room of 30 over three.
    let mut small = topology.client(0).await;
    small.join("small", "ada").await;
    let mut other = topology.client(0).await;
    other.join("small", "bob").await;
    let mut big = Vec::new();
    for i in 0..30 {
        let mut client = topology.client(i % 3).await;
        client.join("big", &format!("u{i}")).await;
        big.push(client);
    }
    const SENDS: usize = 10;
    for (room, sender) in [("small", &mut small), ("big", &mut big[0])] {
        // MONITOR shows every command a client sends, and marks those a
        // script runs as `[0 lua]`.
        let monitor = redis::Client::open(url.as_str()).expect("url").get_async_monitor().await.expect("MONITOR");
        let mut commands = monitor.into_on_message::<String>();
        for i in 0..SENDS {
            // One at a time: each waits for its own echo, so none are batched.
            sender.say(room, &format!("{room} {i}")).await;
            sender.next_where(|f| f["type"] == "message" && f["text"] == format!("{room} {i}")).await;
        }
        let mut seen = Vec::new();
        while let Ok(Some(line)) = tokio::time::timeout(Duration::from_millis(300), commands.next()).await {
            seen.push(line);
        }
        let tag = format!("chat:{{{room}}}:");
        let from_clients: Vec<&String> =
            seen.iter().filter(|line| line.contains(&tag) && !line.contains(" lua]")).collect();
        let stores = from_clients.iter().filter(|line| line.contains(&format!("{tag}seq"))).count();
        // The first call of a script a fresh Redis does not know yet is sent
        // again after SCRIPT LOAD.
        assert!((SENDS..=SENDS + 1).contains(&stores), "{room}: one script call per send: {from_clients:#?}");
        // Heartbeats (a script on the presence key, every 10 s) may fall in
        // the window; nothing else of the room's may.
        let others: Vec<_> = from_clients
            .iter()
            .filter(|line| !line.contains(&format!("{tag}seq")) && !line.contains(&format!("{tag}presence")))
            .collect();
        assert!(others.is_empty(), "{room}: a send issued more than its script call: {others:#?}");
    }
}
