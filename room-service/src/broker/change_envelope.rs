//! A change to a message as `change.lua` stores and publishes it:
//! `u:<seq>:<epoch>:<JSON>`, the JSON written by the script (which cannot
//! write protobuf): `k` the op, `t` the target seq, `m`/`n`/`u` the actor's
//! member id, name and user, `ts` when, and per op `x` (the new text),
//! `mod`/`why` (a moderator's delete) or `e`/`c` (the emoji and its count).

use chat_proto::v1::message_change::Change;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{Deleted, Edited, MessageChange, Reacted, RoomEvent};
use serde::Deserialize;

use super::{BrokerError, event_id};

#[derive(Deserialize)]
struct Stored {
    k: String,
    t: u64,
    m: String,
    n: String,
    u: String,
    ts: i64,
    #[serde(default)]
    x: String,
    #[serde(default, rename = "mod")]
    by_moderator: u8,
    #[serde(default)]
    why: String,
    #[serde(default)]
    e: String,
    #[serde(default)]
    c: u32,
}

/// Decodes what follows `u:`.
pub(crate) fn decode(room: &str, rest: &[u8]) -> Result<RoomEvent, BrokerError> {
    let corrupt = |why: &str| BrokerError::Corrupt(format!("change envelope: {why}"));
    let text = std::str::from_utf8(rest).map_err(|_| corrupt("not UTF-8"))?;
    let mut parts = text.splitn(3, ':');
    let (Some(seq), Some(epoch), Some(json)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt("no seq, epoch and change"));
    };
    let seq: u64 = seq.parse().map_err(|_| corrupt("sequence number is not a number"))?;
    let stored: Stored = serde_json::from_str(json).map_err(|e| corrupt(&e.to_string()))?;
    let change = match stored.k.as_str() {
        "edit" => Change::Edited(Edited { text: stored.x }),
        "delete" => Change::Deleted(Deleted { by_moderator: stored.by_moderator == 1, reason: stored.why }),
        "react" | "unreact" => {
            Change::Reacted(Reacted { emoji: stored.e, added: stored.k == "react", count: stored.c })
        }
        other => return Err(corrupt(&format!("unknown op {other:?}"))),
    };
    Ok(RoomEvent {
        room: room.to_owned(),
        seq,
        epoch: epoch.to_owned(),
        ts_ms: stored.ts,
        id: event_id(epoch, seq),
        traceparent: String::new(),
        kind: Some(Kind::Change(MessageChange {
            target_seq: stored.t,
            target_id: event_id(epoch, stored.t),
            member_id: stored.m,
            username: stored.n,
            user_id: stored.u,
            change: Some(change),
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reaction_reads_back_with_its_count() {
        let json = r#"{"k":"react","t":43,"m":"m1","n":"ada","u":"u1","ts":1763769602000,"e":"👍","c":2}"#;
        let event = decode("general", format!("45:k3j9x2:{json}").as_bytes()).expect("decodes");
        assert_eq!((event.seq, event.id.as_str(), event.ts_ms), (45, "k3j9x2:45", 1_763_769_602_000));
        let Some(Kind::Change(change)) = event.kind else { panic!("a change") };
        assert_eq!((change.target_seq, change.target_id.as_str()), (43, "k3j9x2:43"));
        assert_eq!(change.change, Some(Change::Reacted(Reacted { emoji: "👍".into(), added: true, count: 2 })));
    }

    #[test]
    fn an_edit_keeps_colons_in_its_text() {
        let json = r#"{"k":"edit","t":1,"m":"m1","n":"ada","u":"u1","ts":5,"x":"at 10:30: lunch \/ run"}"#;
        let event = decode("general", format!("2:ep:{json}").as_bytes()).expect("decodes");
        let Some(Kind::Change(change)) = event.kind else { panic!("a change") };
        assert_eq!(change.change, Some(Change::Edited(Edited { text: "at 10:30: lunch / run".into() })));
    }

    #[test]
    fn garbage_is_an_error() {
        for bad in ["", "1:ep", "x:ep:{}", "1:ep:{}", r#"1:ep:{"k":"burn","t":1,"m":"","n":"","u":"","ts":1}"#] {
            assert!(decode("r", bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
