//! The archive lag seen during a step: how far the room-services' copy
//! into PostgreSQL fell behind Redis.
//!
//! A task scrapes every room-service's `/metrics` (plain HTTP/1.1 on its
//! gRPC port) every [`EVERY`] and keeps the peak of the summed
//! `chat_archive_lag_messages` and of the largest `chat_archive_lag_seconds`
//! since the last [`LagWatch::take`]. The sweep and the busy room read the
//! peak after each step (its drain included) and reset it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How often the lag is read: often enough to see a peak of a second.
const EVERY: Duration = Duration::from_millis(200);
/// A scrape that takes longer than this is skipped (the room-service is
/// busy; the next one counts).
const SCRAPE_WITHIN: Duration = Duration::from_secs(2);
/// The most of a `/metrics` answer read (it is a few tens of KB).
const MAX_ANSWER: u64 = 4 << 20;

/// The peak lag over a stretch of time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lag {
    /// Messages not yet in PostgreSQL, summed over the room-services.
    pub messages: f64,
    /// Age of the oldest of them on any room-service, in seconds.
    pub seconds: f64,
    /// Scrapes that answered.
    pub scrapes: u64,
}

impl Lag {
    /// `messages/seconds` for a table: `-` when nothing was read.
    pub fn show(&self) -> String {
        if self.scrapes == 0 { "-".to_owned() } else { format!("{:.0}/{:.2}", self.messages, self.seconds) }
    }
}

/// Watches the lag of a set of room-services until dropped.
pub struct LagWatch {
    peak: Arc<Mutex<Lag>>,
    task: tokio::task::JoinHandle<()>,
}

impl LagWatch {
    /// Starts scraping `room_services` (`http://host:port` each).
    pub fn start(room_services: &[String]) -> Self {
        let addresses: Vec<String> = room_services
            .iter()
            .map(|url| url.trim_start_matches("http://").trim_end_matches('/').to_owned())
            .collect();
        let peak = Arc::new(Mutex::new(Lag::default()));
        let task = tokio::spawn({
            let peak = Arc::clone(&peak);
            async move {
                let mut ticks = tokio::time::interval(EVERY);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let (mut messages, mut seconds, mut answered) = (0.0, 0.0_f64, false);
                    for address in &addresses {
                        if let Ok(Ok(Some((m, s)))) = tokio::time::timeout(SCRAPE_WITHIN, scrape(address)).await {
                            messages += m;
                            seconds = seconds.max(s);
                            answered = true;
                        }
                    }
                    if answered {
                        let mut peak = peak.lock().unwrap_or_else(PoisonError::into_inner);
                        peak.messages = peak.messages.max(messages);
                        peak.seconds = peak.seconds.max(seconds);
                        peak.scrapes += 1;
                    }
                }
            }
        });
        Self { peak, task }
    }

    /// The peak since the last call, and a fresh start.
    pub fn take(&self) -> Lag {
        std::mem::take(&mut *self.peak.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for LagWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The two lag gauges of one room-service; `None` when it has no store
/// (no such lines).
async fn scrape(address: &str) -> std::io::Result<Option<(f64, f64)>> {
    let mut stream = TcpStream::connect(address).await?;
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.take(MAX_ANSWER).read_to_string(&mut answer).await?;
    Ok(gauges(&answer))
}

/// `chat_archive_lag_messages` and `chat_archive_lag_seconds` from a
/// Prometheus text page.
fn gauges(page: &str) -> Option<(f64, f64)> {
    // `name value` or `name{labels} value` (the room-services add a global
    // label).
    let value = |name: &str| {
        page.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?;
            if !rest.starts_with([' ', '{']) {
                return None;
            }
            rest.split_ascii_whitespace().last()?.parse::<f64>().ok()
        })
    };
    Some((value("chat_archive_lag_messages")?, value("chat_archive_lag_seconds")?))
}
