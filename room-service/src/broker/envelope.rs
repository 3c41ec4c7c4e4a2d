//! The bytes a stored event travels as on Redis: `<seq>:<epoch>:<protobuf>`.
//!
//! The Lua step that assigns the sequence number cannot edit protobuf, so it
//! prefixes the number and the room's epoch to the body the room-service
//! encoded; readers (pub/sub and history alike) split them off again. Ephemeral
//! events travel as `0::<protobuf>`.

use chat_proto::v1::RoomEvent;
use prost::Message;

use super::{BrokerError, event_id};

pub fn encode_ephemeral(event: &RoomEvent) -> Vec<u8> {
    let mut out = b"0::".to_vec();
    event.encode(&mut out).expect("a Vec grows as needed");
    out
}

pub fn decode(payload: &[u8]) -> Result<RoomEvent, BrokerError> {
    let corrupt = |why: &str| BrokerError::Corrupt(format!("event envelope: {why}"));
    let (seq, rest) = split_once(payload).ok_or_else(|| corrupt("no sequence number"))?;
    let (epoch, body) = split_once(rest).ok_or_else(|| corrupt("no epoch"))?;
    let seq: u64 = std::str::from_utf8(seq)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt("sequence number is not a number"))?;
    let epoch = std::str::from_utf8(epoch).map_err(|_| corrupt("epoch is not UTF-8"))?;
    let mut event = RoomEvent::decode(body).map_err(|e| corrupt(&e.to_string()))?;
    if seq > 0 {
        event.seq = seq;
        event.epoch = epoch.to_owned();
        event.id = event_id(epoch, seq);
    }
    Ok(event)
}

fn split_once(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == b':')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::{ChatMessage, room_event::Kind};

    fn message(text: &str) -> RoomEvent {
        RoomEvent {
            room: "general".into(),
            kind: Some(Kind::Message(ChatMessage { text: text.into(), ..Default::default() })),
            ..Default::default()
        }
    }

    #[test]
    fn stored_event_round_trips_with_its_sequence() {
        let body = message("a:b:c").encode_to_vec();
        let mut payload = b"42:ep0ch:".to_vec();
        payload.extend_from_slice(&body);
        let event = decode(&payload).expect("decodes");
        assert_eq!((event.seq, event.epoch.as_str()), (42, "ep0ch"));
        assert_eq!(event.id, "ep0ch:42");
        assert_eq!(event, RoomEvent { seq: 42, epoch: "ep0ch".into(), id: "ep0ch:42".into(), ..message("a:b:c") });
    }

    #[test]
    fn ephemeral_event_has_no_sequence() {
        let event = decode(&encode_ephemeral(&message("typing"))).expect("decodes");
        assert_eq!((event.seq, event.id.as_str()), (0, ""));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b""[..], b"12", b"x:y:z", b"1:e:\xff\xff\xff"] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }
}
