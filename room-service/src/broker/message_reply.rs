//! What `message.lua` answers, read by its tag: `{"stored", payloads,
//! repeats}`, `{"not_member"}`, `{"muted", until}` or `{"unseeded"}`. Anything else is not a reply this
//! room-service's script gives, and is said as it came.

use redis::Value;

use super::{BrokerError, BrokerResult};

/// The tag `message.lua` and `presence.lua` answer with, changing
/// nothing, for a room with no epoch when told not to start one.
pub(super) const UNSEEDED: &[u8] = b"unseeded";

/// Whether a script's reply is the `{"unseeded"}` refusal.
pub(super) fn is_unseeded(reply: &[Value]) -> bool {
    matches!(reply, [Value::BulkString(tag)] if tag == UNSEEDED)
}

/// The longest excerpt of an unexpected reply put into an error.
const SHOWN_CHARS: usize = 200;

/// One answer of `message.lua`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum MessageReply {
    /// Per message, in the order sent: its stored payload (see
    /// `envelope.rs`) and whether it was a repeat of one stored before.
    Stored { payloads: Vec<Vec<u8>>, repeats: Vec<bool> },
    /// The sender is not in the room; nothing was stored.
    NotMember,
    /// A moderator muted the sender's user until then (ms); nothing was stored.
    Muted { until_ms: i64 },
    /// The room has no epoch and the script was told not to start one:
    /// nothing was stored; the room-service seeds the room and sends again.
    Unseeded,
}

impl MessageReply {
    pub(super) fn decode(reply: Vec<Value>) -> BrokerResult<Self> {
        let odd = |why: String| BrokerError::Corrupt(format!("message.lua answered {why}: {}", shown(&reply)));
        match reply.as_slice() {
            [Value::BulkString(tag)] if tag == b"not_member" => Ok(Self::NotMember),
            [Value::BulkString(tag)] if tag == UNSEEDED => Ok(Self::Unseeded),
            [Value::BulkString(tag), until] if tag == b"muted" => {
                let until: String = redis::from_redis_value_ref(until)
                    .map_err(|e| odd(format!("a mute's end that is not text ({e})")))?;
                let until_ms = until.parse().map_err(|e| odd(format!("a mute's end that is not a number ({e})")))?;
                Ok(Self::Muted { until_ms })
            }
            [Value::BulkString(tag), payloads, repeats] if tag == b"stored" => {
                let payloads: Vec<Vec<u8>> = redis::from_redis_value_ref(payloads)
                    .map_err(|e| odd(format!("payloads that are not bytes ({e})")))?;
                let repeats: Vec<i64> = redis::from_redis_value_ref(repeats)
                    .map_err(|e| odd(format!("repeat flags that are not numbers ({e})")))?;
                if payloads.len() != repeats.len() {
                    return Err(odd(format!("{} payloads but {} repeat flags", payloads.len(), repeats.len())));
                }
                Ok(Self::Stored { payloads, repeats: repeats.into_iter().map(|flag| flag == 1).collect() })
            }
            [Value::BulkString(_), ..] => Err(odd("with an unknown tag".to_owned())),
            _ => Err(odd("without a tag".to_owned())),
        }
    }
}

/// The reply as Redis's client prints it, cut to [`SHOWN_CHARS`].
fn shown(reply: &[Value]) -> String {
    let text = format!("{reply:?}");
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn array(values: Vec<Value>) -> Value {
        Value::Array(values)
    }

    #[test]
    fn a_reply_is_read_by_its_tag() {
        let stored = vec![
            bulk("stored"),
            array(vec![bulk("1:e:3:adaX"), bulk("2:e:3:adaY")]),
            array(vec![Value::Int(0), Value::Int(1)]),
        ];
        assert_eq!(
            MessageReply::decode(stored).expect("a stored reply"),
            MessageReply::Stored {
                payloads: vec![b"1:e:3:adaX".to_vec(), b"2:e:3:adaY".to_vec()],
                repeats: vec![false, true]
            }
        );
        assert_eq!(MessageReply::decode(vec![bulk("not_member")]).expect("a refusal"), MessageReply::NotMember);
        assert_eq!(MessageReply::decode(vec![bulk("unseeded")]).expect("a refusal"), MessageReply::Unseeded);
        assert!(is_unseeded(&[bulk("unseeded")]) && !is_unseeded(&[bulk("unseeded"), bulk("x")]));
    }

    #[test]
    fn an_unexpected_reply_is_corrupt_and_says_what_came() {
        let cases: [(Vec<Value>, &str); 6] = [
            // Three values as a refusal once had them, but another tag: not
            // taken for "not a member".
            (vec![array(vec![]), array(vec![]), bulk("overloaded")], "without a tag"),
            (vec![bulk("stored"), array(vec![]), bulk("overloaded")], "repeat flags that are not numbers"),
            (vec![bulk("refused")], "with an unknown tag: [bulk-string('\"refused\"')]"),
            (vec![bulk("stored"), array(vec![bulk("1:e:1:a")]), array(vec![])], "1 payloads but 0 repeat flags"),
            (vec![bulk("stored"), Value::Int(7), array(vec![])], "payloads that are not bytes"),
            (vec![], "without a tag"),
        ];
        for (reply, says) in cases {
            let shown = format!("{reply:?}");
            let error = MessageReply::decode(reply).expect_err(&shown);
            assert!(matches!(error, BrokerError::Corrupt(_)), "{shown}: {error:?}");
            let error = error.to_string();
            assert!(error.contains("message.lua answered") && error.contains(says), "{shown}: {error}");
        }
        let overloaded = vec![array(vec![]), array(vec![]), bulk("overloaded")];
        let error = MessageReply::decode(overloaded).expect_err("corrupt").to_string();
        assert!(error.contains("overloaded"), "names what came: {error}");
    }

    #[test]
    fn a_huge_odd_reply_is_not_echoed_whole() {
        let huge = vec![bulk(&"x".repeat(100_000))];
        let error = MessageReply::decode(huge).expect_err("corrupt").to_string();
        assert!(error.len() < 400, "{} bytes", error.len());
    }
}
