//! A join storm on a real topology: thousands of browsers joining one room
//! at once all get in, see one member count, are never cut off as slow
//! consumers, and are told about each other in batched presence frames
//! rather than one frame per join.

use std::collections::HashSet;
use std::sync::Arc;

use crate::support::{Client, Topology};
use chat_proto::v1::GetRoomRequest;
use serde_json::json;
use tokio::sync::Semaphore;

/// Browsers joining at once: CI-sized, and far past where one frame per
/// join per member would fill a 1024-frame queue.
const STORM: usize = 2000;

/// Lets this process hold every client socket and, in-process, the
/// gateways' ends of them.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let needed = (4 * STORM + 1024) as u64;
    assert!(hard >= needed, "open-files hard limit {hard} is below {needed}: raise it (ulimit -Hn) to run this test");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("setrlimit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_joins_into_one_room_gets_everyone_in_and_cuts_no_one_off() {
    raise_open_files_limit();
    let topology = Topology::start(2, 2).await;
    let addrs = [topology.gateway_addr(0), topology.gateway_addr(1)];

    // Everyone connects and joins at once (a bounded number of handshakes in
    // flight, as browsers behind one balancer would be).
    let handshakes = Arc::new(Semaphore::new(256));
    let joins: Vec<_> = (0..STORM)
        .map(|i| {
            let handshakes = Arc::clone(&handshakes);
            let addr = addrs[i % addrs.len()];
            tokio::spawn(async move {
                let permit = handshakes.acquire_owned().await.expect("semaphore");
                let mut client = Client::connect(addr).await;
                drop(permit);
                let joined = client.join("lecture", &format!("student{i}")).await;
                (client, joined)
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(STORM);
    for join in joins {
        let (client, joined) = join.await.expect("every browser gets `joined`");
        let listed = joined["members"].as_array().expect("members").len();
        assert!(listed <= 100, "joined lists at most 100 members, not {listed}");
        clients.push(client);
    }

    // Each browser reads until the room's count, as presence frames tell it,
    // reaches everyone; a 4008 on the way would fail `next` with the close.
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                let mut presence_frames = 0;
                loop {
                    let frame = client.next_where(|f| f["type"] == "presence").await;
                    presence_frames += 1;
                    if frame["member_count"] == STORM {
                        return (client, presence_frames);
                    }
                }
            })
        })
        .collect();
    let mut clients = Vec::with_capacity(STORM);
    let mut most_frames = 0;
    for reader in readers {
        let (client, frames) = reader.await.expect("every browser sees the full count");
        most_frames = most_frames.max(frames);
        clients.push(client);
    }
    // One frame per join would be up to STORM frames for the first joiner.
    assert!(
        most_frames < STORM / 4,
        "presence is batched: the busiest browser got {most_frames} presence frames for {STORM} joins"
    );

    let room = topology
        .grpc(0)
        .await
        .get_room(GetRoomRequest { room: "lecture".into(), ..Default::default() })
        .await
        .expect("GetRoom")
        .into_inner();
    assert_eq!(room.member_count as usize, STORM, "the room-service counts everyone");

    // Paging through `members` gives everyone, once.
    let pager = &mut clients[0];
    let mut seen = HashSet::new();
    let mut after = String::new();
    loop {
        pager.send(json!({"type": "members", "room": "lecture", "after": after})).await;
        let page = pager.next_of("members").await;
        assert_eq!(page["member_count"], STORM);
        for member in page["members"].as_array().expect("a page") {
            let id = member["member_id"].as_str().expect("member id").to_owned();
            assert!(seen.insert(id), "a member listed twice: {member}");
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), STORM, "every member, page by page");

    // A message after the storm reaches everyone.
    clients[1].say("lecture", "welcome, everyone").await;
    for client in &mut clients {
        assert_eq!(client.next_of("message").await["text"], "welcome, everyone");
    }
}
