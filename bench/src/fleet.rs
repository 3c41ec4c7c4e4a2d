//! Many browsers in rooms, and one measured step of traffic through them.
//!
//! Connecting: every browser connects and joins, at most `concurrency` at a
//! time (a connect holds its slot until `joined`); what each got is kept in a
//! [`JoinReport`]. Browser `k` of room `r` goes to gateway `(r + k) mod n`
//! unless the plan pins it.
//!
//! A step: each sender writes its messages at a paced rate for a fixed time
//! (due times on a fixed schedule; whatever is due is fed and flushed as one
//! batch, so a rate above the timer's resolution is kept), then the step
//! drains until every live member has every message or the drain time ends.
//! CPU is sampled over the sending time only. Every browser that was joined
//! and open when the step began is expected to receive every message its
//! room's senders wrote in it; the difference is lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, JoinOutcome, SeenCell, Shared, Writer};
use crate::procstat::{self, CpuShare, Watched};

/// One browser to start.
#[derive(Debug, Clone)]
pub struct Member {
    pub room: usize,
    /// Index into the URLs.
    pub gateway: usize,
    /// Its index among its room's senders, if it sends.
    pub sender: Option<u32>,
}

/// Rooms of `members` browsers, the first `senders` of each sending, spread
/// over `gateways` (or all on gateway 0 when `one_gateway`).
pub fn plan(rooms: usize, members: usize, senders: usize, gateways: usize, one_gateway: bool) -> Vec<Member> {
    let mut plan = Vec::with_capacity(rooms * members);
    for room in 0..rooms {
        for k in 0..members {
            let gateway = if one_gateway { 0 } else { (room + k) % gateways.max(1) };
            plan.push(Member { room, gateway, sender: (k < senders).then_some(k as u32) });
        }
    }
    plan
}

/// What the connect-and-join phase gave.
#[derive(Debug, Default)]
pub struct JoinReport {
    /// First connect started to last `joined`.
    pub elapsed: Duration,
    /// Connect-to-`joined` of each browser that got in, µs, sorted.
    pub join_us: Vec<u32>,
    pub joined: usize,
    /// `error` codes that answered a join.
    pub refused: BTreeMap<String, usize>,
    /// Close codes received instead of `joined`.
    pub closed: BTreeMap<u16, usize>,
    /// Could not connect at all (first error kept as an example).
    pub failed: usize,
    pub failed_example: Option<String>,
    /// No answer within the join timeout.
    pub timed_out: usize,
    /// Connections the kernel dropped meanwhile for a full accept queue.
    pub listen_overflows: Option<u64>,
}

pub struct Conn {
    pub room: usize,
    pub seen: SeenCell,
    pub joined: bool,
    task: tokio::task::JoinHandle<()>,
}

pub struct Sender {
    pub room: usize,
    pub index: u32,
    writer: Arc<tokio::sync::Mutex<Writer>>,
}

pub struct Fleet {
    pub shared: Arc<Shared>,
    pub rooms: Vec<Arc<str>>,
    pub conns: Vec<Conn>,
    pub senders: Vec<Sender>,
    pub joins: JoinReport,
    next_step: usize,
}

/// What one step measured.
#[derive(Debug, Clone, Default)]
pub struct StepResult {
    /// Messages the senders wrote.
    pub sent: u64,
    /// Deliveries owed: messages × members open at the start.
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Browsers closed with 4008 (slow consumer) during the step.
    pub cut_off: usize,
    /// Browsers closed any other way during the step.
    pub closed_other: usize,
    /// Sorted send-to-receive latencies, µs.
    pub latencies_us: Vec<u32>,
    /// Seconds the senders took to write their messages.
    pub send_secs: f64,
    /// Seconds from the first send to the last arrival.
    pub last_arrival_secs: f64,
    /// Messages that came back to their own sender.
    pub echoed: u64,
    /// Messages that reached every member open at the start.
    pub delivered_to_all: u64,
    pub cpu: CpuShare,
}

impl StepResult {
    pub fn delivered_per_sec(&self) -> f64 {
        self.received as f64 / self.last_arrival_secs.max(1e-3)
    }
}

impl Fleet {
    /// Connects and joins everyone in `plan`; returns when all are joined,
    /// refused, closed, or out of time.
    pub async fn connect(urls: &[String], plan: &[Member], concurrency: usize, timeout: Duration) -> Self {
        let shared = Shared::new();
        let rooms_n = plan.iter().map(|m| m.room + 1).max().unwrap_or(0);
        let run = std::process::id();
        let rooms: Vec<Arc<str>> = (0..rooms_n).map(|r| Arc::from(format!("b{run}r{r}"))).collect();
        let slots = Arc::new(Semaphore::new(concurrency.max(1)));
        let overflows_before = procstat::listen_overflows();
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut pending = Vec::with_capacity(plan.len());
        for (i, member) in plan.iter().enumerate() {
            let seen = SeenCell::default();
            client::lock(&seen).sender_index = member.sender;
            let url = urls[member.gateway % urls.len()].clone();
            let room = Arc::clone(&rooms[member.room]);
            let (slots, shared, seen2) = (Arc::clone(&slots), Arc::clone(&shared), Arc::clone(&seen));
            let attempt = tokio::spawn(async move {
                let Ok(Ok(_slot)) = tokio::time::timeout_at(deadline, slots.acquire_owned()).await else {
                    return (None, None);
                };
                let (task, outcome) = client::spawn(url, room, format!("u{i}"), seen2, shared);
                let outcome = tokio::time::timeout_at(deadline, outcome).await.ok().and_then(Result::ok);
                (Some(task), outcome)
            });
            pending.push((member.clone(), seen, attempt));
        }
        let mut joins = JoinReport::default();
        let mut conns = Vec::with_capacity(plan.len());
        let mut senders = Vec::new();
        for (member, seen, attempt) in pending {
            let Ok((task, outcome)) = attempt.await else { continue };
            let mut joined = false;
            match outcome {
                Some(JoinOutcome::Joined(writer)) => {
                    joined = true;
                    joins.joined += 1;
                    if let Some(index) = member.sender {
                        senders.push(Sender {
                            room: member.room,
                            index,
                            writer: Arc::new(tokio::sync::Mutex::new(writer)),
                        });
                    }
                }
                Some(JoinOutcome::Refused(code)) => *joins.refused.entry(code).or_default() += 1,
                Some(JoinOutcome::Closed(code)) => *joins.closed.entry(code).or_default() += 1,
                Some(JoinOutcome::Failed(e)) => {
                    joins.failed += 1;
                    joins.failed_example.get_or_insert(e);
                }
                None => joins.timed_out += 1,
            }
            if let Some(task) = task {
                conns.push(Conn { room: member.room, seen, joined, task });
            }
        }
        joins.elapsed = started.elapsed();
        joins.listen_overflows =
            overflows_before.zip(procstat::listen_overflows()).map(|(before, after)| after.saturating_sub(before));
        joins.join_us = conns
            .iter()
            .filter(|c| c.joined)
            .filter_map(|c| client::lock(&c.seen).join_time)
            .map(|d| d.as_micros().min(u128::from(u32::MAX)) as u32)
            .collect();
        joins.join_us.sort_unstable();
        Self { shared, rooms, conns, senders, joins, next_step: 0 }
    }

    /// Frames of each type received by all browsers so far.
    pub fn frame_counts(&self) -> (BTreeMap<String, u64>, Vec<u64>) {
        let mut by_type = BTreeMap::new();
        let mut per_member = Vec::with_capacity(self.conns.len());
        for conn in &self.conns {
            let seen = client::lock(&conn.seen);
            let mut total = 0;
            for (kind, n) in &seen.frames {
                *by_type.entry(kind.to_string()).or_default() += n;
                total += n;
            }
            per_member.push(total);
        }
        (by_type, per_member)
    }

    /// One step: each sender posts `per_sender_rate` messages/s for
    /// `duration` (or `count` messages, whichever is first), then the step
    /// drains for at most `drain`. CPU of `procs` over the sending time.
    pub async fn step(
        &mut self,
        per_sender_rate: f64,
        duration: Duration,
        count: Option<u64>,
        drain: Duration,
        procs: &[Watched],
    ) -> StepResult {
        let step = self.next_step;
        self.next_step += 1;
        self.shared.step.store(step, Ordering::Relaxed);
        self.shared.delivered.store(0, Ordering::Relaxed);

        let open: Vec<bool> = self.conns.iter().map(|c| c.joined && client::lock(&c.seen).closed.is_none()).collect();
        let mut open_per_room = vec![0u64; self.rooms.len()];
        for (conn, open) in self.conns.iter().zip(&open) {
            open_per_room[conn.room] += u64::from(*open);
        }

        let per_sender = count.unwrap_or((per_sender_rate * duration.as_secs_f64()).round() as u64);
        let cpu_start = procstat::sample(procs);
        let started = Instant::now();
        let start_us = self.shared.now_us();
        let give_up = tokio::time::Instant::now() + duration + drain;
        let mut tasks = Vec::new();
        for sender in &self.senders {
            let writer = Arc::clone(&sender.writer);
            let room = Arc::clone(&self.rooms[sender.room]);
            let (shared, index) = (Arc::clone(&self.shared), sender.index);
            let written = Arc::new(AtomicU64::new(0));
            let counter = Arc::clone(&written);
            let task = tokio::spawn(async move {
                let mut writer = writer.lock().await;
                let sending =
                    send_paced(&mut writer, &room, &shared, step, index, per_sender_rate, per_sender, &counter);
                let _ = tokio::time::timeout_at(give_up, sending).await;
            });
            tasks.push((sender.room, written, task));
        }
        let mut sent_per_room = vec![0u64; self.rooms.len()];
        for (room, written, task) in tasks {
            let _ = task.await;
            sent_per_room[room] += written.load(Ordering::Relaxed);
        }
        let send_secs = started.elapsed().as_secs_f64();
        let cpu = procstat::share(procs, &cpu_start, &procstat::sample(procs));

        let expected: u64 = sent_per_room.iter().zip(&open_per_room).map(|(s, o)| s * o).sum();
        let drain_until = Instant::now() + drain;
        while self.shared.delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Let any duplicate behind the last first arrival show up.
        tokio::time::sleep(Duration::from_millis(50)).await;

        let mut result =
            StepResult { sent: sent_per_room.iter().sum(), expected, send_secs, cpu, ..Default::default() };
        let mut last_at_us = start_us;
        let mut room_bits: Vec<Option<Vec<Vec<u64>>>> = vec![None; self.rooms.len()];
        for (conn, open) in self.conns.iter().zip(&open) {
            let mut seen = client::lock(&conn.seen);
            if seen.closed_in_step == Some(step) {
                if seen.closed == Some(4008) { result.cut_off += 1 } else { result.closed_other += 1 }
            }
            if !open {
                continue;
            }
            let got = seen.step(step).cloned().unwrap_or_default();
            result.received += got.received;
            result.lost += sent_per_room[conn.room].saturating_sub(got.received);
            result.duplicates += got.duplicates;
            result.out_of_order += got.out_of_order;
            result.echoed += got.own_echoes;
            result.latencies_us.extend_from_slice(&got.latencies_us);
            last_at_us = last_at_us.max(got.last_at_us);
            // Messages every member has: the AND of all their bitsets.
            let all = room_bits[conn.room].get_or_insert_with(|| got.bits.clone());
            for (s, bits) in all.iter_mut().enumerate() {
                let theirs = got.bits.get(s).map(Vec::as_slice).unwrap_or_default();
                for (w, word) in bits.iter_mut().enumerate() {
                    *word &= theirs.get(w).copied().unwrap_or(0);
                }
            }
        }
        result.delivered_to_all =
            room_bits.iter().flatten().flatten().flatten().map(|w| u64::from(w.count_ones())).sum();
        result.last_arrival_secs = (last_at_us - start_us) as f64 / 1e6;
        result.latencies_us.sort_unstable();
        result
    }

    /// Closes every browser (aborting their readers).
    pub fn close(self) {
        for conn in self.conns {
            conn.task.abort();
        }
    }
}

/// Writes `count` messages at `rate` per second: message `n` is due at
/// `n / rate` s after the start; everything due is fed, then flushed once.
#[allow(clippy::too_many_arguments)]
async fn send_paced(
    writer: &mut Writer,
    room: &str,
    shared: &Shared,
    step: usize,
    sender: u32,
    rate: f64,
    count: u64,
    written: &AtomicU64,
) {
    let start = tokio::time::Instant::now();
    let mut n = 0;
    while n < count {
        let due = start + Duration::from_secs_f64(n as f64 / rate.max(1e-3));
        tokio::time::sleep_until(due).await;
        let due_now = ((start.elapsed().as_secs_f64() * rate) as u64 + 1).clamp(n + 1, count);
        while n < due_now {
            let frame = client::bench_message(room, step, sender, n, shared.now_us());
            if writer.feed(Message::text(frame)).await.is_err() {
                return;
            }
            n += 1;
            written.store(n, Ordering::Relaxed);
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
}
