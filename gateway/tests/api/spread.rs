//! Rooms spread evenly over room-services: four on one Redis, 200 rooms
//! joined through a gateway, each room-service subscribed to 15–35% of them.

use std::time::Duration;

use chat_proto::people::inbox_room;

use crate::support::{PATIENCE, Topology, http_get, metric};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_room_services_share_200_rooms_within_15_to_35_percent_each() {
    let topology = Topology::start(4, 1).await;
    let rooms: Vec<String> = (0..200).map(|i| format!("room-{i}")).collect();
    // A browser may be in 32 rooms at most: 25 rooms per client.
    let mut clients = Vec::new();
    for chunk in rooms.chunks(25) {
        let mut client = topology.client(0).await;
        for room in chunk {
            client.join(room, "ada").await;
        }
        clients.push(client);
    }

    // Each room-service reports the rooms it holds a Redis subscription
    // for: these, and the inbox rooms of the clients' users (issue 17),
    // which are not counted here.
    let mut inboxes = [0.0; 4];
    let users: std::collections::HashSet<String> = clients.iter().map(|c| inbox_room(&c.user_id())).collect();
    for inbox in &users {
        inboxes[topology.owner_of(inbox)] += 1.0;
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let shares = loop {
        let mut counts = Vec::new();
        for (i, inboxes) in inboxes.iter().enumerate() {
            let (_, body) = http_get(topology.room_service_metrics_addr(i), "/metrics").await;
            counts.push(metric(&body, &["chat_room_service_rooms_subscribed"]) - inboxes);
        }
        if counts.iter().sum::<f64>() == 200.0 || tokio::time::Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(shares.iter().sum::<f64>(), 200.0, "every room subscribed once in all: {shares:?}");
    for (i, count) in shares.iter().enumerate() {
        let share = count / 200.0;
        assert!(
            (0.15..=0.35).contains(&share),
            "room-service {i} holds {:.0}% of the rooms: {shares:?}",
            share * 100.0
        );
    }
}
