//! CPU time and resident memory of the processes under test, read from
//! `/proc`.
//!
//! CPU share: `utime + stime` (fields 14 and 15 of `/proc/PID/stat`, in
//! clock ticks of 1/100 s — Linux reports them in `USER_HZ`, which is 100)
//! sampled at the start and end of an interval; the difference divided by
//! the interval is the share of one core (100% = one core busy all along; on
//! this 2-core box the sum over all processes tops out at 200%). The bench's
//! own share is read from `/proc/self/stat` the same way.

use std::time::Instant;

/// Linux exports CPU times in /proc in USER_HZ, fixed at 100 per second.
const TICKS_PER_SEC: f64 = 100.0;

/// A process whose CPU and memory the bench reads.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Short name for tables: `redis`, `rs1`, `gw2`, `floor`, `bench`.
    pub name: String,
    /// `None`: this process (the bench's own clients).
    pub pid: Option<u32>,
}

impl Watched {
    pub fn bench() -> Self {
        Self { name: "bench".into(), pid: None }
    }

    fn path(&self, file: &str) -> String {
        match self.pid {
            Some(pid) => format!("/proc/{pid}/{file}"),
            None => format!("/proc/self/{file}"),
        }
    }

    /// utime + stime in ticks, or `None` once the process is gone.
    pub fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(self.path("stat")).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces.
        let after_name = &stat[stat.rfind(')')? + 1..];
        let mut fields = after_name.split_ascii_whitespace();
        // After the name: state is field 3, so utime (14) is the 12th here.
        let utime: u64 = fields.nth(11)?.parse().ok()?;
        let stime: u64 = fields.next()?.parse().ok()?;
        Some(utime + stime)
    }

    /// Resident set size in KiB (`VmRSS` of `/proc/PID/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(self.path("status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_ascii_whitespace().nth(1)?.parse().ok()
    }
}

/// CPU ticks of several processes at one instant.
#[derive(Debug, Clone)]
pub struct CpuSample {
    at: Instant,
    ticks: Vec<Option<u64>>,
}

/// Share of one core per process over an interval, in table order.
#[derive(Debug, Clone, Default)]
pub struct CpuShare(pub Vec<(String, f64)>);

pub fn sample(procs: &[Watched]) -> CpuSample {
    CpuSample { at: Instant::now(), ticks: procs.iter().map(Watched::cpu_ticks).collect() }
}

pub fn share(procs: &[Watched], start: &CpuSample, end: &CpuSample) -> CpuShare {
    let secs = end.at.duration_since(start.at).as_secs_f64().max(1e-3);
    CpuShare(
        procs
            .iter()
            .zip(start.ticks.iter().zip(&end.ticks))
            .map(|(p, (a, b))| {
                let pct = match (a, b) {
                    (Some(a), Some(b)) => 100.0 * b.saturating_sub(*a) as f64 / TICKS_PER_SEC / secs,
                    _ => f64::NAN,
                };
                (p.name.clone(), pct)
            })
            .collect(),
    )
}

impl std::fmt::Display for CpuShare {
    /// `redis 3 | rs1 4 rs2 5 | gw1 30 …`: a bar between tiers (name prefixes).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tier = |name: &str| name.trim_end_matches(|c: char| c.is_ascii_digit()).to_owned();
        let mut last_tier = None;
        for (i, (name, pct)) in self.0.iter().enumerate() {
            let this = tier(name);
            if i > 0 {
                f.write_str(if last_tier.as_deref() == Some(this.as_str()) { " " } else { " | " })?;
            }
            write!(f, "{name} {pct:.0}")?;
            last_tier = Some(this);
        }
        Ok(())
    }
}

/// `TcpExt: ListenOverflows` from `/proc/net/netstat`: connections the kernel
/// dropped because a listener's accept queue was full (the client retries
/// its SYN after a second). Machine-wide.
pub fn listen_overflows() -> Option<u64> {
    let netstat = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_ascii_whitespace().position(|n| n == "ListenOverflows")?;
    values.split_ascii_whitespace().nth(i)?.parse().ok()
}
