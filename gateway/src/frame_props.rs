//! Property tests of the browser frame parser: whatever text comes in, it
//! answers with a frame or a refusal from the protocol's table, never a
//! panic; and every well-formed frame reads back as what was sent.

use crate::frame::{ClientFrame, parse};
use chat_proto::ErrorCode;
use proptest::prelude::*;
use serde_json::json;

const CODES: [ErrorCode; 2] = [ErrorCode::BadJson, ErrorCode::UnknownType];

fn frame() -> impl Strategy<Value = ClientFrame> {
    let text = "\\PC{0,50}";
    prop_oneof![
        (text, text).prop_map(|(room, username)| ClientFrame::Join { room, username, after_seq: None, epoch: None }),
        text.prop_map(|room| ClientFrame::Leave { room }),
        (text, text, text).prop_map(|(room, text, client_id)| ClientFrame::Send {
            room,
            text,
            client_id,
            attachments: Vec::new()
        }),
        text.prop_map(|room| ClientFrame::Typing { room }),
        (text, text).prop_map(|(room, after)| ClientFrame::Members { room, after }),
        (text, any::<Option<u64>>(), any::<Option<u32>>()).prop_map(|(room, before_seq, limit)| {
            ClientFrame::History { room, before_seq: before_seq.map(|n| json!(n)), limit: limit.map(|n| json!(n)) }
        }),
        (text, text, any::<Option<u64>>(), any::<Option<u32>>()).prop_map(|(room, query, before_seq, limit)| {
            ClientFrame::Search {
                room,
                query,
                before_seq: before_seq.map(|n| json!(n)),
                limit: limit.map(|n| json!(n)),
            }
        }),
        // (`open_dm` and `rooms` name no room: unit tests in frame/client.rs.)
        (text, any::<u64>()).prop_map(|(room, seq)| ClientFrame::Read { room, seq }),
        (text, text, text, any::<Option<u64>>(), text, text).prop_map(
            |(room, action, user_id, duration, reason, role)| ClientFrame::Moderate {
                room,
                action,
                user_id,
                duration,
                reason,
                role
            }
        ),
    ]
}

fn to_json(frame: &ClientFrame) -> String {
    match frame {
        ClientFrame::Join { room, username, .. } => json!({"type": "join", "room": room, "username": username}),
        ClientFrame::Leave { room } => json!({"type": "leave", "room": room}),
        ClientFrame::Send { room, text, client_id, .. } => {
            json!({"type": "send", "room": room, "text": text, "client_id": client_id})
        }
        ClientFrame::Typing { room } => json!({"type": "typing", "room": room}),
        ClientFrame::Members { room, after } => json!({"type": "members", "room": room, "after": after}),
        ClientFrame::History { room, before_seq, limit } => {
            json!({"type": "history", "room": room, "before_seq": before_seq, "limit": limit})
        }
        ClientFrame::Search { room, query, before_seq, limit } => {
            json!({"type": "search", "room": room, "query": query, "before_seq": before_seq, "limit": limit})
        }
        ClientFrame::OpenDm { users } => json!({"type": "open_dm", "users": users}),
        ClientFrame::Read { room, seq } => json!({"type": "read", "room": room, "seq": seq}),
        ClientFrame::Rooms => json!({"type": "rooms"}),
        ClientFrame::Moderate { room, action, user_id, duration, reason, role } => json!({
            "type": "moderate", "room": room, "action": action, "user_id": user_id,
            "duration": duration, "reason": reason, "role": role
        }),
    }
    .to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_gets_a_frame_or_a_refusal_with_a_known_code(input in "\\PC{0,200}|\\{[\"a-z:,{}\\[\\]0-9 ]{0,80}") {
        if let Err(refusal) = parse(&input) {
            prop_assert!(CODES.contains(&refusal.code), "code {} for {:?}", refusal.code, input);
            prop_assert!(!refusal.message.is_empty());
            prop_assert!(refusal.message.len() < 1000, "a refusal does not echo a huge frame");
        }
    }

    #[test]
    fn every_well_formed_frame_reads_back_as_sent(frame in frame()) {
        prop_assert_eq!(parse(&to_json(&frame)), Ok(frame));
    }

    #[test]
    fn a_frame_with_a_field_of_the_wrong_type_is_bad_json(frame in frame(), number in any::<i64>()) {
        let mut value: serde_json::Value = serde_json::from_str(&to_json(&frame)).expect("json");
        value["room"] = json!(number);
        let refusal = parse(&value.to_string()).expect_err("a number is not a room");
        prop_assert_eq!(refusal.code, ErrorCode::BadJson);
    }

    #[test]
    fn nesting_however_deep_is_refused_without_a_crash(depth in 1usize..5000) {
        let input = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        prop_assert!(parse(&input).is_err());
    }
}
