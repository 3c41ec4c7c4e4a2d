//! Per-connection rate limits (`SEND_RATE`, `SEND_BURST`, and a fixed one on
//! joins), on `governor`'s GCRA: a bucket of `burst` that refills at `rate`
//! per second. A frame over its limit gets `error` `rate_limited` with
//! `retry_after_ms`; nothing is stored and the connection stays.

use chat_proto::ErrorCode;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::frame::Refusal;
use crate::limits::{JOIN_BURST, JOIN_RATE};

/// The limits every connection gets, from the config.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    send: Option<Quota>,
    join: Option<Quota>,
}

impl Rates {
    /// `SEND_RATE` messages per second with bursts of `SEND_BURST`; either 0
    /// turns the send limit off. Joins are always limited.
    pub fn new(send_rate: u32, send_burst: u32) -> Self {
        Self { send: quota(send_rate, send_burst), join: quota(JOIN_RATE, JOIN_BURST) }
    }

    /// Fresh buckets for one new connection.
    pub fn for_connection(&self) -> Limits {
        let limiter = |q: Option<Quota>| q.map(|q| Arc::new(RateLimiter::direct(q)));
        Limits { send: limiter(self.send), join: limiter(self.join) }
    }
}

fn quota(rate: u32, burst: u32) -> Option<Quota> {
    Some(Quota::per_second(NonZeroU32::new(rate)?).allow_burst(NonZeroU32::new(burst)?))
}

/// One connection's buckets.
#[derive(Debug, Clone)]
pub struct Limits {
    send: Option<Arc<DefaultDirectRateLimiter>>,
    join: Option<Arc<DefaultDirectRateLimiter>>,
}

impl Limits {
    /// No limits at all (tests of other things, and `SEND_RATE=0` for sends).
    pub fn none() -> Self {
        Self { send: None, join: None }
    }

    /// Takes one message from the send bucket, or says when to try again.
    pub fn send(&self, room: &str) -> Result<(), Refusal> {
        take(self.send.as_deref(), room, "messages")
    }

    /// Takes one join from the join bucket, or says when to try again.
    pub fn join(&self, room: &str) -> Result<(), Refusal> {
        take(self.join.as_deref(), room, "joins")
    }
}

fn take(limiter: Option<&DefaultDirectRateLimiter>, room: &str, what: &str) -> Result<(), Refusal> {
    let Some(limiter) = limiter else { return Ok(()) };
    limiter.check().map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        // Rounded up, so a client that waits exactly this long gets through.
        let ms = u64::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u64::MAX).max(1);
        Refusal::new(
            ErrorCode::RateLimited,
            format!("too many {what} from this connection: wait {ms} ms before sending again; this one was not sent"),
        )
        .in_room(room)
        .retry_after(ms)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_next_is_refused_with_a_wait() {
        let limits = Rates::new(1, 3).for_connection();
        for i in 0..3 {
            assert!(limits.send("general").is_ok(), "message {i} is within the burst");
        }
        let refusal = limits.send("general").expect_err("over the burst");
        assert_eq!(refusal.code, ErrorCode::RateLimited);
        assert_eq!(refusal.room.as_deref(), Some("general"));
        let wait = refusal.retry_after_ms.expect("says how long to wait");
        assert!((1..=1000).contains(&wait), "{wait} ms");
    }

    #[test]
    fn zero_turns_the_send_limit_off_but_not_the_join_limit() {
        for (rate, burst) in [(0, 20), (10, 0)] {
            let limits = Rates::new(rate, burst).for_connection();
            assert!((0..10_000).all(|_| limits.send("r").is_ok()), "SEND_RATE={rate} SEND_BURST={burst}");
        }
        let limits = Rates::new(0, 0).for_connection();
        assert!((0..JOIN_BURST).all(|_| limits.join("r").is_ok()));
        assert_eq!(limits.join("r").map_err(|r| r.code), Err(ErrorCode::RateLimited));
    }
}
