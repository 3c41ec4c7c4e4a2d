//! Chaos: tabs that behave like the page (support/tab.rs) chat in four
//! rooms while their connections keep dropping, a gateway crashes, a
//! room-service crashes and Redis restarts (from its append-only file). At
//! the end every tab must have seen every message of its room since it
//! first joined exactly once, in seq order, and every one of its sends must
//! have come back.
//!
//! The run is random; it prints its seed, and `CHAOS_SEED=<seed>` replays
//! the same drops (the timing of everything else still varies).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::tab::{self, Ledger, Order, Seen, TabConfig, TabHandle};
use crate::support::{Client, RedisServer, Topology, messages};
use chat_proto::v1::GetRoomRequest;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use tokio::sync::watch;
use tokio::time::Instant;

const ROOMS: usize = 4;
const TABS_PER_ROOM: usize = 9;
/// 9 tabs sending every 225 ms: about 40 messages a second per room.
const SEND_EVERY: Duration = Duration::from_millis(225);
/// The chaos runs in steps of this; every second step a quarter of the
/// tabs drop.
const STEP: Duration = Duration::from_millis(1500);
const STEPS: u32 = 16;
/// How long the end may take: drops to come back, sends to be echoed.
const SETTLE_WITHIN: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_repeated_through_drops_and_crashes() {
    let seed = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(rand::random::<u64>);
    println!("chaos seed {seed} (CHAOS_SEED={seed} replays its drops)");
    let mut rng = StdRng::seed_from_u64(seed);

    let redis = RedisServer::start_persistent().await;
    // Resumes must never outrun the history here: a "recovered": false is a fault.
    let mut topology = Topology::start_on(redis, 2, 3, |rs| rs.history_len = 5000, |_| {}).await;
    let rooms: Vec<String> = (0..ROOMS).map(|r| format!("chaos-{r}")).collect();
    let doomed_room_service = topology.owner_of(&rooms[0]);
    let survivor = 1 - doomed_room_service;
    const DOOMED_GATEWAY: usize = 2;

    // Each room has a message (so an epoch) before the tabs join.
    for room in &rooms {
        let mut opener = topology.client(0).await;
        opener.join(room, "opener").await;
        opener.say(room, "open").await;
        messages(&mut opener, room, 1).await;
        opener.close().await;
    }

    let live = Arc::new(Mutex::new(topology.live_gateways()));
    let (targets, targets_rx) = watch::channel(BTreeMap::new());
    // One reference per room on a gateway that never goes away, never dropped.
    let steady = Arc::new(Mutex::new(vec![topology.gateway_addr(0)]));
    let references: Vec<TabHandle> = rooms
        .iter()
        .enumerate()
        .map(|(r, room)| {
            tab::spawn(TabConfig {
                name: format!("ref{r}"),
                room: room.clone(),
                gateways: steady.clone(),
                first_gateway: topology.gateway_addr(0),
                send_every: None,
                targets: targets_rx.clone(),
                seed: seed ^ (1000 + r as u64),
            })
        })
        .collect();
    // The references answer for every message from here on, so they join first.
    let joined_by = Instant::now() + SETTLE_WITHIN;
    while !references.iter().all(TabHandle::has_joined) {
        assert!(Instant::now() < joined_by, "the references did not join");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut tabs = Vec::new();
    for (r, room) in rooms.iter().enumerate() {
        for i in 0..TABS_PER_ROOM {
            let n = r * TABS_PER_ROOM + i;
            tabs.push(tab::spawn(TabConfig {
                name: format!("r{r}t{i}"),
                room: room.clone(),
                gateways: live.clone(),
                first_gateway: topology.gateway_addr(n % 3),
                send_every: Some(SEND_EVERY),
                targets: targets_rx.clone(),
                seed: seed ^ n as u64,
            }));
        }
    }

    let start = Instant::now();
    for step in 1..=STEPS {
        tokio::time::sleep_until(start + STEP * step).await;
        if step % 2 == 0 && step < STEPS {
            for i in sample(&mut rng, tabs.len(), tabs.len() / 4) {
                tabs[i].order(Order::Drop(Duration::from_millis(rng.random_range(2000..=4000))));
            }
        }
        match step {
            5 => {
                println!("{:>5.1} s: killing gateway {DOOMED_GATEWAY}", start.elapsed().as_secs_f64());
                live.lock().expect("gateway list").retain(|a| *a != topology.gateway_addr(DOOMED_GATEWAY));
                topology.kill_gateway(DOOMED_GATEWAY).await;
            }
            9 => {
                println!("{:>5.1} s: killing room-service {doomed_room_service}", start.elapsed().as_secs_f64());
                topology.kill_room_service(doomed_room_service).await;
            }
            13 => {
                println!("{:>5.1} s: restarting Redis", start.elapsed().as_secs_f64());
                topology.redis.as_mut().expect("a single Redis").restart().await;
            }
            _ => {}
        }
    }

    println!("{:>5.1} s: finishing", start.elapsed().as_secs_f64());
    for tab in tabs.iter().chain(&references) {
        tab.order(Order::Finish);
    }
    let settle_by = Instant::now() + SETTLE_WITHIN;
    while !tabs.iter().all(TabHandle::is_settled) {
        if Instant::now() > settle_by {
            let unsettled: Vec<&str> = tabs.iter().filter(|t| !t.is_settled()).map(|t| t.name.as_str()).collect();
            panic!("tabs still have sends without an echo, or are not joined, after {SETTLE_WITHIN:?}: {unsettled:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut grpc = topology.grpc(survivor).await;
    let mut last_seqs = BTreeMap::new();
    for room in &rooms {
        let state = grpc
            .get_room(GetRoomRequest { room: room.clone(), ..Default::default() })
            .await
            .expect("GetRoom")
            .into_inner();
        last_seqs.insert(room.clone(), state.last_seq);
    }
    println!("{:>5.1} s: settled; last seqs {last_seqs:?}", start.elapsed().as_secs_f64());
    targets.send_replace(last_seqs.clone());

    let mut reference_ledgers = BTreeMap::new();
    for reference in references {
        let ledger = reference.ledger(SETTLE_WITHIN).await;
        reference_ledgers.insert(ledger.room.clone(), ledger);
    }
    let mut ledgers = Vec::new();
    for tab in tabs {
        ledgers.push(tab.ledger(SETTLE_WITHIN).await);
    }

    let mut faults = Vec::new();
    for (room, reference) in &reference_ledgers {
        faults.extend(reference.faults.iter().map(|f| format!("{}: {f}", reference.name)));
        if reference.reconnects > 0 {
            faults
                .push(format!("{}: the reference lost its connection {} times", reference.name, reference.reconnects));
        }
        let expected: Vec<u64> = (reference.first_after + 1..=last_seqs[room]).collect();
        let seqs: Vec<u64> = reference.seen.iter().map(|s| s.seq).collect();
        if seqs != expected {
            faults.push(format!("{}: did not see every seq of {room} once, in order", reference.name));
        }
        // A send, however often it was sent, is stored once.
        let mut stored_as = BTreeMap::new();
        for seen in reference.seen.iter().filter(|s| !s.client_id.is_empty()) {
            if let Some(first) = stored_as.insert(seen.client_id.clone(), seen.seq) {
                faults.push(format!(
                    "{room}: client id {} stored twice, as seq {first} and {}",
                    seen.client_id, seen.seq
                ));
            }
        }
        // What the room holds, from its history, is what the reference saw.
        let mut auditor = Client::connect(topology.gateway_addr(0)).await;
        let joined = auditor.join_after(room, "auditor", reference.first_after, &reference.epoch).await;
        let history: Vec<Seen> = joined["history"].as_array().expect("history").iter().map(Seen::of).collect();
        if joined["recovered"] != true || history != reference.seen {
            faults.push(format!(
                "{room}: its history ({} messages, recovered {}) is not what the reference saw ({})",
                history.len(),
                joined["recovered"],
                reference.seen.len()
            ));
        }
        auditor.close().await;
    }
    for ledger in &ledgers {
        faults.extend(ledger.faults.iter().map(|f| format!("{}: {f}", ledger.name)));
        if !ledger.unacked.is_empty() || ledger.acked != ledger.sent {
            faults.push(format!(
                "{}: {} of {} sends echoed; never echoed: {:?}",
                ledger.name, ledger.acked, ledger.sent, ledger.unacked
            ));
        }
        let reference = &reference_ledgers[&ledger.room];
        let expected: Vec<&Seen> = reference.seen.iter().filter(|s| s.seq > ledger.first_after).collect();
        if ledger.seen.iter().collect::<Vec<_>>() != expected {
            faults.push(format!(
                "{}: saw {} messages, the room stored {} after seq {}",
                ledger.name,
                ledger.seen.len(),
                expected.len(),
                ledger.first_after
            ));
        }
    }

    print_totals(&ledgers, &reference_ledgers);
    assert!(faults.is_empty(), "{} faults (seed {seed}):\n{}", faults.len(), faults.join("\n"));
}

fn print_totals(ledgers: &[Ledger], references: &BTreeMap<String, Ledger>) {
    let sum = |f: fn(&Ledger) -> u64| ledgers.iter().map(f).sum::<u64>();
    let mut close_codes = BTreeMap::new();
    for ledger in ledgers {
        for (code, n) in &ledger.close_codes {
            *close_codes.entry(*code).or_insert(0) += n;
        }
    }
    println!(
        "stored {} messages in {} rooms; {} tabs: {} deliveries, {} sent ({} while offline), {} echoed, {} re-sent, {} repeated echoes, \
         {} reconnects ({} drops by reset), {} resumes, {} upgrades answered 503; close codes {close_codes:?}",
        references.values().map(|r| r.seen.len()).sum::<usize>(),
        references.len(),
        ledgers.len(),
        sum(|l| l.seen.len() as u64),
        sum(|l| l.sent),
        sum(|l| l.written_offline),
        sum(|l| l.acked),
        sum(|l| l.resent),
        sum(|l| l.repeated_echoes),
        sum(|l| l.reconnects),
        sum(|l| l.resets),
        sum(|l| l.resumes),
        sum(|l| l.unavailable_upgrades),
    );
}
