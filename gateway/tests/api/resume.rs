//! Sessions and resuming (docs/protocol.md, "Sessions and resuming"): a
//! browser that drops and comes back with its session token, on any
//! gateway, is the same member and gets exactly what it missed; a browser
//! that goes silent is timed out; a session lives on one connection.

use std::time::Duration;

use crate::support::{Client, PATIENCE, Topology, messages};
use serde_json::{Value, json};
use tokio::time::Instant;

const ROOM: &str = "lobby";

fn seq(frame: &Value) -> u64 {
    frame["seq"].as_u64().unwrap_or_else(|| panic!("a message has a seq: {frame}"))
}

/// What identifies a stored message: its seq, id, text and client id.
fn stored(frames: &[Value]) -> Vec<(u64, String, String, String)> {
    frames
        .iter()
        .map(|f| {
            let text = |key: &str| f[key].as_str().unwrap_or_default().to_owned();
            (seq(f), text("id"), text("text"), text("client_id"))
        })
        .collect()
}

/// Has `client` send `n` messages `label i` (client id `label-i`) and reads
/// back their echoes, which it returns.
async fn post(client: &mut Client, label: &str, n: usize) -> Vec<Value> {
    for i in 0..n {
        client
            .send(json!({"type": "send", "room": ROOM, "text": format!("{label} {i}"), "client_id": format!("{label}-{i}")}))
            .await;
    }
    let echoes = messages(client, ROOM, n).await;
    let texts: Vec<String> = (0..n).map(|i| format!("{label} {i}")).collect();
    assert_eq!(crate::support::texts(&echoes), texts, "{label}: the echoes come back in the order sent");
    echoes
}

/// Presence frames among `frames` that list `username` or `member_id` as
/// joining or leaving.
fn presence_of<'a>(frames: &'a [Value], username: &str, member_id: &Value) -> Vec<&'a Value> {
    let named = |m: &Value| m["member_id"] == *member_id || m["username"] == username;
    let lists = |f: &Value, key: &str| f[key].as_array().is_some_and(|l| l.iter().any(named));
    frames.iter().filter(|f| f["type"] == "presence" && (lists(f, "joins") || lists(f, "leaves"))).collect()
}

/// A browser drops without a Close frame, 130 messages are posted while it
/// is away (more than a first join's 50), and it comes back on another
/// gateway with its session: it is the same member, `joined` holds exactly
/// what it missed, live messages follow with nothing missed or repeated,
/// and the room never saw it leave or join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_on_another_gateway_recovers_every_missed_message() {
    const GRACE_SECS: u64 = 5;
    let topology = Topology::start_configured(1, 3, |_| {}, |gw| gw.resume_grace_secs = GRACE_SECS).await;
    let mut ada = topology.client(0).await;
    assert_eq!(ada.welcome["resumed"], false, "a first connection is not a resume: {}", ada.welcome);
    let session = ada.session();
    let first = ada.join(ROOM, "ada").await;
    let member_id = first["member_id"].clone();
    let epoch = first["epoch"].as_str().expect("joined has an epoch").to_owned();
    let mut bob = topology.client(1).await;
    bob.join(ROOM, "bob").await;
    let mut cy = topology.client(2).await;
    cy.join(ROOM, "cy").await;
    cy.next_join_of("cy").await;

    let before = post(&mut bob, "before", 1).await;
    let seen = messages(&mut ada, ROOM, 1).await;
    assert_eq!(stored(&seen), stored(&before));
    let after_seq = seq(&seen[0]);

    ada.vanish();
    let vanished_at = Instant::now();
    let missed = post(&mut bob, "missed", 130).await;

    let mut ada = Client::resume(topology.gateway_addr(2), &session).await;
    assert_eq!(ada.welcome["resumed"], true, "a reconnect with ?session= resumes: {}", ada.welcome);
    assert_eq!(ada.session(), session, "a resumed session keeps its token");
    let joined = ada.join_after(ROOM, "ada", after_seq, &epoch).await;
    assert_eq!(joined["recovered"], true, "the history holds everything after {after_seq}: {joined}");
    assert_eq!(joined["member_id"], member_id, "a resumed session is the same member");
    let history = joined["history"].as_array().expect("joined has a history");
    assert_eq!(
        stored(history),
        stored(&missed),
        "history after a resume is exactly the {} messages missed, in order",
        missed.len()
    );

    let live = post(&mut bob, "live", 20).await;
    let got = messages(&mut ada, ROOM, 20).await;
    assert_eq!(stored(&got), stored(&live), "live messages follow the recovered history, none missed or repeated");
    ada.say(ROOM, "back").await;
    let back = bob.next_where(|f| f["type"] == "message" && f["text"] == "back").await;
    assert_eq!(back["member_id"], member_id, "messages after the resume carry the same member id");

    // Past the grace the first connection started: it must not leave late.
    tokio::time::sleep_until(vanished_at + Duration::from_secs(GRACE_SECS) + Duration::from_millis(1500)).await;
    let frames = cy.drain(Duration::from_millis(500)).await;
    let seen_by_cy = frames.iter().filter(|f| f["type"] == "message").count();
    assert_eq!(seen_by_cy, before.len() + missed.len() + live.len() + 1, "cy saw every message");
    let noticed = presence_of(&frames, "ada", &member_id);
    assert!(noticed.is_empty(), "the room saw a resumed member leave or join: {noticed:?}");
}

/// A send whose echo did not arrive before the connection dropped, sent
/// again after the resume under the same `client_id`, is stored once and
/// its echo comes again ("Sends are exactly once").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_repeated_after_a_resume_is_stored_once_and_echoed_again() {
    let topology = Topology::start(1, 2).await;
    let mut bob = topology.client(1).await;
    bob.join(ROOM, "bob").await;
    let mut ada = topology.client(0).await;
    let session = ada.session();
    let joined = ada.join(ROOM, "ada").await;
    let (after_seq, epoch) =
        (joined["last_seq"].as_u64().expect("last_seq"), joined["epoch"].as_str().expect("an epoch").to_owned());
    let hello = json!({"type": "send", "room": ROOM, "text": "hello?", "client_id": "ada-1"});

    ada.send(hello.clone()).await;
    let original = bob.next_where(|f| f["type"] == "message" && f["client_id"] == "ada-1").await;
    ada.vanish(); // before reading the echo
    let mut ada = Client::resume(topology.gateway_addr(1), &session).await;
    ada.join_after(ROOM, "ada", after_seq, &epoch).await;
    ada.send(hello).await;
    ada.send(json!({"type": "send", "room": ROOM, "text": "and you?", "client_id": "ada-2"})).await;

    let next = messages(&mut bob, ROOM, 1).await;
    assert_eq!(next[0]["client_id"], "ada-2", "bob saw the repeated send a second time: {}", next[0]);
    assert_eq!(seq(&next[0]), seq(&original) + 1, "the repeated send was stored once");
    let mut echoes = Vec::new();
    loop {
        let frame = ada.next_of("message").await;
        if frame["client_id"] == "ada-2" {
            break;
        }
        echoes.push(frame);
    }
    // An echo written after the next send's is still an echo.
    echoes.extend(ada.drain(Duration::from_millis(500)).await.into_iter().filter(|f| f["type"] == "message"));
    assert_eq!(stored(&echoes), stored(&[original]), "the echo of the repeated send comes again, as stored");
}

/// A browser that missed more than the room keeps (HISTORY_LEN 60, 300
/// messages missed) is told `recovered: false` and gets the last 50, as on
/// a first join; live messages follow them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_past_the_history_is_not_recovered() {
    let topology = Topology::start_configured(1, 2, |rs| rs.history_len = 60, |_| {}).await;
    let mut ada = topology.client(0).await;
    let session = ada.session();
    let epoch = ada.join(ROOM, "ada").await["epoch"].as_str().expect("an epoch").to_owned();
    let mut bob = topology.client(1).await;
    bob.join(ROOM, "bob").await;
    post(&mut bob, "before", 1).await;
    let after_seq = seq(&messages(&mut ada, ROOM, 1).await[0]);

    ada.vanish();
    let missed = post(&mut bob, "missed", 300).await;

    let mut ada = Client::resume(topology.gateway_addr(1), &session).await;
    let joined = ada.join_after(ROOM, "ada", after_seq, &epoch).await;
    assert_eq!(
        joined["recovered"], false,
        "300 missed with HISTORY_LEN 60 cannot be recovered: {}",
        joined["recovered"]
    );
    let history = joined["history"].as_array().expect("joined has a history");
    assert_eq!(stored(history), stored(&missed[missed.len() - 50..]), "history is the last 50, as for a first join");

    let live = post(&mut bob, "live", 3).await;
    assert_eq!(stored(&messages(&mut ada, ROOM, 3).await), stored(&live), "live messages follow the history");
}

/// With PING_SECS=1, a browser that stops reading (so answers no ping) and
/// sends nothing is closed with 4010 within 2×PING_SECS+1 s of going
/// silent, and the room sees it leave with reason `timeout`; one that sends
/// nothing but reads (its pongs go out) stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_browser_is_timed_out() {
    const PING_SECS: u64 = 1;
    let topology = Topology::start_configured(1, 2, |_| {}, |gw| gw.ping_secs = PING_SECS).await;
    let mut ada = topology.client(0).await;
    assert_eq!(ada.welcome["ping_ms"], PING_SECS * 1000, "welcome says how often the gateway pings");
    ada.join(ROOM, "ada").await;
    let mut quiet = topology.client(1).await;
    quiet.join(ROOM, "quiet").await;

    let mut silent = topology.client(1).await;
    let last_frame_sent = Instant::now();
    silent.join(ROOM, "silent").await;
    // From here on nothing reads `silent`, so it answers no ping.
    let silent_since = Instant::now();
    let limit = Duration::from_secs(2 * PING_SECS + 1);

    let watched_until = silent_since + limit + Duration::from_secs(1);
    let watch_ada = async {
        let leave = tokio::time::timeout_at(silent_since + limit, ada.next_leave_of("silent")).await;
        let left_at = Instant::now();
        // Read the silent browser's close at once, while the gateway waits
        // for its answer: later, the gateway has dropped the socket, and the
        // pongs the client owes for the pings read before the close frame
        // would meet a reset instead.
        let code = silent.close_code().await;
        // Reading on answers the pings, so ada stays while quiet is watched.
        ada.frames_for(watched_until.saturating_duration_since(left_at)).await;
        (leave, left_at, code)
    };
    // `quiet` sends nothing meanwhile, but reads: the pongs answer the pings.
    let (left, quiet_frames) = tokio::join!(watch_ada, quiet.frames_for(watched_until - Instant::now()));
    let (leave, left_at, code) = left;
    let leave = leave.unwrap_or_else(|_| panic!("no leave for the silent browser within 2×PING_SECS+1 s ({limit:?})"));
    assert_eq!(leave["reason"], "timeout", "{leave}");
    let after = left_at - last_frame_sent;
    assert!(after >= Duration::from_secs(2 * PING_SECS), "timed out after only {after:?} of silence");
    assert_eq!(code, Some(4010), "a timed-out browser is closed with 4010");

    let quiet_left = quiet_frames
        .iter()
        .filter(|f| f["type"] == "presence")
        .flat_map(|f| f["leaves"].as_array().cloned().unwrap_or_default())
        .find(|m| m["username"] == "quiet");
    assert!(quiet_left.is_none(), "a browser that answers pings was timed out: {quiet_left:?}");
    ada.say(ROOM, "still there?").await;
    quiet.next_where(|f| f["type"] == "message" && f["text"] == "still there?").await;
}

/// A browser that closes its socket (a tab closed) leaves at once with
/// reason `disconnected`, not after the grace: the grace here is 60 s, far
/// longer than the wait for the leave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_close_leaves_at_once() {
    let topology = Topology::start_configured(1, 2, |_| {}, |gw| gw.resume_grace_secs = 60).await;
    let mut ada = topology.client(0).await;
    ada.join(ROOM, "ada").await;
    let mut bob = topology.client(1).await;
    bob.join(ROOM, "bob").await;

    bob.close().await;
    let leave = tokio::time::timeout(PATIENCE, ada.next_leave_of("bob")).await.expect("bob left well before the grace");
    assert_eq!(leave["reason"], "disconnected", "{leave}");
}

/// With RESUME_GRACE_SECS=2, a browser whose connection vanishes (TCP gone,
/// no Close frame) is still a member while the grace runs, and leaves with
/// reason `disconnected` when it runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_browser_leaves_after_the_grace() {
    const GRACE_SECS: u64 = 2;
    let topology = Topology::start_configured(1, 2, |_| {}, |gw| gw.resume_grace_secs = GRACE_SECS).await;
    let mut ada = topology.client(0).await;
    ada.join(ROOM, "ada").await;
    let mut bob = topology.client(1).await;
    assert_eq!(bob.welcome["resume_grace_ms"], GRACE_SECS * 1000, "welcome says how long a session is kept");
    let bob_id = bob.join(ROOM, "bob").await["member_id"].clone();
    ada.next_join_of("bob").await;

    bob.vanish();
    let vanished_at = Instant::now();
    let during = ada.frames_for(Duration::from_millis(1000)).await;
    assert!(presence_of(&during, "bob", &bob_id).is_empty(), "bob left before the grace ran out: {during:?}");
    let members = ada.members(ROOM).await;
    let listed = members["members"].as_array().expect("members").iter().any(|m| m["member_id"] == bob_id);
    assert!(listed, "a vanished member is still a member during the grace: {members}");
    assert!(vanished_at.elapsed() < Duration::from_secs(GRACE_SECS), "the check ran within the grace");

    let leave = tokio::time::timeout(Duration::from_secs(GRACE_SECS + 5), ada.next_leave_of("bob"))
        .await
        .expect("bob leaves once the grace runs out");
    let after = vanished_at.elapsed();
    assert_eq!(leave["reason"], "disconnected", "{leave}");
    assert!(after >= Duration::from_secs(GRACE_SECS), "bob left after {after:?}, before the {GRACE_SECS} s grace");
}

/// `/ws?session=` with something that is not a session token is refused
/// with HTTP 400 before the upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_session_token_is_refused() {
    let topology = Topology::start(1, 1).await;
    let fresh = topology.client(0).await;
    let token = fresh.session();
    assert!(
        token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
        "a session token is 43 characters of [A-Za-z0-9_-]: {token:?}"
    );
    let cases = [
        ("garbage", "garbage".to_owned()),
        ("one character short", token[..42].to_owned()),
        ("one character long", format!("{token}A")),
        ("a character outside the alphabet", format!("{}.", &token[..42])),
    ];
    for (case, bad) in cases {
        match Client::try_connect(topology.gateway_addr(0), &format!("?session={bad}"), None).await {
            Err((status, _)) => assert_eq!(status, 400, "{case}: ?session={bad}"),
            Ok(client) => panic!("{case}: ?session={bad} was accepted: {}", client.welcome),
        }
    }
}

/// A session resumed on a new connection takes each room over as it joins
/// it: while the new connection is only in another room the old one stays
/// open and in its room; once the new one joins that room, the old one is
/// closed with 4009 ("One connection per session").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_session_closes_the_old_connection_with_4009_when_it_joins_its_room() {
    let topology = Topology::start(1, 2).await;
    let mut bob = topology.client(1).await;
    bob.join(ROOM, "bob").await;
    let mut ada = topology.client(0).await;
    let session = ada.session();
    ada.join(ROOM, "ada").await;

    let mut next = Client::resume(topology.gateway_addr(1), &session).await;
    assert_eq!(next.welcome["resumed"], true, "{}", next.welcome);
    next.join("elsewhere", "ada").await;
    bob.say(ROOM, "still with us?").await;
    let frame = ada.next_of("message").await;
    assert_eq!(frame["text"], "still with us?", "the old connection keeps the rooms the new one did not join");

    next.join(ROOM, "ada").await;
    let closed = tokio::time::timeout(Duration::from_secs(5), ada.close_code()).await;
    assert_eq!(closed.ok(), Some(Some(4009)), "the old connection is closed with 4009 once the new one joins its room");
}

/// A session moved to a new connection that joins its room again (with
/// `after_seq`/`epoch`) is the same member, misses nothing, and the room
/// sees no leave and no join — as the old connection is closed with 4009.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_moved_to_a_new_connection_stays_in_its_rooms() {
    let topology = Topology::start(1, 2).await;
    let mut bob = topology.client(0).await;
    bob.join(ROOM, "bob").await;
    let mut ada = topology.client(0).await;
    let session = ada.session();
    let joined = ada.join(ROOM, "ada").await;
    let (member_id, epoch) = (joined["member_id"].clone(), joined["epoch"].as_str().expect("an epoch").to_owned());
    bob.next_join_of("ada").await;
    let mut last_seq = joined["last_seq"].as_u64().expect("last_seq");

    for (case, gateway) in [("another gateway", 1), ("the same gateway", 1)] {
        let mut next = Client::resume(topology.gateway_addr(gateway), &session).await;
        let joined = next.join_after(ROOM, "ada", last_seq, &epoch).await;
        assert_eq!(joined["member_id"], member_id, "{case}: the same member");
        assert_eq!(joined["recovered"], true, "{case}: {joined}");
        assert_eq!(ada.close_code().await, Some(4009), "{case}: the old connection is closed with 4009");
        bob.say(ROOM, case).await;
        last_seq = seq(&messages(&mut next, ROOM, 1).await[0]);
        ada = next;
    }
    let frames = bob.frames_for(Duration::from_millis(500)).await;
    let noticed = presence_of(&frames, "ada", &member_id);
    assert!(noticed.is_empty(), "the room saw the session move: {noticed:?}");
}

/// `after_seq` without `epoch` is `bad_json` (both or neither).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_seq_without_epoch_is_refused() {
    let topology = Topology::start(1, 1).await;
    let mut ada = topology.client(0).await;
    ada.send(json!({"type": "join", "room": ROOM, "username": "ada", "after_seq": 3})).await;
    let answer = ada.next_where(|f| f["type"] == "error" || f["type"] == "joined").await;
    assert_eq!(answer["code"], "bad_json", "{answer}");
}
