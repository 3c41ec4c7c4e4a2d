//! Issue 17 through gateways: direct conversations, the inbox, read
//! markers, unread counts and mentions, as browsers see them — across
//! gateways, with tokens across devices, and through a gateway crash.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_proto::people::direct_room;
use chat_proto::v1::HistoryRequest;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tonic::Code;

use crate::support::{Client, Topology, messages, texts};

const SECRET: &str = "people-secret-0123456789abcdef";

fn token(sub: &str, name: &str) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + 600;
    let claims = json!({"sub": sub, "name": name, "exp": exp});
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).expect("encodes")
}

/// The entry for `room` in a `rooms` frame.
fn entry(rooms: &Value, room: &str) -> Option<Value> {
    assert_eq!(rooms["type"], "rooms", "a rooms snapshot: {rooms}");
    rooms["rooms"].as_array()?.iter().find(|e| e["room"] == room).cloned()
}

/// Skips frames until an `inbox` update for `room` with `reason`; its entry.
async fn inbox(client: &mut Client, room: &str, reason: &str) -> Value {
    let frame = client.next_where(|f| f["type"] == "inbox" && f["room"]["room"] == room && f["reason"] == reason).await;
    frame["room"].clone()
}

/// Asks for the user's rooms.
async fn rooms(client: &mut Client) -> Value {
    client.send(json!({"type": "rooms"})).await;
    let frame = client.next_where(|f| f["type"] == "rooms" || f["type"] == "error").await;
    assert_eq!(frame["type"], "rooms", "{frame}");
    frame
}

/// Sends `open_dm` with `users`: the `dm` or `error` frame.
async fn open_dm(client: &mut Client, users: &[String]) -> Value {
    client.send(json!({"type": "open_dm", "users": users})).await;
    client.next_where(|f| f["type"] == "dm" || f["type"] == "error").await
}

/// The next `error` frame's code.
async fn error_code(client: &mut Client) -> String {
    let frame = client.next_of("error").await;
    assert!(frame["message"].as_str().is_some_and(|m| m.len() > 10), "says what was wrong: {frame}");
    frame["code"].as_str().unwrap_or_default().to_owned()
}

/// The `user_id` of `username` in `room`'s first page of members.
async fn user_id_of(client: &mut Client, room: &str, username: &str) -> String {
    let page = client.members(room).await;
    let member = page["members"].as_array().and_then(|m| m.iter().find(|m| m["username"] == username).cloned());
    member
        .and_then(|m| m["user_id"].as_str().or(m["member_id"].as_str()).map(str::to_owned))
        .unwrap_or_else(|| panic!("{username} in {page}"))
}

/// The texts of a `history` page of `room`, oldest first.
async fn history(client: &mut Client, room: &str) -> Vec<String> {
    client.send(json!({"type": "history", "room": room})).await;
    let page = client.next_where(|f| f["type"] == "history" || f["type"] == "error").await;
    assert_eq!(page["type"], "history", "{page}");
    texts(page["messages"].as_array().expect("messages"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_message_reaches_a_user_on_another_gateway_before_they_join_it() {
    let topology = Topology::start(2, 3).await;
    let (mut ada, mut cy, mut bob) = (topology.client(0).await, topology.client(1).await, topology.client(2).await);
    for (client, name) in [(&mut ada, "ada"), (&mut bob, "bob"), (&mut cy, "cy")] {
        let snapshot = client.snapshot().await;
        assert_eq!(snapshot["rooms"], json!([]), "a snapshot follows the welcome: {snapshot}");
        client.join("lobby", name).await;
    }
    ada.next_join_of("cy").await;
    let bob_id = user_id_of(&mut ada, "lobby", "bob").await;
    assert_eq!(bob_id, bob.user_id(), "member lists carry the user_id welcome gave");

    // Ada opens it on gw1; bob, on gw3, learns of it without joining.
    let dm = open_dm(&mut ada, std::slice::from_ref(&bob_id)).await;
    assert_eq!(dm["type"], "dm", "{dm}");
    let room = dm["room"].as_str().expect("a room").to_owned();
    assert_eq!(room, direct_room(&[ada.user_id(), bob_id.clone()]));
    assert_eq!(dm["created"], true);
    let opened = inbox(&mut bob, &room, "direct").await;
    assert_eq!((opened["kind"].clone(), opened["unread"].clone()), (json!("direct"), json!(0)), "{opened}");
    let members: Vec<&str> =
        opened["members"].as_array().expect("members").iter().filter_map(|m| m["user_id"].as_str()).collect();
    assert!(members.contains(&bob_id.as_str()) && members.contains(&ada.user_id().as_str()), "{opened}");
    assert_eq!(open_dm(&mut bob, &[ada.user_id()]).await["created"], false, "the same room from the other side");

    ada.join(&room, "ada").await;
    ada.say(&room, "hi bob").await;
    let unread = inbox(&mut bob, &room, "message").await;
    assert_eq!(unread["unread"], 1, "{unread}");
    assert_eq!(unread["last"]["text"], "hi bob", "{unread}");

    // Bob joins, replies; both have the whole conversation, in order.
    let joined = bob.join(&room, "bob").await;
    assert_eq!(texts(joined["history"].as_array().expect("history")), ["hi bob"]);
    bob.say(&room, "hi ada").await;
    assert_eq!(texts(&messages(&mut ada, &room, 2).await), ["hi bob", "hi ada"]);
    assert_eq!(texts(&messages(&mut bob, &room, 1).await), ["hi ada"]);
    for client in [&mut ada, &mut bob] {
        assert_eq!(history(client, &room).await, ["hi bob", "hi ada"]);
    }

    // Cy is in neither: not by joining, nor through the gRPC API on his behalf.
    cy.send(json!({"type": "join", "room": room, "username": "cy"})).await;
    assert_eq!(error_code(&mut cy).await, "forbidden");
    let as_cy = HistoryRequest { room: room.clone(), limit: 10, before_seq: 0, user_id: cy.user_id() };
    let refused = topology.grpc(0).await.history(as_cy).await.expect_err("cy is not in the conversation");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let as_ada = HistoryRequest { room: room.clone(), limit: 10, before_seq: 0, user_id: ada.user_id() };
    let page = topology.grpc(1).await.history(as_ada).await.expect("ada is").into_inner();
    assert_eq!(page.events.len(), 2);

    // Inbox rooms are nobody's to join.
    ada.send(json!({"type": "join", "room": chat_proto::people::inbox_room(&bob_id), "username": "ada"})).await;
    assert_eq!(error_code(&mut ada).await, "bad_room");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_reading_on_one_device_clears_the_others() {
    let topology = Topology::start_configured(1, 2, |_| {}, |gw| gw.jwt_secret = Some(SECRET.into())).await;
    let (ada_token, bob_token) = (token("ada", "Ada"), token("bob", "Bob"));
    let mut ada = Client::connect_to(topology.gateway_addr(0), &format!("?token={ada_token}")).await;
    let mut phone = Client::connect_to(topology.gateway_addr(0), &format!("?token={bob_token}")).await;
    let mut laptop = Client::connect_to(topology.gateway_addr(1), &format!("?token={bob_token}")).await;
    assert_eq!(
        (phone.user_id(), laptop.welcome["name"].clone()),
        ("bob".to_owned(), json!("Bob")),
        "{}",
        laptop.welcome
    );
    phone.join("lobby", "ignored").await;

    let dm = open_dm(&mut ada, &["bob".to_owned()]).await;
    let room = dm["room"].as_str().unwrap_or_else(|| panic!("a dm: {dm}")).to_owned();
    ada.join(&room, "Ada").await;
    ada.say(&room, "one").await;
    ada.say(&room, "two").await;
    for device in [&mut phone, &mut laptop] {
        let entry =
            device.next_where(|f| f["type"] == "inbox" && f["room"]["room"] == room && f["room"]["unread"] == 2).await;
        assert_eq!(entry["room"]["last"]["text"], "two", "{entry}");
    }

    // Read on the phone: the laptop's badge clears.
    let last_seq = messages(&mut ada, &room, 2).await[1]["seq"].as_u64().expect("a seq");
    phone.send(json!({"type": "read", "room": room, "seq": last_seq})).await;
    let cleared = tokio::time::timeout(Duration::from_secs(1), inbox(&mut laptop, &room, "read"))
        .await
        .expect("the laptop hears of the read within 1 s");
    assert_eq!((cleared["unread"].clone(), cleared["read_seq"].clone()), (json!(0), json!(last_seq)), "{cleared}");
    let echoed = inbox(&mut phone, &room, "read").await;
    assert_eq!(echoed["unread"], 0, "the reading device hears it too: {echoed}");

    // A device that connects later starts from the same counts.
    let mut tablet = Client::connect_to(topology.gateway_addr(1), &format!("?token={bob_token}")).await;
    let snapshot = tablet.snapshot().await;
    let seen = entry(&snapshot, &room).expect("the conversation is in bob's rooms");
    for field in ["unread", "read_seq", "last_seq", "mentions"] {
        assert_eq!(seen[field], cleared[field], "{field}: {seen} vs {cleared}");
    }
    assert!(entry(&snapshot, "lobby").is_some(), "rooms joined on another device: {snapshot}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_counts_are_exact_markers_never_move_back_and_bad_input_is_refused() {
    let topology = Topology::start(1, 2).await;
    let mut ada = topology.client(0).await;
    let mut bob = topology.client(1).await;
    ada.join("general", "ada").await;
    bob.join("general", "bob").await;
    let session = bob.session();
    for i in 1..200 {
        ada.say("general", &format!("message {i}")).await;
    }
    ada.say("general", "@bob look at this").await;
    messages(&mut ada, "general", 200).await;
    // Mentions are counted after the send is answered: wait until bob is told.
    assert_eq!(inbox(&mut bob, "general", "mention").await["mentions"], 1);
    bob.close().await;

    let mut bob = Client::resume(topology.gateway_addr(0), &session).await;
    let general = entry(&bob.snapshot().await, "general").expect("general is bob's");
    assert_eq!((general["unread"].clone(), general["mentions"].clone()), (json!(200), json!(1)), "{general}");
    let last_seq = general["last_seq"].as_u64().expect("last_seq");

    bob.send(json!({"type": "read", "room": "general", "seq": last_seq - 50})).await;
    let read = inbox(&mut bob, "general", "read").await;
    assert_eq!((read["unread"].clone(), read["mentions"].clone()), (json!(50), json!(1)), "{read}");
    bob.send(json!({"type": "read", "room": "general", "seq": last_seq - 100})).await;
    let general = entry(&rooms(&mut bob).await, "general").expect("still bob's");
    assert_eq!(general["read_seq"], last_seq - 50, "a lower seq does not move the marker back: {general}");
    bob.send(json!({"type": "read", "room": "general", "seq": last_seq})).await;
    let read = inbox(&mut bob, "general", "read").await;
    assert_eq!((read["unread"].clone(), read["mentions"].clone()), (json!(0), json!(0)), "{read}");

    let me = bob.user_id();
    let others: Vec<String> = (0..8).map(|i| format!("someone-{i}")).collect();
    let cases: [(Value, &str); 5] = [
        (json!({"type": "read", "room": "general", "seq": last_seq + 1}), "bad_read"),
        (json!({"type": "read", "room": "not-bobs", "seq": 1}), "bad_read"),
        (json!({"type": "open_dm", "users": [me]}), "bad_direct"),
        (json!({"type": "open_dm", "users": others}), "bad_direct"),
        (json!({"type": "open_dm", "users": ["nobody-has-this-id"]}), "bad_direct"),
    ];
    for (frame, code) in cases {
        bob.send(frame.clone()).await;
        assert_eq!(error_code(&mut bob).await, code, "{frame}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_whose_gateway_crashed_finds_what_came_meanwhile_in_the_snapshot() {
    let mut topology = Topology::start(1, 2).await;
    let mut ada = topology.client(0).await;
    let mut bob = topology.client(1).await;
    ada.join("lobby", "ada").await;
    bob.join("lobby", "bob").await;
    let dm = open_dm(&mut ada, &[bob.user_id()]).await;
    let room = dm["room"].as_str().unwrap_or_else(|| panic!("a dm: {dm}")).to_owned();
    inbox(&mut bob, &room, "direct").await;
    let session = bob.session();

    topology.kill_gateway(1).await;
    ada.join(&room, "ada").await;
    ada.say(&room, "while you were away").await;
    messages(&mut ada, &room, 1).await;

    let mut bob = Client::resume(topology.gateway_addr(0), &session).await;
    assert_eq!(bob.welcome["resumed"], true, "{}", bob.welcome);
    let missed = entry(&bob.snapshot().await, &room).expect("the conversation is bob's");
    assert_eq!(missed["unread"], 1, "{missed}");
    assert_eq!(missed["last"]["text"], "while you were away", "{missed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_inbox_stream_breaks_the_gateway_sends_a_fresh_snapshot() {
    let mut topology = Topology::start(2, 1).await;
    let mut ada = topology.client(0).await;
    let mut bob = topology.client(0).await;
    ada.join("lobby", "ada").await;
    bob.join("lobby", "bob").await;
    let bob_id = bob.user_id();

    // The room-service bob's inbox stream comes from fails; updates
    // published meanwhile would be lost, so a snapshot comes unasked.
    topology.kill_room_service(topology.owner_of(&chat_proto::people::inbox_room(&bob_id))).await;
    let dm = open_dm(&mut ada, std::slice::from_ref(&bob_id)).await;
    let room = dm["room"].as_str().unwrap_or_else(|| panic!("a dm: {dm}")).to_owned();
    bob.snapshot().await;
    let snapshot = bob.next_of("rooms").await;
    assert!(entry(&snapshot, "lobby").is_some(), "{snapshot}");
    // Bob learns of the conversation: by the update, or in the snapshot.
    if entry(&snapshot, &room).is_none() {
        bob.next_where(|f| {
            (f["type"] == "inbox" && f["room"]["room"] == room) || (f["type"] == "rooms" && entry(f, &room).is_some())
        })
        .await;
    }
}
