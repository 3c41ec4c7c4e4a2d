//! Issue 10 on a real topology: which pages may connect, tokens, rate
//! limits, name rules, and the room-services' locked gRPC API.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::{Client, Topology};
use chat_proto::v1::{HistoryRequest, ListRoomsRequest, SendRequest};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const SECRET: &str = "test-secret-0123456789abcdef";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn token(claims: Value, secret: &str) -> String {
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(secret.as_bytes())).expect("encodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_from_other_origins_get_403_unless_allowed() {
    let topology = Topology::start(1, 1).await;
    let addr = topology.gateway_addr(0);
    let own = format!("http://{addr}");
    for (origin, allowed) in [
        (Some("http://evil.example"), false),
        (Some("null"), false),
        (Some("http://127.0.0.1:1"), false),
        (Some(own.as_str()), true),
        (None, true), // not a browser
    ] {
        match Client::try_connect(addr, "", origin).await {
            Ok(client) => {
                assert!(allowed, "origin {origin:?} was let in");
                client.close().await;
            }
            Err((status, body)) => {
                assert!(!allowed, "origin {origin:?} was refused: {status} {body}");
                assert_eq!(status, 403, "origin {origin:?}");
                assert!(body.contains("ALLOWED_ORIGINS"), "the 403 says what to set: {body}");
            }
        }
    }

    let listed = Topology::start_configured(
        1,
        1,
        |_| {},
        |gw| {
            gw.allowed_origins = vec!["https://chat.example".into()];
        },
    )
    .await;
    let addr = listed.gateway_addr(0);
    assert!(Client::try_connect(addr, "", Some("https://chat.example")).await.is_ok());
    assert_eq!(Client::try_connect(addr, "", Some("http://evil.example")).await.err().map(|e| e.0), Some(403));
    let any = Topology::start_configured(1, 1, |_| {}, |gw| gw.allowed_origins = vec!["*".into()]).await;
    assert!(Client::try_connect(any.gateway_addr(0), "", Some("null")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_before_the_upgrade_and_name_the_member() {
    let topology = Topology::start_configured(1, 1, |_| {}, |gw| gw.jwt_secret = Some(SECRET.into())).await;
    let addr = topology.gateway_addr(0);

    let expired = token(json!({"sub": "u1", "exp": now() - 3600}), SECRET);
    let forged = token(json!({"sub": "u1", "exp": now() + 600}), "some-other-secret-entirely");
    let no_sub = token(json!({"exp": now() + 600}), SECRET);
    for (case, query, words) in [
        ("no token", String::new(), "token"),
        ("empty token", "?token=".to_owned(), "token"),
        ("garbage", "?token=abc.def.ghi".to_owned(), "not valid"),
        ("bad signature", format!("?token={forged}"), "signature"),
        ("expired", format!("?token={expired}"), "expired"),
        ("no sub", format!("?token={no_sub}"), "sub"),
    ] {
        let (status, body) =
            Client::try_connect(addr, &query, None).await.err().unwrap_or_else(|| panic!("{case}: let in"));
        assert_eq!(status, 401, "{case}");
        assert!(body.contains(words), "{case}: {body:?} should mention {words:?}");
    }

    let ada = token(json!({"sub": "u-ada", "name": "Ada", "exp": now() + 600, "rooms": ["general"]}), SECRET);
    let mut client = Client::try_connect(addr, &format!("?token={ada}"), None).await.expect("a good token is let in");
    // The frame asks for another name; the token's wins.
    let joined = client.join("general", "Mallory").await;
    let me = joined["members"].as_array().and_then(|m| m.iter().find(|m| m["member_id"] == joined["member_id"]));
    assert_eq!(me.map(|m| m["username"].clone()), Some(json!("Ada")), "{joined}");
    client.say("general", "hello").await;
    let message = client.next_of("message").await;
    assert_eq!(message["username"], "Ada");

    client.send(json!({"type": "join", "room": "dev", "username": "Ada"})).await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "forbidden", "{error}");
    assert_eq!(error["room"], "dev");
    assert!(error["message"].as_str().unwrap_or_default().contains("general"), "says which rooms: {error}");
    // Still connected and in general.
    client.say("general", "still here").await;
    assert_eq!(client.next_of("message").await["text"], "still here");

    // Without `rooms`, any room; without `name`, the sub.
    let bob = token(json!({"sub": "bob", "exp": now() + 600}), SECRET);
    let mut bob = Client::try_connect(addr, &format!("?token={bob}"), None).await.expect("let in");
    let joined = bob.join("dev", "whatever").await;
    let me = joined["members"].as_array().and_then(|m| m.iter().find(|m| m["member_id"] == joined["member_id"]));
    assert_eq!(me.map(|m| m["username"].clone()), Some(json!("bob")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_send_limit_is_refused_and_the_connection_stays() {
    let topology = Topology::start_configured(
        1,
        1,
        |_| {},
        |gw| {
            gw.send_rate = 1;
            gw.send_burst = 3;
        },
    )
    .await;
    let mut client = topology.client(0).await;
    client.join("general", "ada").await;

    const SENT: usize = 10;
    let started = std::time::Instant::now();
    for i in 0..SENT {
        client.say("general", &format!("m{i}")).await;
    }
    let mut delivered = Vec::new();
    let mut refused = Vec::new();
    while delivered.len() + refused.len() < SENT {
        let frame = client.next_where(|f| f["type"] == "message" || f["type"] == "error").await;
        if frame["type"] == "message" {
            delivered.push(frame["text"].as_str().unwrap_or_default().to_owned());
        } else {
            refused.push(frame);
        }
    }
    // The bucket holds 3 and refills one a second: exactly the first three
    // go through, plus at most one more per whole second the ten took to
    // be answered (none on any but a badly stalled machine).
    let refills = usize::try_from(started.elapsed().as_secs()).unwrap_or(usize::MAX);
    assert_eq!(delivered[..3], ["m0", "m1", "m2"], "the burst of 3 goes through, in order: {delivered:?}");
    assert!(delivered.len() <= 3 + refills, "only the burst (+{refills} refilled) may pass: {delivered:?}");
    assert_eq!(refused.len(), SENT - delivered.len(), "every other message is refused, none lost silently");
    for error in &refused {
        assert_eq!(error["code"], "rate_limited", "{error}");
        assert_eq!(error["room"], "general");
        let wait = error["retry_after_ms"].as_u64().expect("retry_after_ms");
        assert!((1..=1000).contains(&wait), "at 1 message/s the wait is at most a second: {error}");
    }
    // Nothing refused was stored.
    let mut grpc = topology.grpc(0).await;
    let history = grpc.history(HistoryRequest { room: "general".into(), limit: 100, ..Default::default() }).await;
    let stored: Vec<String> = history
        .expect("history")
        .into_inner()
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            Some(chat_proto::v1::room_event::Kind::Message(m)) => Some(m.text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(stored, delivered, "exactly the messages that were not refused are stored");

    // After the wait it says, the same connection sends again.
    let wait = refused.last().and_then(|e| e["retry_after_ms"].as_u64()).unwrap_or(1000);
    tokio::time::sleep(std::time::Duration::from_millis(wait + 50)).await;
    client.say("general", "after the wait").await;
    let next = client.next_where(|f| f["type"] == "message" || f["type"] == "error").await;
    assert_eq!(next["text"], "after the wait", "{next}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_refused_for_its_text_takes_no_send_token() {
    let topology = Topology::start_configured(
        1,
        1,
        |_| {},
        |gw| {
            gw.send_rate = 1;
            gw.send_burst = 3;
        },
    )
    .await;
    let mut client = topology.client(0).await;
    client.join("general", "ada").await;
    let send = |text: &str| {
        tokio_tungstenite::tungstenite::Message::Text(
            json!({"type": "send", "room": "general", "text": text}).to_string().into(),
        )
    };
    // Read together, so the empty one meets both ways a send is checked:
    // gathered into the first one's batch, and handled as a frame of its own.
    client.send_together(vec![send("one"), send(" "), send("two"), send("three")]).await;
    let mut answers = Vec::new();
    while answers.len() < 4 {
        let frame = client.next_where(|f| f["type"] == "message" || f["type"] == "error").await;
        answers.push(if frame["type"] == "message" {
            format!("message {}", frame["text"].as_str().unwrap_or_default())
        } else {
            format!("error {}", frame["code"].as_str().unwrap_or_default())
        });
    }
    answers.sort();
    assert_eq!(
        answers,
        ["error empty_text", "message one", "message three", "message two"],
        "a burst of 3 holds the 3 good messages: the refused one took no token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_past_their_burst_are_rate_limited() {
    let topology = Topology::start(1, 1).await;
    let mut client = topology.client(0).await;
    let mut codes = Vec::new();
    // Join and leave one room over and over: each join is an event stored.
    for _ in 0..gateway::limits::JOIN_BURST + 5 {
        client.send(json!({"type": "join", "room": "general", "username": "ada"})).await;
        let answer = client.next_where(|f| f["type"] == "joined" || f["type"] == "error").await;
        if answer["type"] == "joined" {
            client.send(json!({"type": "leave", "room": "general"})).await;
            client.next_of("left").await;
            codes.push("joined".to_owned());
        } else {
            codes.push(answer["code"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert!(codes.iter().any(|c| c == "rate_limited"), "{codes:?}");
    assert!(codes.iter().all(|c| c == "joined" || c == "rate_limited"), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_impersonate_are_refused_on_a_live_gateway() {
    let topology = Topology::start(1, 1).await;
    let mut client = topology.client(0).await;
    for name in ["system", "SYSTEM", "ѕуѕтем", "ada\u{200B}", "\u{202E}ada", "\u{3164}", "аda"] {
        client.send(json!({"type": "join", "room": "general", "username": name})).await;
        let error = client.next_where(|f| f["type"] == "error" || f["type"] == "joined").await;
        assert_eq!(error["code"], "bad_username", "{name:?}: {error}");
    }
    // NFC: the decomposed spelling joins under the composed one.
    let joined = client.join("general", "Rene\u{301}").await;
    let me = joined["members"].as_array().and_then(|m| m.iter().find(|m| m["member_id"] == joined["member_id"]));
    assert_eq!(me.map(|m| m["username"].clone()), Some(json!("Ren\u{e9}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_service_api_needs_the_grpc_token_but_health_and_reflection_do_not() {
    let topology = Topology::start_configured(1, 1, |rs| rs.grpc_token = Some("grpc-s3cret".into()), |_| {}).await;

    for (case, token) in [("no token", None), ("wrong token", Some("guess"))] {
        let mut grpc = topology.grpc_with_token(0, token).await;
        let status = grpc.list_rooms(ListRoomsRequest {}).await.expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert!(status.message().contains("GRPC_TOKEN"), "{case}: says what to send: {status:?}");
        let status = grpc
            .send(SendRequest { room: "general".into(), text: "fake system message".into(), ..Default::default() })
            .await
            .expect_err(case);
        assert_eq!(status.code(), Code::Unauthenticated, "{case}");
    }
    let mut grpc = topology.grpc_with_token(0, Some("grpc-s3cret")).await;
    grpc.list_rooms(ListRoomsRequest {}).await.expect("the right token passes");

    // Health and reflection answer anyone.
    let channel = tonic::transport::Channel::from_shared(topology.room_service_url(0))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let health = HealthClient::new(channel.clone()).check(HealthCheckRequest { service: String::new() }).await;
    assert!(health.is_ok(), "{health:?}");
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection is open")
        .into_inner();
    let answer = answers.message().await.expect("an answer").expect("one message");
    assert!(format!("{answer:?}").contains("chat.v1.RoomService"), "{answer:?}");

    // The gateways send the token: the chat works.
    let mut client = topology.client(0).await;
    client.join("general", "ada").await;
    client.say("general", "through the locked API").await;
    assert_eq!(client.next_of("message").await["text"], "through the locked API");
}
