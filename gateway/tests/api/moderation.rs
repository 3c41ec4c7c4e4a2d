//! Moderation through the browser protocol on real topologies: a ban by
//! user holds on every gateway, tab, reconnect and resume; a mute holds
//! until it runs out; a kick removes and rejoining works; non-moderators'
//! `moderate` frames are refused; the operator moderates over gRPC and the
//! audit log says who did what.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{AuditLogRequest, ModerateRequest, Person};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::support::{Client, PATIENCE, Topology};

const SECRET: &str = "test-secret-0123456789abcdef";
const ROOM: &str = "general";

fn token(sub: &str, extra: Value) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + 600;
    let mut claims = json!({"sub": sub, "exp": exp});
    if let (Some(claims), Some(extra)) = (claims.as_object_mut(), extra.as_object()) {
        claims.extend(extra.clone());
    }
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).expect("encodes")
}

/// Sends `join` and returns the answer: `joined` or an `error`.
async fn try_join(client: &mut Client, room: &str) -> Value {
    client.send(json!({"type": "join", "room": room, "username": "x"})).await;
    client.next_where(|f| (f["type"] == "joined" || f["type"] == "error") && f["room"] == room).await
}

fn moderate(action: &str, user_id: &str, extra: Value) -> Value {
    let mut frame = json!({"type": "moderate", "room": ROOM, "action": action, "user_id": user_id});
    if let (Some(frame), Some(extra)) = (frame.as_object_mut(), extra.as_object()) {
        frame.extend(extra.clone());
    }
    frame
}

async fn error_of(client: &mut Client) -> Value {
    client.next_of("error").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_holds_across_tabs_gateways_reconnects_and_resumes() {
    let topology = Topology::start_configured(1, 2, |_| {}, |gw| gw.jwt_secret = Some(SECRET.into())).await;
    let connect = |i: usize, query: String| {
        let addr = topology.gateway_addr(i);
        async move { Client::connect_to(addr, &query).await }
    };
    let (ada_token, bob_token, mal_token) =
        (token("u-ada", json!({})), token("u-bob", json!({})), token("u-mal", json!({})));
    let mut ada = connect(0, format!("?token={ada_token}")).await;
    assert_eq!(ada.join(ROOM, "ada").await["role"], "owner", "the first joiner owns the room");
    let mut bob = connect(0, format!("?token={bob_token}")).await;
    assert_eq!(bob.join(ROOM, "bob").await["role"], "member");
    let mut bob_elsewhere = connect(1, format!("?token={bob_token}")).await;
    bob_elsewhere.join(ROOM, "bob").await;
    let mut mal = connect(1, format!("?token={mal_token}")).await;
    mal.join(ROOM, "mal").await;
    let staff = token("u-staff", json!({"roles": ["moderator"]}));
    let mut staff = connect(1, format!("?token={staff}")).await;
    assert_eq!(staff.join(ROOM, "staff").await["role"], "moderator", "a token's roles claim moderates every room");

    // A member's moderate frame is refused; nothing happens to bob.
    mal.send(moderate("ban", "u-bob", json!({}))).await;
    let refused = error_of(&mut mal).await;
    assert_eq!((refused["code"].as_str(), refused["room"].as_str()), (Some("not_moderator"), Some(ROOM)), "{refused}");

    ada.send(moderate("ban", "u-bob", json!({"reason": "spam links"}))).await;
    let notice = ada.next_of("moderation").await;
    assert_eq!(notice["action"], "ban", "{notice}");
    assert_eq!(notice["target"]["user_id"], "u-bob");
    assert_eq!(notice["actor"]["user_id"], "u-ada");
    assert_eq!(notice["reason"], "spam links");
    assert_eq!(notice["removed"], 2, "both of bob's tabs: {notice}");
    assert!(notice["seq"].as_u64().is_some_and(|s| s > 0), "a stored event: {notice}");
    let leave = mal.next_leave_of("u-bob").await; // the token's name: its sub
    assert_eq!(leave["reason"], "banned", "{leave}");

    for (tab, bob) in [("first tab", &mut bob), ("tab on the other gateway", &mut bob_elsewhere)] {
        let left = bob.next_where(|f| f["type"] == "left").await;
        assert_eq!((left["room"].as_str(), left["reason"].as_str()), (Some(ROOM), Some("banned")), "{tab}: {left}");
        bob.say(ROOM, "let me back").await;
        assert_eq!(error_of(bob).await["code"], "not_joined", "{tab}: out of the room");
        assert_eq!(try_join(bob, ROOM).await["code"], "banned", "{tab}: joining again");
    }

    // A reconnect resuming the session, on the other gateway, and a new tab.
    let session = bob.session();
    bob.vanish();
    let mut resumed = connect(1, format!("?session={session}&token={bob_token}")).await;
    assert_eq!(resumed.welcome()["resumed"], true);
    assert_eq!(try_join(&mut resumed, ROOM).await["code"], "banned", "a resumed session");
    let mut new_tab = connect(0, format!("?token={bob_token}")).await;
    assert_eq!(try_join(&mut new_tab, ROOM).await["code"], "banned", "a new tab");

    // A moderator by token may lift it.
    staff.send(moderate("unban", "u-bob", json!({}))).await;
    let unban = staff.next_where(|f| f["type"] == "moderation" && f["action"] == "unban").await;
    assert_eq!(unban["actor"]["user_id"], "u-staff", "{unban}");
    assert_eq!(try_join(&mut new_tab, ROOM).await["type"], "joined", "unbanned");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutes_run_out_kicks_let_back_and_bad_frames_are_refused() {
    let topology = Topology::start(1, 1).await;
    let mut ada = topology.client(0).await;
    ada.join(ROOM, "ada").await;
    let mut bob = topology.client(0).await;
    bob.join(ROOM, "bob").await;
    let bob_id = bob.user_id();

    // Bad frames: each its error, nothing changed.
    let long = "x".repeat(201);
    let cases = [
        ("a reason over 200 characters", moderate("kick", &bob_id, json!({"reason": long})), "bad_moderation"),
        ("a mute without a duration", moderate("mute", &bob_id, json!({})), "bad_moderation"),
        ("a mute over 30 days", moderate("mute", &bob_id, json!({"duration": 2_592_001})), "bad_moderation"),
        ("an unknown action", moderate("smite", &bob_id, json!({})), "bad_moderation"),
        (
            "a room not joined",
            json!({"type": "moderate", "room": "dev", "action": "kick", "user_id": bob_id}),
            "not_joined",
        ),
        ("a kick of nobody here", moderate("kick", "someone-else", json!({})), "not_in_room"),
        ("the owner as target", moderate("kick", &ada.user_id(), json!({})), "bad_moderation"),
    ];
    for (case, frame, code) in cases {
        ada.send(frame).await;
        assert_eq!(error_of(&mut ada).await["code"], code, "{case}");
    }
    bob.send(moderate("mute", &ada.user_id(), json!({"duration": 60}))).await;
    assert_eq!(error_of(&mut bob).await["code"], "bad_moderation", "a member acting on the owner");

    // A mute: refused with until, then accepted once it ran out.
    ada.send(moderate("mute", &bob_id, json!({"duration": 1, "reason": "flooding"}))).await;
    let notice = bob.next_of("moderation").await;
    assert_eq!((notice["action"].as_str(), notice["reason"].as_str()), (Some("mute"), Some("flooding")));
    let until = notice["until"].as_i64().expect("a mute says when it ends");
    bob.say(ROOM, "hello?").await;
    let refused = error_of(&mut bob).await;
    assert_eq!(refused["code"], "muted", "{refused}");
    assert_eq!(refused["until"].as_i64(), Some(until), "{refused}");
    assert!(refused["retry_after_ms"].as_u64().is_some(), "{refused}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        bob.say(ROOM, "back").await;
        let answer = bob.next_where(|f| f["type"] == "error" || (f["type"] == "message" && f["text"] == "back")).await;
        if answer["type"] == "message" {
            break;
        }
        assert_eq!(answer["code"], "muted", "{answer}");
        assert!(tokio::time::Instant::now() < deadline, "the mute never ran out");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A kick: out now, back at will.
    ada.send(moderate("kick", &bob_id, json!({}))).await;
    let left = bob.next_of("left").await;
    assert_eq!(left["reason"], "kicked", "{left}");
    assert_eq!(ada.next_leave_of("bob").await["reason"], "kicked");
    bob.say(ROOM, "still here?").await;
    assert_eq!(error_of(&mut bob).await["code"], "not_joined");
    assert_eq!(bob.join(ROOM, "bob").await["role"], "member", "a kicked user may join again");

    // The operator over gRPC; the audit log says who did what.
    let mut grpc = topology.grpc(0).await;
    let ban = ModerateRequest {
        room: ROOM.into(),
        actor: Some(Person::default()),
        action: "ban".into(),
        target_user_id: bob_id.clone(),
        reason: "operator's call".into(),
        ..Default::default()
    };
    grpc.moderate(ban).await.expect("the operator may ban");
    assert_eq!(bob.next_of("left").await["reason"], "banned");
    let log = grpc.audit_log(AuditLogRequest { room: ROOM.into(), ..Default::default() }).await.expect("audit log");
    let entries: Vec<(String, String)> = log
        .into_inner()
        .entries
        .into_iter()
        .filter_map(|e| match e.kind {
            Some(Kind::Moderation(n)) => Some((n.action, n.actor.map(|a| a.name).unwrap_or_default())),
            _ => None,
        })
        .collect();
    let expected = [("ban", "operator"), ("kick", "ada"), ("mute", "ada")];
    assert_eq!(entries, expected.map(|(a, b)| (a.to_owned(), b.to_owned())).to_vec());
}
