//! The bytes an event travels as on Redis, in the history stream and on the
//! room's channel alike.
//!
//! The Lua steps cannot edit protobuf, so they wrap what the room-service
//! encoded with what only they know:
//! - a stored message: `<seq>:<epoch>:<name length>:<name><protobuf>` — the
//!   sequence number, the room's epoch and the sender's name, looked up in
//!   the same step that checks the sender is a member;
//! - a presence batch: `p:<member count>\n` then one line per change,
//!   `+<member id>\0<record>` for a join, `-<member id>\0<record>\0<reason>`
//!   for a leave (records are JSON, see [`super::record`]),
//!   `~<member id>\0<connection>` for a member taken over from that
//!   connection and `=<member id>\0<record>` for one restored silently;
//! - an ephemeral event (typing): `0::<protobuf>`;
//! - a change to a message: `u:<seq>:<epoch>:<JSON>` (see `change_envelope`).
//!
//! Readers split them off again and hand on a plain [`RoomEvent`].

use chat_proto::LeaveReason;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{MemberLeft, PresenceDiff, RoomEvent, SessionMoved};
use prost::Message;

use super::{BrokerError, event_id, record};

pub(crate) fn encode_ephemeral(event: &RoomEvent) -> Vec<u8> {
    let mut out = b"0::".to_vec();
    out.extend_from_slice(&event.encode_to_vec());
    out
}

/// Decodes an event of `room` from its Redis bytes.
pub(crate) fn decode(room: &str, payload: &[u8]) -> Result<RoomEvent, BrokerError> {
    if let Some(diff) = payload.strip_prefix(b"p:") {
        return decode_presence(room, diff);
    }
    if let Some(change) = payload.strip_prefix(b"u:") {
        return super::change_envelope::decode(room, change);
    }
    let corrupt = |why: &str| BrokerError::Corrupt(format!("event envelope: {why}"));
    let (seq, rest) = split_once(payload).ok_or_else(|| corrupt("no sequence number"))?;
    let (epoch, rest) = split_once(rest).ok_or_else(|| corrupt("no epoch"))?;
    let seq: u64 = number(seq).ok_or_else(|| corrupt("sequence number is not a number"))?;
    let epoch = std::str::from_utf8(epoch).map_err(|_| corrupt("epoch is not UTF-8"))?;
    if seq == 0 {
        return RoomEvent::decode(rest).map_err(|e| corrupt(&e.to_string()));
    }
    let (name_len, rest) = split_once(rest).ok_or_else(|| corrupt("no sender name"))?;
    let name_len: usize = number(name_len).ok_or_else(|| corrupt("sender name length is not a number"))?;
    if rest.len() < name_len {
        return Err(corrupt("sender name is cut short"));
    }
    let (name, body) = rest.split_at(name_len);
    let mut event = RoomEvent::decode(body).map_err(|e| corrupt(&e.to_string()))?;
    event.seq = seq;
    event.epoch = epoch.to_owned();
    event.id = event_id(epoch, seq);
    if let Some(Kind::Message(message)) = &mut event.kind {
        message.username = String::from_utf8(name.to_vec()).map_err(|_| corrupt("sender name is not UTF-8"))?;
    }
    Ok(event)
}

fn decode_presence(room: &str, diff: &[u8]) -> Result<RoomEvent, BrokerError> {
    let corrupt = |why: &str| BrokerError::Corrupt(format!("presence envelope: {why}"));
    let text = std::str::from_utf8(diff).map_err(|_| corrupt("not UTF-8"))?;
    let mut lines = text.split('\n').filter(|line| !line.is_empty());
    let member_count = lines.next().and_then(|count| count.parse().ok()).ok_or_else(|| corrupt("no member count"))?;
    let mut presence = PresenceDiff { member_count, ..Default::default() };
    for line in lines {
        let neither = || corrupt("a change that is none of + - ~ =");
        // Not a char boundary after the first byte: not a change line.
        let rest = line.get(1..).ok_or_else(neither)?;
        let mut fields = rest.split('\0');
        let (Some(id), Some(second)) = (fields.next(), fields.next()) else {
            return Err(corrupt("a change without member id and record"));
        };
        match line.as_bytes()[0] {
            b'+' => presence.joins.push(record::decode(id, second.as_bytes())?),
            b'-' => presence.leaves.push(MemberLeft {
                member: Some(record::decode(id, second.as_bytes())?),
                reason: fields.next().unwrap_or(LeaveReason::Left.as_str()).to_owned(),
            }),
            b'~' => presence.moved.push(SessionMoved { member_id: id.to_owned(), connection: second.to_owned() }),
            b'=' => presence.restored += 1,
            _ => return Err(neither()),
        }
    }
    Ok(RoomEvent {
        room: room.to_owned(),
        ts_ms: chat_runtime::clock::now_ms(),
        kind: Some(Kind::Presence(presence)),
        ..Default::default()
    })
}

fn number<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn split_once(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == b':')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::{ChatMessage, Member};

    fn message(text: &str) -> RoomEvent {
        RoomEvent {
            room: "general".into(),
            kind: Some(Kind::Message(ChatMessage { text: text.into(), ..Default::default() })),
            ..Default::default()
        }
    }

    #[test]
    fn stored_message_round_trips_with_its_sequence_and_sender() {
        let body = message("a:b:c").encode_to_vec();
        let mut payload = "42:ep0ch:7:ada:é!".as_bytes().to_vec();
        payload.extend_from_slice(&body);
        let event = decode("general", &payload).expect("decodes");
        assert_eq!((event.seq, event.epoch.as_str(), event.id.as_str()), (42, "ep0ch", "ep0ch:42"));
        let Some(Kind::Message(m)) = &event.kind else { panic!("a message: {event:?}") };
        assert_eq!((m.username.as_str(), m.text.as_str()), ("ada:é!", "a:b:c"));
    }

    #[test]
    fn ephemeral_event_has_no_sequence() {
        let event = decode("general", &encode_ephemeral(&message("typing"))).expect("decodes");
        assert_eq!((event.seq, event.id.as_str()), (0, ""));
    }

    #[test]
    fn presence_batch_decodes_joins_and_leaves() {
        let ada = Member {
            member_id: "g/1".into(),
            username: "ada".into(),
            gateway: "g".into(),
            joined_at_ms: 5,
            connection: "g/r-1".into(),
            user_id: "u1".into(),
        };
        let bob = Member { member_id: "g/2".into(), username: "bob".into(), ..ada.clone() };
        let payload =
            format!("p:1\n+g/1\0{}\n-g/2\0{}\0expired\n", record::encode(&ada), record::encode(&bob)).into_bytes();
        let event = decode("general", &payload).expect("decodes");
        let Some(Kind::Presence(diff)) = event.kind else { panic!("a presence diff") };
        assert_eq!(diff.member_count, 1);
        assert_eq!(diff.joins, vec![ada]);
        assert_eq!(diff.leaves, vec![MemberLeft { member: Some(bob), reason: "expired".into() }]);
        assert_eq!((event.seq, event.room.as_str()), (0, "general"));
    }

    #[test]
    fn presence_batch_decodes_takeovers_and_restores() {
        let ada = Member { member_id: "s1".into(), username: "ada".into(), ..Default::default() };
        let payload = format!("p:3\n~s1\0gw/r-4\n=s2\0{}\n=s3\0{}", record::encode(&ada), record::encode(&ada));
        let event = decode("general", payload.as_bytes()).expect("decodes");
        let Some(Kind::Presence(diff)) = event.kind else { panic!("a presence diff") };
        assert_eq!(diff.moved, vec![SessionMoved { member_id: "s1".into(), connection: "gw/r-4".into() }]);
        assert_eq!((diff.restored, diff.member_count), (2, 3));
        assert!(diff.joins.is_empty() && diff.leaves.is_empty(), "{diff:?}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"12",
            b"x:y:z",
            b"1:e:\xff\xff\xff",
            b"1:e:9:ab",
            b"p:",
            b"p:1\n+",
            b"p:1\n*a\0{}",
            "p:1\né\0{}".as_bytes(),
        ] {
            assert!(decode("r", bad).is_err(), "{bad:?}");
        }
    }
}
