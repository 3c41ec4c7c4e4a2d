//! How a member is kept in a room: a JSON record per member id, and a
//! roster entry that orders members by name for paging.
//!
//! Both formats are read by the Lua steps as well as by Rust: the message
//! step takes the sender's name from the record (`cjson`), and the presence
//! step builds roster entries from it. Names and member ids never contain
//! control characters (see `chat_proto::names`), so a NUL separates the two
//! halves of a roster entry.

use std::borrow::Cow;

use chat_proto::v1::Member;
use serde::{Deserialize, Serialize};

use super::{BrokerError, BrokerResult};

/// The record stored under a member id.
#[derive(Debug, Serialize, Deserialize)]
struct Record<'a> {
    /// The member's name: the message step copies it into each message.
    #[serde(borrow)]
    u: Cow<'a, str>,
    /// The gateway it is connected through.
    #[serde(borrow)]
    g: Cow<'a, str>,
    /// When it joined, ms since the Unix epoch.
    t: i64,
    /// The connection that holds it (see `Member::connection`).
    #[serde(borrow, default)]
    c: Cow<'a, str>,
    /// Set while no connection holds it: the reason it will leave for if
    /// its session does not resume in time. Written by `presence.lua` only.
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    d: Option<Cow<'a, str>>,
    /// The user behind the member (see `Member::user_id`); absent in
    /// records written before users were kept.
    #[serde(borrow, default, skip_serializing_if = "str::is_empty")]
    i: Cow<'a, str>,
}

/// The record to store for `member`.
pub(crate) fn encode(member: &Member) -> String {
    let record = Record {
        u: Cow::Borrowed(&member.username),
        g: Cow::Borrowed(&member.gateway),
        t: member.joined_at_ms,
        c: Cow::Borrowed(&member.connection),
        d: None,
        i: Cow::Borrowed(&member.user_id),
    };
    serde_json::to_string(&record).unwrap_or_default()
}

/// The member stored under `member_id` as `record`.
pub(crate) fn decode(member_id: &str, record: &[u8]) -> BrokerResult<Member> {
    let record: Record<'_> = serde_json::from_slice(record)
        .map_err(|e| BrokerError::Corrupt(format!("member record of {member_id:?}: {e}")))?;
    Ok(Member {
        member_id: member_id.to_owned(),
        username: record.u.into_owned(),
        gateway: record.g.into_owned(),
        joined_at_ms: record.t,
        connection: record.c.into_owned(),
        user_id: record.i.into_owned(),
    })
}

/// The roster entry that sorts `member` among the room's members: by name,
/// then by id. A page of members ends at an entry, which is the cursor the
/// next page starts after.
pub(crate) fn roster_entry(member: &Member) -> String {
    format!("{}\0{}", member.username, member.member_id)
}

/// The member id at the end of a roster entry.
pub(crate) fn member_id_of(entry: &str) -> &str {
    entry.rsplit_once('\0').map_or(entry, |(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> Member {
        Member {
            member_id: "gw-1/ab-7".into(),
            username: "Ada \"L\" ✓".into(),
            gateway: "gw-1".into(),
            joined_at_ms: 17,
            connection: "gw-1/ab-7".into(),
            user_id: "ada@example".into(),
        }
    }

    #[test]
    fn a_record_round_trips() {
        let member = ada();
        assert_eq!(decode(&member.member_id, encode(&member).as_bytes()).expect("decodes"), member);
    }

    #[test]
    fn roster_entries_sort_by_name_and_give_back_the_id() {
        let entry = roster_entry(&ada());
        assert_eq!(member_id_of(&entry), "gw-1/ab-7");
        let bob = Member { username: "Bob".into(), member_id: "gw-1/ab-1".into(), ..ada() };
        assert!(entry < roster_entry(&bob), "A before B whatever the ids");
    }

    #[test]
    fn an_unreadable_record_is_an_error_naming_the_member() {
        let error = decode("m1", b"\x0a\x02").unwrap_err().to_string();
        assert!(error.contains("\"m1\""), "{error}");
    }
}
