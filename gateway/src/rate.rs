//! Rate limits (`SEND_RATE`, `SEND_BURST`, and a fixed one on joins), on
//! `governor`'s GCRA: a bucket of `burst` that refills at `rate` per second.
//! A frame over its limit gets `error` `rate_limited` with `retry_after_ms`;
//! nothing is stored and the connection stays.
//!
//! Whose bucket a frame takes from:
//! - **sends, with tokens**: the user's (`sub`), one bucket shared by all of
//!   that user's connections on this gateway, so ten tabs (or a script
//!   opening ten connections) send at one user's rate, not ten times it. The
//!   buckets live in one keyed limiter; [`Rates::sweep`] (every
//!   [`USER_BUCKET_SWEEP`]) drops those that have refilled completely, which
//!   a fresh bucket would equal, so a user gains nothing by reconnecting and
//!   the table holds only users who sent lately.
//! - **sends, without tokens**: the connection's own; there is no user to
//!   share one with (the per-address connection cap, [`crate::per_ip`],
//!   bounds how many buckets one client gets).
//! - **history and search** (reads of the store): the connection's own,
//!   one bucket for both; they are answered one at a time anyway, and the
//!   bucket bounds how hard one connection makes the store work.
//! - **joins**: always the connection's own. A gateway restart makes every
//!   tab rejoin all its rooms at once (up to 32 each), and the join burst is
//!   sized for one tab doing that; shared by a user's tabs it would refuse
//!   the resumes the chat promises to be seamless. One client's joins are
//!   bounded by its connections instead (`MAX_CONNECTIONS_PER_IP`).

use chat_proto::ErrorCode;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::frame::Refusal;
use crate::limits::{JOIN_BURST, JOIN_RATE, READ_BURST, READ_RATE, USER_BUCKET_SWEEP};

type UserBuckets = DefaultKeyedRateLimiter<Arc<str>>;

/// The limits connections get, from the config, and the users' shared
/// send buckets.
#[derive(Clone)]
pub(crate) struct Rates {
    send: Option<Quota>,
    join: Option<Quota>,
    read: Option<Quota>,
    /// `Some` when sends are limited.
    users: Option<Arc<UserBuckets>>,
}

impl std::fmt::Debug for Rates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rates")
            .field("send", &self.send)
            .field("join", &self.join)
            .field("read", &self.read)
            .field("users", &self.users.as_ref().map(|u| u.len()))
            .finish()
    }
}

impl Rates {
    /// `SEND_RATE` messages per second with bursts of `SEND_BURST`; either 0
    /// turns the send limit off. Joins and reads are always limited.
    pub(crate) fn new(send_rate: u32, send_burst: u32) -> Self {
        let send = quota(send_rate, send_burst);
        Self {
            send,
            join: quota(JOIN_RATE, JOIN_BURST),
            read: quota(READ_RATE, READ_BURST),
            users: send.map(|q| Arc::new(RateLimiter::keyed(q))),
        }
    }

    /// The buckets of one new connection: `user` (a token's `sub`) sends
    /// from that user's shared bucket, a connection without one from its own.
    pub(crate) fn for_connection(&self, user: Option<&str>) -> Limits {
        let own = |q: Option<Quota>| q.map(|q| Bucket::Connection(Arc::new(RateLimiter::direct(q))));
        let send = match (&self.users, user) {
            (Some(users), Some(user)) => Some(Bucket::User { users: Arc::clone(users), user: Arc::from(user) }),
            _ => own(self.send),
        };
        Limits { send, join: own(self.join), read: own(self.read) }
    }

    /// Forgets the users whose bucket is full again (what a new one would
    /// be), and the room they took.
    pub(crate) fn sweep(&self) {
        if let Some(users) = &self.users {
            users.retain_recent();
            users.shrink_to_fit();
        }
    }

    /// Sweeps every [`USER_BUCKET_SWEEP`] until `stop`.
    pub(crate) async fn keep_swept(self, stop: CancellationToken) {
        let mut every = tokio::time::interval(USER_BUCKET_SWEEP);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => self.sweep(),
            }
        }
    }

    /// Users with a send bucket kept now.
    #[cfg(test)]
    fn users_kept(&self) -> usize {
        self.users.as_ref().map_or(0, |u| u.len())
    }
}

fn quota(rate: u32, burst: u32) -> Option<Quota> {
    Some(Quota::per_second(NonZeroU32::new(rate)?).allow_burst(NonZeroU32::new(burst)?))
}

/// A bucket a connection takes from.
#[derive(Debug, Clone)]
enum Bucket {
    Connection(Arc<DefaultDirectRateLimiter>),
    User { users: Arc<UserBuckets>, user: Arc<str> },
}

impl Bucket {
    fn check(&self) -> Result<(), NotUntil<<DefaultClock as Clock>::Instant>> {
        match self {
            Self::Connection(limiter) => limiter.check(),
            Self::User { users, user } => users.check_key(user),
        }
    }

    /// Whose sends the refusal counts, for its message.
    fn whose(&self) -> &'static str {
        match self {
            Self::Connection(_) => "this connection",
            Self::User { .. } => "your account (all your connections to this gateway share one limit)",
        }
    }
}

/// One connection's buckets.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    send: Option<Bucket>,
    join: Option<Bucket>,
    read: Option<Bucket>,
}

impl Limits {
    /// No limits at all.
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self { send: None, join: None, read: None }
    }

    /// Takes one message from the send bucket, or says when to try again.
    pub(crate) fn send(&self, room: &str) -> Result<(), Refusal> {
        take(self.send.as_ref(), room, "messages")
    }

    /// Takes one join from the join bucket, or says when to try again.
    pub(crate) fn join(&self, room: &str) -> Result<(), Refusal> {
        take(self.join.as_ref(), room, "joins")
    }

    /// Takes one `history` or `search` from the read bucket, or says when
    /// to try again.
    pub(crate) fn read(&self, room: &str) -> Result<(), Refusal> {
        take(self.read.as_ref(), room, "history and search requests")
    }
}

fn take(bucket: Option<&Bucket>, room: &str, what: &str) -> Result<(), Refusal> {
    let Some(bucket) = bucket else { return Ok(()) };
    bucket.check().map_err(|not_until| {
        let wait: Duration = not_until.wait_time_from(DefaultClock::default().now());
        // Rounded up, so a client that waits exactly this long gets through.
        let ms = u64::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u64::MAX).max(1);
        Refusal::new(
            ErrorCode::RateLimited,
            format!(
                "too many {what} from {}: wait {ms} ms before sending again; this one was not sent",
                bucket.whose()
            ),
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
        let limits = Rates::new(1, 3).for_connection(None);
        for i in 0..3 {
            assert!(limits.send("general").is_ok(), "message {i} is within the burst");
        }
        let refusal = limits.send("general").expect_err("over the burst");
        assert_eq!(refusal.code, ErrorCode::RateLimited);
        assert_eq!(refusal.room.as_deref(), Some("general"));
        assert!(refusal.message.contains("this connection"), "{}", refusal.message);
        let wait = refusal.retry_after_ms.expect("says how long to wait");
        assert!((1..=1000).contains(&wait), "{wait} ms");
    }

    #[test]
    fn zero_turns_the_send_limit_off_but_not_the_join_limit() {
        for (rate, burst) in [(0, 20), (10, 0)] {
            let limits = Rates::new(rate, burst).for_connection(Some("u1"));
            assert!((0..10_000).all(|_| limits.send("r").is_ok()), "SEND_RATE={rate} SEND_BURST={burst}");
        }
        let limits = Rates::new(0, 0).for_connection(None);
        assert!((0..JOIN_BURST).all(|_| limits.join("r").is_ok()));
        assert_eq!(limits.join("r").map_err(|r| r.code), Err(ErrorCode::RateLimited));
    }

    #[test]
    fn one_users_connections_share_a_send_bucket_and_others_have_their_own() {
        let rates = Rates::new(1, 4);
        let (tab1, tab2) = (rates.for_connection(Some("ada")), rates.for_connection(Some("ada")));
        for (i, tab) in [&tab1, &tab2, &tab1, &tab2].into_iter().enumerate() {
            assert!(tab.send("r").is_ok(), "message {i} of ada's burst of 4");
        }
        let refusal = tab2.send("r").expect_err("ada's fifth, from either tab");
        assert!(refusal.message.contains("your account"), "{}", refusal.message);
        assert!(tab1.send("r").is_err());
        let bob = rates.for_connection(Some("bob"));
        assert!((0..4).all(|_| bob.send("r").is_ok()), "bob's burst is his own");
        // Connections without a user keep a bucket each.
        let (anon1, anon2) = (rates.for_connection(None), rates.for_connection(None));
        assert!((0..4).all(|_| anon1.send("r").is_ok()));
        assert!((0..4).all(|_| anon2.send("r").is_ok()));
        // Joins stay per connection, even for one user.
        assert!((0..JOIN_BURST).all(|_| tab1.join("r").is_ok()));
        assert!(tab2.join("r").is_ok(), "ada's other tab has its own joins");
    }

    #[test]
    fn reads_have_a_bucket_of_their_own_per_connection() {
        let rates = Rates::new(0, 0);
        let (tab1, tab2) = (rates.for_connection(Some("ada")), rates.for_connection(Some("ada")));
        assert!((0..READ_BURST).all(|_| tab1.read("r").is_ok()), "a burst of reads passes");
        let refusal = tab1.read("r").expect_err("over the burst");
        assert_eq!(refusal.code, ErrorCode::RateLimited);
        assert!(refusal.message.contains("history and search"), "{}", refusal.message);
        assert!(refusal.retry_after_ms.is_some_and(|ms| ms <= 1000 / u64::from(READ_RATE)));
        assert!(tab2.read("r").is_ok(), "another connection of the same user reads on");
        assert!(tab1.join("r").is_ok() && tab1.send("r").is_ok(), "reads take nothing from joins or sends");
    }

    #[test]
    fn a_sweep_forgets_users_whose_bucket_refilled_and_keeps_the_others() {
        // 1000/s: a bucket of 2 refills in 2 ms.
        let rates = Rates::new(1000, 2);
        for user in ["ada", "bob", "eve"] {
            assert!(rates.for_connection(Some(user)).send("r").is_ok());
        }
        assert_eq!(rates.users_kept(), 3);
        std::thread::sleep(Duration::from_millis(20));
        rates.sweep();
        assert_eq!(rates.users_kept(), 0, "refilled buckets are forgotten");

        let slow = Rates::new(1, 2);
        let ada = slow.for_connection(Some("ada"));
        assert!(ada.send("r").is_ok() && ada.send("r").is_ok());
        slow.sweep();
        assert_eq!(slow.users_kept(), 1, "an emptied bucket is kept");
        let reconnected = slow.for_connection(Some("ada"));
        assert!(reconnected.send("r").is_err(), "a new connection does not bring a new bucket");
    }
}
