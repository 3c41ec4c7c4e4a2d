//! Whether a browser is still there: a ping every `PING_SECS`, and silence
//! for twice that ends the connection.
//!
//! A browser whose TCP connection stays open but that never answers (a lid
//! shut, a NAT that forgot the connection, a frozen tab) would otherwise stay
//! in its rooms for ever, kept present by the gateway's heartbeats. The
//! session tells [`Liveness`] whenever it reads anything (a frame or a pong:
//! browsers answer pings by themselves) and waits on [`Liveness::due`] next
//! to its other work. One timer serves both the next ping and the silence
//! deadline, and hearing from the browser only stores an instant: the timer
//! is moved when it fires, not on every frame.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// What is due.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Due {
    /// Time to ping the browser.
    Ping,
    /// Nothing heard for twice the ping interval: close the connection.
    Silent,
}

#[derive(Debug)]
pub(crate) struct Liveness {
    every: Duration,
    last_heard: Instant,
    next_ping: Instant,
    timer: Pin<Box<Sleep>>,
}

impl Liveness {
    pub(crate) fn new(every: Duration) -> Self {
        let now = Instant::now();
        let next_ping = now + every;
        Self { every, last_heard: now, next_ping, timer: Box::pin(tokio::time::sleep_until(next_ping)) }
    }

    /// Something came from the browser.
    pub(crate) fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    fn silent_at(&self) -> Instant {
        self.last_heard + self.every * 2
    }

    /// Resolves when a ping is due or the browser has been silent too long.
    /// Cancel-safe: dropping it loses nothing.
    pub(crate) async fn due(&mut self) -> Due {
        loop {
            self.timer.as_mut().await;
            let now = Instant::now();
            if now >= self.silent_at() {
                return Due::Silent;
            }
            let ping = now >= self.next_ping;
            if ping {
                self.next_ping = now + self.every;
            }
            let wake = self.next_ping.min(self.silent_at());
            self.timer.as_mut().reset(wake);
            if ping {
                return Due::Ping;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pings_every_interval_while_the_browser_answers() {
        let mut liveness = Liveness::new(Duration::from_secs(25));
        for _ in 0..5 {
            let started = Instant::now();
            assert_eq!(liveness.due().await, Due::Ping);
            assert_eq!(started.elapsed(), Duration::from_secs(25));
            liveness.heard(); // the pong
        }
    }

    #[tokio::test(start_paused = true)]
    async fn silence_for_twice_the_interval_ends_it() {
        let started = Instant::now();
        let mut liveness = Liveness::new(Duration::from_secs(25));
        assert_eq!(liveness.due().await, Due::Ping);
        assert_eq!(liveness.due().await, Due::Silent);
        assert_eq!(started.elapsed(), Duration::from_secs(50));
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_late_in_the_window_moves_the_deadline() {
        let started = Instant::now();
        let mut liveness = Liveness::new(Duration::from_secs(10));
        assert_eq!(liveness.due().await, Due::Ping); // t = 10
        tokio::time::sleep(Duration::from_secs(9)).await;
        liveness.heard(); // t = 19: silent from t = 39
        assert_eq!(liveness.due().await, Due::Ping); // t = 20
        assert_eq!(liveness.due().await, Due::Ping); // t = 30
        assert_eq!(liveness.due().await, Due::Silent);
        assert_eq!(started.elapsed(), Duration::from_secs(39));
    }
}
