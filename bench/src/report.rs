//! Tables: the sweep's rows, the topology with and without the store and
//! the floor side by side, and the lines every mode shares (joins, a step's
//! deliveries).

use crate::archive_lag::Lag;
use crate::fleet::{JoinReport, StepResult};
use crate::stats::{ms, percentile_ms, summary};

/// One sweep step of one side.
#[derive(Debug, Clone)]
pub struct SweepRow {
    pub side: &'static str,
    pub offered: u64,
    pub result: StepResult,
    /// The peak archive lag during the step, with the store on.
    pub lag: Option<Lag>,
}

pub fn sweep_header() -> String {
    format!(
        "{:>9} {:<9} {:>11} {:>8} {:>8} {:>8} {:>8} {:>5} {:>5} {:>5} {:>12}  CPU % of one core",
        "offered/s", "side", "delivered/s", "p50 ms", "p99 ms", "p99.9 ms", "lost", "dup", "ooo", "4008", "lag msgs/s"
    )
}

pub fn sweep_line(row: &SweepRow) -> String {
    let r = &row.result;
    let l = &r.latencies_us;
    format!(
        "{:>9} {:<9} {:>11.0} {:>8} {:>8} {:>8} {:>8} {:>5} {:>5} {:>5} {:>12}  {}",
        row.offered,
        row.side,
        r.delivered_per_sec(),
        ms(percentile_ms(l, 50.0)),
        ms(percentile_ms(l, 99.0)),
        ms(percentile_ms(l, 99.9)),
        r.lost,
        r.duplicates,
        r.out_of_order,
        r.cut_off,
        row.lag.map_or_else(|| "-".to_owned(), |lag| lag.show()),
        r.cpu
    )
}

/// The sweep's table: for each offered rate, the topology's row then the floor's.
pub fn sweep_table(rows: &[SweepRow]) -> String {
    let mut offered: Vec<u64> = rows.iter().map(|r| r.offered).collect();
    offered.dedup();
    let mut out = sweep_header();
    let mut seen = std::collections::BTreeSet::new();
    for rate in offered.into_iter().filter(|r| seen.insert(*r)) {
        for row in rows.iter().filter(|r| r.offered == rate) {
            out.push('\n');
            out.push_str(&sweep_line(row));
        }
    }
    out
}

pub fn joins(label: &str, j: &JoinReport, total: usize) {
    println!(
        "[{label}] {} of {total} joined in {:.2} s; connect→joined per browser: {}",
        j.joined,
        j.elapsed.as_secs_f64(),
        summary(&j.join_us)
    );
    if !j.refused.is_empty() {
        println!("[{label}]   refused (error code: browsers): {:?}", j.refused);
    }
    if !j.closed.is_empty() {
        println!("[{label}]   closed before joined (close code: browsers; 0 = no close frame): {:?}", j.closed);
    }
    if j.failed > 0 {
        println!("[{label}]   could not connect: {} (e.g. {})", j.failed, j.failed_example.as_deref().unwrap_or("?"));
    }
    if let Some(n) = j.listen_overflows.filter(|n| *n > 0) {
        println!("[{label}]   accept queue overflowed {n} times (SYNs dropped, those connects retried after 1 s)");
    }
    if j.timed_out > 0 {
        println!("[{label}]   no answer within the join timeout: {}", j.timed_out);
    }
}

/// A step of messages sent after a join phase: deliveries, losses, latency.
pub fn after_messages(label: &str, r: &StepResult) {
    println!(
        "[{label}] messages after: {} sent, {} of {} deliveries arrived ({} lost, {} dup, {} out of order, {} cut off 4008); {}",
        r.sent,
        r.received,
        r.expected,
        r.lost,
        r.duplicates,
        r.out_of_order,
        r.cut_off,
        summary(&r.latencies_us)
    );
}
