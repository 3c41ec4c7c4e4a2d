//! The embedded mode: one room-service on its in-process broker, no Redis,
//! with two gateways in front of it.

use crate::support::{Topology, messages};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_room_service_without_redis_serves_two_gateways() {
    let topology = Topology::embedded(2).await;
    assert!(topology.redis.is_none());
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    let mut bob = topology.client(1).await;
    let joined = bob.join("general", "bob").await;
    assert_eq!(joined["members"].as_array().map(Vec::len), Some(2));
    ada.next_join_of("bob").await;

    ada.say("general", "hello from 0").await;
    bob.say("general", "hello from 1").await;
    for client in [&mut ada, &mut bob] {
        let first = client.next_where(|f| f["type"] == "message").await;
        let second = client.next_where(|f| f["type"] == "message").await;
        let (first, second) = (first["seq"].as_u64().expect("a seq"), second["seq"].as_u64().expect("a seq"));
        assert_eq!(second, first + 1, "one room, consecutive sequence numbers");
    }

    let mut dev = topology.client(1).await;
    dev.join("dev", "cy").await;
    dev.say("dev", "dev only").await;
    assert_eq!(dev.next_where(|f| f["type"] == "message").await["text"], "dev only");

    bob.send(json!({"type": "leave", "room": "general"})).await;
    let left = ada.next_leave_of("bob").await;
    assert_eq!(left["reason"], "left", "{left}");
    let rest = ada.drain(std::time::Duration::from_millis(300)).await;
    assert!(rest.iter().all(|f| f["room"] != "dev"), "dev leaked into general: {rest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_send_with_the_same_client_id_is_stored_once() {
    let topology = Topology::embedded(1).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    let mut bob = topology.client(0).await;
    bob.join("general", "bob").await;
    for _ in 0..2 {
        ada.send(json!({"type": "send", "room": "general", "text": "once", "client_id": "c-1"})).await;
    }
    ada.say("general", "marker").await;

    // Stored once: the others get it once, and the next message is next in seq.
    let first = bob.next_where(|f| f["type"] == "message").await;
    assert_eq!((first["text"].as_str(), first["client_id"].as_str()), (Some("once"), Some("c-1")));
    let second = bob.next_where(|f| f["type"] == "message").await;
    assert_eq!(second["text"], "marker", "the retry must not be stored again");
    assert_eq!(second["seq"].as_u64(), first["seq"].as_u64().map(|seq| seq + 1));

    // The sender gets an echo for each send, the retry's being the stored one.
    let echoes: Vec<_> = messages(&mut ada, "general", 3).await;
    let once: Vec<_> = echoes.iter().filter(|m| m["client_id"] == "c-1").collect();
    assert_eq!(once.len(), 2, "an echo per send: {echoes:?}");
    assert!(once.iter().all(|m| m["id"] == first["id"] && m["seq"] == first["seq"]), "{echoes:?}");
}
