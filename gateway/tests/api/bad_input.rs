//! Bad input gets a clear error and loses nothing: the connection (and the
//! room it is in) keeps working afterwards.

use crate::support::Topology;
use chat_proto::v1::{GetRoomRequest, JoinRequest, LeaveRequest, Member, SendRequest, SubscribeRequest};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_frame_gets_its_error_and_the_connection_stays_usable() {
    let topology = Topology::start(1, 1).await;
    let mut client = topology.client(0).await;
    client.join("general", "ada").await;

    let long_name = "n".repeat(33);
    let long_text = "x".repeat(4097);
    let long_room = "r".repeat(65);
    let cases: Vec<(&str, Message, &str, &str)> = vec![
        ("invalid JSON", Message::Text("{not json".into()), "bad_json", "not valid JSON"),
        (
            "unknown type",
            Message::Text(json!({"type": "shout", "room": "general"}).to_string().into()),
            "unknown_type",
            "unknown frame type \"shout\"",
        ),
        ("missing type", Message::Text(json!({"room": "general"}).to_string().into()), "unknown_type", "no \"type\""),
        (
            "binary frame",
            Message::Binary(vec![1, 2, 3].into()),
            "binary_frame",
            "binary frames are not part of the protocol",
        ),
        (
            "empty username",
            Message::Text(json!({"type": "join", "room": "dev", "username": "  "}).to_string().into()),
            "bad_username",
            "username is empty",
        ),
        (
            "long username",
            Message::Text(json!({"type": "join", "room": "dev", "username": long_name}).to_string().into()),
            "bad_username",
            "32",
        ),
        (
            "room with a space",
            Message::Text(json!({"type": "join", "room": "a room", "username": "ada"}).to_string().into()),
            "bad_room",
            "room name \"a room\" is not allowed",
        ),
        (
            "empty room",
            Message::Text(json!({"type": "join", "room": "", "username": "ada"}).to_string().into()),
            "bad_room",
            "room name \"\" is not allowed",
        ),
        (
            "long room",
            Message::Text(json!({"type": "join", "room": long_room, "username": "ada"}).to_string().into()),
            "bad_room",
            "1 to 64 characters",
        ),
        (
            "text over 4 KiB",
            Message::Text(json!({"type": "send", "room": "general", "text": long_text}).to_string().into()),
            "text_too_long",
            "4097 bytes",
        ),
        (
            "empty text",
            Message::Text(json!({"type": "send", "room": "general", "text": " "}).to_string().into()),
            "empty_text",
            "message text is empty",
        ),
        (
            "send to a room not joined",
            Message::Text(json!({"type": "send", "room": "dev", "text": "hi"}).to_string().into()),
            "not_joined",
            "you have not joined room \"dev\"",
        ),
        (
            "leave a room not joined",
            Message::Text(json!({"type": "leave", "room": "dev"}).to_string().into()),
            "not_joined",
            "you have not joined room \"dev\"",
        ),
        (
            "join twice",
            Message::Text(json!({"type": "join", "room": "general", "username": "ada"}).to_string().into()),
            "already_joined",
            "already in room \"general\"",
        ),
        (
            "wrong field type",
            Message::Text(json!({"type": "send", "room": "general", "text": 42}).to_string().into()),
            "bad_json",
            "frame fields are wrong",
        ),
        (
            "resume without an epoch",
            Message::Text(json!({"type": "join", "room": "dev", "username": "ada", "after_seq": 4}).to_string().into()),
            "bad_json",
            "give both after_seq and epoch",
        ),
    ];
    for (case, message, code, words) in cases {
        client.send_raw(message).await;
        let error = client.next_where(|f| f["type"] == "error" || f["type"] == "message").await;
        assert_eq!(error["type"], "error", "{case}: expected an error, got {error}");
        assert_eq!(error["code"], code, "{case}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{case}: the error must say what was wrong ({words:?}): {error}");
    }
    // Still in the room, still chatting.
    client.say("general", "still works").await;
    let echo = client.next_where(|f| f["type"] == "message").await;
    assert_eq!(echo["text"], "still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_over_64_kib_closes_with_1009_and_loses_nothing_for_others() {
    let topology = Topology::start(1, 1).await;
    let mut other = topology.client(0).await;
    other.join("general", "bob").await;
    let mut client = topology.client(0).await;
    client.join("general", "ada").await;

    let huge = json!({"type": "send", "room": "general", "text": "x".repeat(70 * 1024)}).to_string();
    client.send_raw(Message::Text(huge.into())).await;
    let close = loop {
        match client.next_message().await {
            Some(Message::Close(close)) => break close,
            Some(_) => continue,
            None => panic!("connection ended without a close frame"),
        }
    };
    assert_eq!(close.map(|c| c.code), Some(CloseCode::Size), "close code 1009");

    other.next_leave_of("ada").await;
    other.say("general", "fine here").await;
    assert_eq!(other.next_where(|f| f["type"] == "message").await["text"], "fine here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_rooms_is_refused() {
    let topology = Topology::embedded(1).await;
    let mut client = topology.client(0).await;
    for i in 0..32 {
        client.join(&format!("room{i}"), "ada").await;
    }
    client.send(json!({"type": "join", "room": "room32", "username": "ada"})).await;
    let error = client.next_of("error").await;
    assert_eq!(error["code"], "too_many_rooms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_service_answers_bad_grpc_input_with_invalid_argument() {
    let topology = Topology::start(1, 0).await;
    let mut grpc = topology.grpc(0).await;
    let member = |id: &str, name: &str| {
        Some(Member { member_id: id.into(), username: name.into(), gateway: "gw-test".into(), ..Default::default() })
    };

    let cases: Vec<(&str, Result<(), tonic::Status>, &str)> = vec![
        (
            "bad room",
            grpc.get_room(GetRoomRequest { room: "no spaces please".into(), ..Default::default() }).await.map(drop),
            "room name",
        ),
        (
            "no member",
            grpc.join(JoinRequest { room: "general".into(), member: None, ..Default::default() }).await.map(drop),
            "member",
        ),
        (
            "long username",
            grpc.join(JoinRequest {
                room: "general".into(),
                member: member("m1", &"x".repeat(40)),
                ..Default::default()
            })
            .await
            .map(drop),
            "username",
        ),
        (
            "bad leave reason",
            grpc.leave(LeaveRequest {
                room: "general".into(),
                member_id: "m1".into(),
                reason: "bored".into(),
                ..Default::default()
            })
            .await
            .map(drop),
            "timeout",
        ),
        (
            "grace over an hour",
            grpc.leave(LeaveRequest {
                room: "general".into(),
                member_id: "m1".into(),
                grace_ms: 3_600_001,
                ..Default::default()
            })
            .await
            .map(drop),
            "an hour",
        ),
        (
            "empty text",
            grpc.send(SendRequest { room: "general".into(), text: String::new(), ..Default::default() })
                .await
                .map(drop),
            "empty",
        ),
        (
            "long text",
            grpc.send(SendRequest { room: "general".into(), text: "x".repeat(5000), ..Default::default() })
                .await
                .map(drop),
            "4096",
        ),
        (
            "bad subscribe room",
            grpc.subscribe(SubscribeRequest { room: String::new(), ..Default::default() }).await.map(drop),
            "room name",
        ),
    ];
    for (case, result, words) in cases {
        let status = result.expect_err(case);
        assert_eq!(status.code(), Code::InvalidArgument, "{case}: {status:?}");
        assert!(status.message().contains(words), "{case}: message {:?} should mention {words:?}", status.message());
    }

    let status = grpc
        .send(SendRequest {
            room: "general".into(),
            member_id: "nobody".into(),
            text: "hi".into(),
            ..Default::default()
        })
        .await
        .expect_err("a stranger cannot post");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("join"), "{status:?}");
}
