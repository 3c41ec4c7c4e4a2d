//! Frames nobody should send: each gets an `error` frame or a documented
//! close code (docs/protocol.md), nothing panics, and the gateway serves
//! everyone normally afterwards.

use crate::support::{Client, Topology};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// Error codes a frame from a client that never joined can get.
const EXPECTED_CODES: [&str; 6] =
    ["bad_json", "unknown_type", "binary_frame", "bad_room", "not_joined", "bad_username"];

fn random_string(rng: &mut StdRng, max: usize) -> String {
    let len = rng.random_range(0..=max);
    (0..len)
        .map(|_| match rng.random_range(0..4) {
            0 => rng.random_range(b' '..=b'~') as char,
            1 => char::from_u32(rng.random_range(0x80..0x3000)).unwrap_or('?'),
            2 => ['{', '}', '"', '\\', ':', ',', '[', ']'][rng.random_range(0..8)],
            _ => char::from_u32(rng.random_range(0x1F000..0x1FAFF)).unwrap_or('!'),
        })
        .collect()
}

fn random_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..6) {
        0 => Value::Null,
        1 => json!(rng.random::<i64>()),
        2 => json!(rng.random::<bool>()),
        3 => json!([random_string(rng, 5), 1]),
        4 => json!({"x": random_string(rng, 5)}),
        _ => json!(random_string(rng, 40)),
    }
}

/// One application-level frame that can never be acted on by a client that
/// never joined (a `join` always names a room that is not allowed).
fn random_frame(rng: &mut StdRng) -> Message {
    match rng.random_range(0..7) {
        0 => Message::Binary((0..rng.random_range(0..200)).map(|_| rng.random::<u8>()).collect::<Vec<u8>>().into()),
        1 => Message::Text(random_string(rng, 120).into()),
        2 => {
            let depth = rng.random_range(1..400);
            Message::Text(format!("{}{}", "[".repeat(depth), "]".repeat(depth)).into())
        }
        3 => Message::Text(r#"{"type":"send","room":"general","text":"\ud800"}"#.into()),
        4 => {
            let kinds = ["join", "leave", "send", "typing", "shout", ""];
            let mut frame = serde_json::Map::new();
            if rng.random_bool(0.9) {
                frame.insert("type".into(), json!(kinds[rng.random_range(0..kinds.len())]));
            }
            for field in ["room", "username", "text", "client_id", "extra"] {
                if rng.random_bool(0.6) {
                    frame.insert(field.into(), random_value(rng));
                }
            }
            if frame.get("type") == Some(&json!("join")) {
                // Never a room one could join: this client must stay out.
                frame.insert("room".into(), json!(format!("no room {}", random_string(rng, 10))));
            }
            Message::Text(Value::Object(frame).to_string().into())
        }
        5 => Message::Text(json!({"type": "join", "room": "", "username": random_string(rng, 40)}).to_string().into()),
        _ => Message::Text(
            format!(r#"{{"type":"send","room":"general","text":"{}"}}"#, "x".repeat(rng.random_range(0..60_000)))
                .into(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_random_frames_each_get_an_error_and_service_goes_on() {
    let topology = Topology::start(1, 1).await;
    let seed = rand::random::<u64>();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut client = topology.client(0).await;
    const FRAMES: usize = 3000;
    const BATCH: usize = 50;
    for batch in 0..FRAMES / BATCH {
        let frames: Vec<Message> = (0..BATCH).map(|_| random_frame(&mut rng)).collect();
        for frame in frames.iter().cloned() {
            client.send_raw(frame).await;
        }
        for (i, frame) in frames.iter().enumerate() {
            let answer = client.next().await;
            let shown: String = format!("{frame:?}").chars().take(200).collect();
            assert_eq!(answer["type"], "error", "seed {seed}, frame {}: {shown} got {answer}", batch * BATCH + i);
            let code = answer["code"].as_str().unwrap_or_default();
            assert!(EXPECTED_CODES.contains(&code), "seed {seed}: unexpected code {code}: {answer} for {shown}");
            assert!(answer["message"].as_str().is_some_and(|m| m.len() > 10), "says what was wrong: {answer}");
        }
    }
    // The same connection, and another, chat normally afterwards.
    client.join("general", "ada").await;
    let mut other = topology.client(0).await;
    other.join("general", "bob").await;
    client.say("general", "still fine").await;
    assert_eq!(other.next_of("message").await["text"], "still fine");
}

/// Any frame, control frames included (`Frame::message` is for data frames).
fn raw(opcode: OpCode, is_final: bool, payload: Vec<u8>) -> Frame {
    Frame::from_payload(FrameHeader { is_final, opcode, ..FrameHeader::default() }, payload.into())
}

/// A broken WebSocket frame and the close code it must get.
fn broken_frame(kind: usize, rng: &mut StdRng) -> (&'static str, Vec<Frame>, u16) {
    let data = |rng: &mut StdRng| (0..rng.random_range(0..100)).map(|_| rng.random::<u8>()).collect::<Vec<u8>>();
    match kind {
        0 => {
            let mut bytes = b"{\"type\":\"send\",\"text\":\"".to_vec();
            bytes.extend([0xC3, 0x28, 0xFF, 0xFE]);
            ("invalid UTF-8", vec![Frame::message(bytes, OpCode::Data(Data::Text), true)], 1007)
        }
        1 => {
            let mut frame = Frame::message(data(rng), OpCode::Data(Data::Text), true);
            frame.header_mut().rsv1 = true;
            ("reserved bit", vec![frame], 1002)
        }
        2 => {
            let opcode = [3u8, 4, 5, 6, 7][rng.random_range(0..5)];
            ("reserved data opcode", vec![Frame::message(data(rng), OpCode::Data(Data::Reserved(opcode)), true)], 1002)
        }
        3 => {
            let opcode = [11u8, 12, 13, 14, 15][rng.random_range(0..5)];
            ("reserved control opcode", vec![raw(OpCode::Control(Control::Reserved(opcode)), true, data(rng))], 1002)
        }
        4 => ("continuation of nothing", vec![Frame::message(data(rng), OpCode::Data(Data::Continue), true)], 1002),
        5 => ("fragmented ping", vec![raw(OpCode::Control(Control::Ping), false, data(rng))], 1002),
        6 => ("ping over 125 bytes", vec![raw(OpCode::Control(Control::Ping), true, vec![0u8; 200])], 1002),
        7 => {
            // Fragments each under the frame limit, together over the message limit.
            let part = |op, fin| Frame::message(vec![b'x'; 100 * 1024], OpCode::Data(op), fin);
            ("fragments over the limit", vec![part(Data::Text, false), part(Data::Continue, true)], 1009)
        }
        _ => {
            // Over the socket's 128 KiB limit, with more behind it.
            let big = vec![b'x'; rng.random_range(130 * 1024..400 * 1024)];
            let next = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true);
            ("frame over the limit", vec![Frame::message(big, OpCode::Data(Data::Text), true), next], 1009)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_that_break_the_websocket_protocol_get_their_close_code_every_time() {
    let topology = Topology::start(1, 1).await;
    let seed = rand::random::<u64>();
    let mut rng = StdRng::seed_from_u64(seed);
    for round in 0..135 {
        let kind = round % 9;
        let (case, frames, code) = broken_frame(kind, &mut rng);
        let client = topology.client(0).await;
        let (mut sink, mut stream) = client.into_inner().split();
        // Sent from a task of its own: the gateway stops reading after the
        // bad frame, so a large write may never finish.
        let writer = tokio::spawn(async move {
            for frame in frames {
                if sink.send(Message::Frame(frame)).await.is_err() {
                    break;
                }
            }
        });
        let closed = loop {
            match tokio::time::timeout(crate::support::PATIENCE, stream.next()).await.expect("an answer in time") {
                Some(Ok(Message::Close(close))) => break close.map(|c| u16::from(c.code)),
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("seed {seed} round {round} ({case}): no close frame, {error}"),
                None => panic!("seed {seed} round {round} ({case}): connection ended without a close frame"),
            }
        };
        assert_eq!(closed, Some(code), "seed {seed} round {round}: {case}");
        writer.abort();
    }
    // Everyone else is served as before.
    let mut a = topology.client(0).await;
    let mut b = topology.client(0).await;
    a.join("general", "ada").await;
    b.join("general", "bob").await;
    a.say("general", "after the storm").await;
    assert_eq!(b.next_of("message").await["text"], "after the storm");
    let (status, _) = crate::support::http_get(topology.gateway_addr(0), "/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_limit_frame_closes_with_1009_even_mid_conversation() {
    let topology = Topology::start(1, 1).await;
    for _ in 0..10 {
        let mut client = topology.client(0).await;
        client.join("general", "ada").await;
        // Under the socket limit but over the protocol's 64 KiB: read whole, refused.
        client.say("general", &"x".repeat(70 * 1024)).await;
        assert_eq!(client.close_code().await, Some(1009));
        let _: Client = topology.client(0).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_over_limit_send_behind_another_send_still_closes_with_1009() {
    let topology = Topology::start(1, 2).await;
    let mut bob = topology.client(1).await;
    bob.join("general", "bob").await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    // A valid send, then one padded past 64 KiB with JSON whitespace (its
    // text is short and fine), read together: the second would join the
    // first's batch if the batch skipped the frame limit.
    let first = json!({"type": "send", "room": "general", "text": "first"}).to_string();
    let padded = format!(
        r#"{{"type": "send", "room": "general", "text": "padded"{}}}"#,
        " ".repeat(gateway::limits::MAX_FRAME_BYTES)
    );
    assert!(padded.len() > gateway::limits::MAX_FRAME_BYTES && padded.len() < gateway::limits::SOCKET_FRAME_BYTES);
    ada.send_together(vec![Message::Text(first.into()), Message::Text(padded.into())]).await;
    assert_eq!(ada.close_code().await, Some(1009), "a frame over the limit closes the connection");
    let seen = crate::support::texts(&bob.drain(std::time::Duration::from_millis(500)).await);
    assert_eq!(seen, ["first"], "the padded frame must not be stored");
}
