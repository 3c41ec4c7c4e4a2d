//! The `Broker` trait's promises, checked on both brokers with the same
//! steps: the Redis broker (on a real `redis-server` this test starts) and
//! the in-process one of the embedded mode. The in-process broker claims the
//! same behaviour as Redis; this is where that claim is held to.

use std::sync::Arc;
use std::time::Duration;

use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{ChatMessage, Member, PresenceDiff, RoomEvent};
use chat_proto::{MemberId, RoomName};
use chat_testkit::RedisServer;
use room_service::{
    Broker, BrokerError, Fanout, Leave, MemoryBroker, Outgoing, PresenceChange, RedisBroker, Retention,
    RoomServiceMetrics, SnapshotSize, Subscription,
};

const RETENTION: Retention = Retention { history_len: 20, room_ttl: Duration::from_secs(600) };
const SNAPSHOT: SnapshotSize = SnapshotSize { history: 5, members: 3 };
const LATER: i64 = i64::MAX / 2;

fn fanout() -> Arc<Fanout> {
    Fanout::new(1024, Arc::new(RoomServiceMetrics::new("contract")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_broker_keeps_the_contract() {
    let redis = RedisServer::start().await;
    let broker = RedisBroker::connect(&redis.url(), RETENTION, fanout()).await.expect("connects");
    contract(&broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_broker_keeps_the_same_contract() {
    contract(&MemoryBroker::new(RETENTION, fanout())).await;
}

/// Brokers told that rooms are seeded by the caller (a room-service with a
/// store) start no room themselves: writes to a room they have no epoch
/// for are refused, changing nothing, until it is seeded; a seed happens
/// once, and the room goes on from the seeded seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_brokers_leave_rooms_to_be_seeded_when_told() {
    let redis = RedisServer::start().await;
    let on_redis = RedisBroker::connect(&redis.url(), RETENTION, fanout()).await.expect("connects");
    rooms_are_seeded_by_the_caller(&on_redis.seeded_by_caller()).await;
    rooms_are_seeded_by_the_caller(&MemoryBroker::new(RETENTION, fanout()).seeded_by_caller()).await;
}

async fn rooms_are_seeded_by_the_caller<B: Broker>(broker: &B) {
    let lost = room("lost");
    let unseeded = |result: Result<_, BrokerError>, what: &str| match result {
        Err(BrokerError::Unseeded(room)) => assert_eq!(room, "lost", "{what}"),
        other => panic!("{what}: not refused as unseeded: {other:?}"),
    };
    unseeded(broker.append_messages(&lost, None, vec![message(&lost, "hi", "")]).await.map(|_| ()), "a send");
    let joining = [join("m1", "ada", "c1")];
    unseeded(broker.apply_presence(&lost, &joining, SNAPSHOT).await.map(|_| ()), "a join");
    let position = broker.position(&lost).await.expect("a position");
    assert_eq!(position.epoch, "", "a refused call started no epoch: {position:?}");
    let page = broker.members_page(&lost, "", 10).await.expect("a read needs no seed");
    assert_eq!(page.member_count, 0, "the refused join changed nothing");

    assert!(broker.seed(&lost, "kept-epoch", 300).await.expect("seeds"), "the first seed seeds");
    assert!(!broker.seed(&lost, "other-epoch", 5).await.expect("answers"), "a second seed changes nothing");
    let stored = broker.append_messages(&lost, None, vec![message(&lost, "next", "")]).await.expect("stored");
    assert_eq!((stored[0].event.epoch.as_str(), stored[0].event.seq), ("kept-epoch", 301), "goes on from the seed");
    let joined = broker.apply_presence(&lost, &joining, SNAPSHOT).await.expect("a join");
    assert_eq!(joined.snapshot.position.epoch, "kept-epoch");
    assert_eq!(joined.snapshot.position.last_seq, 301);
}

async fn contract<B: Broker>(broker: &B) {
    messages_are_numbered_named_and_stored_once(broker).await;
    history_is_bounded_and_read_back_in_order(broker).await;
    presence_changes_publish_one_diff_per_batch(broker).await;
    a_resumed_session_changes_nothing_anyone_sees(broker).await;
    a_detached_member_leaves_for_its_reason_when_its_time_runs_out(broker).await;
    members_page_in_name_order_exactly_once(broker).await;
    heartbeats_know_who_is_present(broker).await;
}

fn room(name: &str) -> RoomName {
    RoomName::try_from(name).expect("a room name")
}

fn member(id: &str, name: &str, connection: &str) -> Member {
    Member {
        member_id: id.into(),
        username: name.into(),
        gateway: "gw-1".into(),
        joined_at_ms: 1,
        connection: connection.into(),
        user_id: format!("u-{id}"),
    }
}

fn join(id: &str, name: &str, connection: &str) -> PresenceChange {
    PresenceChange::Join { member: member(id, name, connection), expires_at_ms: LATER, restore: false }
}

fn message(room: &RoomName, text: &str, client_id: &str) -> Outgoing {
    let chat = ChatMessage { text: text.into(), client_id: client_id.into(), ..Default::default() };
    Outgoing {
        client_id: client_id.into(),
        event: RoomEvent { room: room.to_string(), kind: Some(Kind::Message(chat)), ..Default::default() },
    }
}

fn text(event: &RoomEvent) -> (&str, &str) {
    match &event.kind {
        Some(Kind::Message(m)) => (m.username.as_str(), m.text.as_str()),
        other => panic!("not a message: {other:?}"),
    }
}

/// The next event a subscription gets, within a few seconds.
async fn next(subscription: &mut Subscription) -> Arc<RoomEvent> {
    tokio::time::timeout(Duration::from_secs(5), subscription.events.recv())
        .await
        .expect("an event within 5 s")
        .expect("the subscription is open")
}

async fn next_diff(subscription: &mut Subscription) -> PresenceDiff {
    match next(subscription).await.kind.clone() {
        Some(Kind::Presence(diff)) => diff,
        other => panic!("expected a presence diff, got {other:?}"),
    }
}

async fn messages_are_numbered_named_and_stored_once<B: Broker>(broker: &B) {
    let room = room("numbered");
    let ada = MemberId::try_from("m-ada").expect("an id");
    let mut live = broker.subscribe(&room).await.expect("subscribes");
    broker.apply_presence(&room, &[join("m-ada", "ada", "c1")], SNAPSHOT).await.expect("joins");
    next_diff(&mut live).await;

    let stored = broker
        .append_messages(&room, Some(&ada), vec![message(&room, "one", "c-1"), message(&room, "two", "c-2")])
        .await
        .expect("stored");
    assert!(stored.iter().all(|s| !s.repeat), "new messages");
    let stored: Vec<RoomEvent> = stored.into_iter().map(|s| s.event).collect();
    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2], "numbered from 1, in the order given");
    assert_eq!(stored.iter().map(text).collect::<Vec<_>>(), [("ada", "one"), ("ada", "two")], "named by the member");
    let epoch = stored[0].epoch.clone();
    assert!(!epoch.is_empty() && stored.iter().all(|e| e.epoch == epoch && e.id == format!("{epoch}:{}", e.seq)));

    // A retried client id comes back as first stored, marked a repeat;
    // nothing new is stored or published.
    let again = broker
        .append_messages(&room, Some(&ada), vec![message(&room, "one again", "c-1"), message(&room, "three", "c-3")])
        .await
        .expect("ok");
    assert_eq!(again.iter().map(|s| (s.event.seq, s.repeat)).collect::<Vec<_>>(), [(1, true), (3, false)]);
    assert_eq!(text(&again[0].event), ("ada", "one"));
    let system = broker.append_messages(&room, None, vec![message(&room, "notice", "")]).await.expect("system");
    assert_eq!((system[0].event.seq, text(&system[0].event)), (4, ("system", "notice")));

    // Live readers get what was stored, once each, in order.
    for want in [1, 2, 3, 4] {
        assert_eq!(next(&mut live).await.seq, want);
    }

    let stranger = MemberId::try_from("m-nobody").expect("an id");
    let refused = broker.append_messages(&room, Some(&stranger), vec![message(&room, "hi", "")]).await;
    assert!(
        matches!(&refused, Err(BrokerError::NotMember(id)) if id == "m-nobody"),
        "a non-member cannot post, and is told it is not a member (not a Redis or data error): {refused:?}"
    );
    assert_eq!(broker.position(&room).await.expect("position").last_seq, 4, "the refusal stored nothing");
}

async fn history_is_bounded_and_read_back_in_order<B: Broker>(broker: &B) {
    let room = room("bounded");
    // Redis trims whole stream nodes (100 entries each): store enough that
    // some go.
    let all: Vec<Outgoing> = (1..=300).map(|i| message(&room, &format!("m{i}"), "")).collect();
    broker.append_messages(&room, None, all).await.expect("stored");

    let (recent, position) = broker.recent(&room, 5).await.expect("recent");
    assert_eq!(recent.iter().map(|e| e.seq).collect::<Vec<_>>(), [296, 297, 298, 299, 300]);
    assert_eq!(position.last_seq, 300);
    let after = broker.after(&room, 295, 3).await.expect("after");
    assert_eq!(after.iter().map(|e| e.seq).collect::<Vec<_>>(), [296, 297, 298]);
    // At least HISTORY_LEN kept (Redis trims approximately, never below),
    // and the oldest gone.
    let kept = broker.after(&room, 0, 1000).await.expect("all kept");
    assert!(kept.len() >= RETENTION.history_len && kept.len() < 300, "kept {}", kept.len());
    assert!(kept.windows(2).all(|w| w[1].seq == w[0].seq + 1) && kept.last().map(|e| e.seq) == Some(300));
}

async fn presence_changes_publish_one_diff_per_batch<B: Broker>(broker: &B) {
    let room = room("presence");
    let mut live = broker.subscribe(&room).await.expect("subscribes");
    let batch = [join("m1", "bea", "c1"), join("m2", "al", "c2"), join("m1", "bea", "c1")];
    let outcome = broker.apply_presence(&room, &batch, SNAPSHOT).await.expect("applied");
    assert_eq!(outcome.applied, [true, true, false], "joining again under the same name changes nothing");
    let diff = next_diff(&mut live).await;
    assert_eq!(diff.joins.iter().map(|m| m.username.as_str()).collect::<Vec<_>>(), ["bea", "al"]);
    assert_eq!(diff.member_count, 2);
    let snapshot = outcome.snapshot;
    assert_eq!(snapshot.members.iter().map(|m| m.username.as_str()).collect::<Vec<_>>(), ["al", "bea"]);
    assert_eq!((snapshot.member_count, snapshot.members_next.as_str()), (2, ""));

    let leave = |id: &str, connection: Option<&str>| {
        PresenceChange::Leave(Leave {
            member_id: id.into(),
            reason: "left".into(),
            connection: connection.map(str::to_owned),
            ..Leave::default()
        })
    };
    // A leave for a connection that no longer holds the member does nothing;
    // a leave of someone absent neither.
    let outcome = broker
        .apply_presence(&room, &[leave("m1", Some("c-old")), leave("m9", None), leave("m2", Some("c2"))], SNAPSHOT)
        .await
        .expect("applied");
    assert_eq!(outcome.applied, [false, false, true]);
    let diff = next_diff(&mut live).await;
    assert_eq!(diff.leaves.len(), 1);
    assert_eq!(
        (diff.leaves[0].member.as_ref().map(|m| m.username.as_str()), diff.leaves[0].reason.as_str()),
        (Some("al"), "left")
    );
    assert_eq!((diff.member_count, outcome.snapshot.member_count), (1, 1));

    // A restore puts a member back without a join anyone sees.
    let restore = PresenceChange::Join { member: member("m3", "cy", "c3"), expires_at_ms: LATER, restore: true };
    broker.apply_presence(&room, &[restore], SNAPSHOT).await.expect("restored");
    let diff = next_diff(&mut live).await;
    assert_eq!((diff.joins.len(), diff.restored, diff.member_count), (0, 1, 2));
}

async fn a_resumed_session_changes_nothing_anyone_sees<B: Broker>(broker: &B) {
    let room = room("resumed");
    let mut live = broker.subscribe(&room).await.expect("subscribes");
    broker.apply_presence(&room, &[join("s1", "ada", "gw-1/a-1")], SNAPSHOT).await.expect("joins");
    next_diff(&mut live).await;

    // The same session on another connection: a takeover, not a join.
    let outcome = broker.apply_presence(&room, &[join("s1", "ada", "gw-2/b-7")], SNAPSHOT).await.expect("resumes");
    assert_eq!(outcome.applied, [false]);
    let diff = next_diff(&mut live).await;
    assert!(diff.joins.is_empty() && diff.leaves.is_empty(), "{diff:?}");
    assert_eq!(
        diff.moved.iter().map(|m| (m.member_id.as_str(), m.connection.as_str())).collect::<Vec<_>>(),
        [("s1", "gw-1/a-1")],
        "the old connection is told"
    );
    let held = broker.member(&room, &MemberId::try_from("s1").expect("an id")).await.expect("read");
    assert_eq!(held.map(|m| m.connection), Some("gw-2/b-7".to_owned()));
}

async fn a_detached_member_leaves_for_its_reason_when_its_time_runs_out<B: Broker>(broker: &B) {
    let room = room("detached");
    let mut live = broker.subscribe(&room).await.expect("subscribes");
    broker.apply_presence(&room, &[join("s1", "ada", "c1"), join("s2", "bob", "c2")], SNAPSHOT).await.expect("joins");
    next_diff(&mut live).await;

    let now = chat_runtime_now();
    let detach = |id: &str, connection: &str, until: i64| {
        PresenceChange::Leave(Leave {
            member_id: id.into(),
            reason: "disconnected".into(),
            connection: Some(connection.into()),
            detach_until: Some(until),
            ..Leave::default()
        })
    };
    // ada vanishes with a long grace, bob with one already over.
    let outcome =
        broker.apply_presence(&room, &[detach("s1", "c1", now + 60_000), detach("s2", "c2", now - 1)], SNAPSHOT).await;
    assert_eq!(outcome.expect("detached").applied, [false, false], "detaching is not leaving");

    // The next batch finds bob's time run out: he leaves, for the reason
    // he was detached for; ada is still there.
    let outcome = broker.apply_presence(&room, &[], SNAPSHOT).await.expect("applied");
    let diff = next_diff(&mut live).await;
    assert_eq!(
        diff.leaves
            .iter()
            .map(|l| (l.member.as_ref().map_or("", |m| m.username.as_str()), l.reason.as_str()))
            .collect::<Vec<_>>(),
        [("bob", "disconnected")]
    );
    assert_eq!(outcome.snapshot.member_count, 1);

    // ada's session resumes within her grace: silently, and she is held again.
    broker.apply_presence(&room, &[join("s1", "ada", "c9")], SNAPSHOT).await.expect("resumes");
    let expired = broker.expired(&room, now + 120_000, 10).await.expect("expired");
    assert!(expired.is_empty(), "resumed: present until the presence TTL, not the grace: {expired:?}");
}

async fn members_page_in_name_order_exactly_once<B: Broker>(broker: &B) {
    let room = room("paged");
    let names = ["eve", "ada", "dan", "bob", "cy", "fay", "gus"];
    let joins: Vec<PresenceChange> = names.iter().map(|n| join(&format!("id-{n}"), n, n)).collect();
    broker.apply_presence(&room, &joins, SNAPSHOT).await.expect("joins");
    let (mut seen, mut after) = (Vec::new(), String::new());
    loop {
        let page = broker.members_page(&room, &after, 3).await.expect("a page");
        assert_eq!(page.member_count, 7);
        seen.extend(page.members.iter().map(|m| m.username.clone()));
        if page.next.is_empty() {
            break;
        }
        after = page.next;
    }
    assert_eq!(seen, ["ada", "bob", "cy", "dan", "eve", "fay", "gus"]);
}

async fn heartbeats_know_who_is_present<B: Broker>(broker: &B) {
    let room = room("beats");
    let now = chat_runtime_now();
    let soon = PresenceChange::Join { member: member("h1", "ada", "c1"), expires_at_ms: now + 1_000, restore: false };
    broker.apply_presence(&room, &[soon], SNAPSHOT).await.expect("joins");
    assert_eq!(broker.expired(&room, now + 2_000, 10).await.expect("expired"), ["h1"]);
    let unknown = broker.heartbeat(&room, &["h1".into(), "h2".into()], now + 10_000).await.expect("heartbeat");
    assert_eq!(unknown, ["h2"], "the one it does not know");
    assert!(broker.expired(&room, now + 2_000, 10).await.expect("expired").is_empty(), "the heartbeat kept h1");
}

fn chat_runtime_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
