//! Scrollback mode (`--scrollback`): how long a History page takes from deep
//! in a big room's record.
//!
//! The topology starts with the store on; the room `scrollback` then gets
//! `--scrollback-rows` messages (1,000,000 by default) written straight into
//! PostgreSQL by one `INSERT … SELECT FROM generate_series` through `psql`
//! (server side, no round trip per row; the full-text index is built as it
//! goes), and Redis is told the room's last `seq` is the last of them (its
//! history holds none of them, so every page comes from PostgreSQL). Then
//! `--scrollback-pages` History RPCs of `--page-limit` messages each, at
//! random depths, one after another from one gRPC client, each checked to be
//! the whole, gap-free page just below its cursor: p50/p99/max in ms.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use chat_proto::v1::HistoryRequest;
use chat_proto::v1::room_service_client::RoomServiceClient;
use chat_testkit::postgres_server;
use tokio::process::Command;
use xtask::up::find_on_path;

use crate::Args;
use crate::stats::{ms, percentile_ms};
use crate::topology::{self, Kind};

/// The room the rows go into.
const ROOM: &str = "scrollback";
/// Its epoch, in the rows and in Redis.
const EPOCH: &str = "bench";
/// Pages read first and not counted (connections, caches).
const WARM_UP: usize = 50;

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let (rows, pages, limit) = (args.scrollback_rows, args.scrollback_pages, args.page_limit);
    ensure!(rows > u64::from(limit), "--scrollback-rows must be above --page-limit");
    println!("scrollback: a room of {rows} messages in PostgreSQL, {pages} History pages of {limit} at random depths");
    let deployment = topology::start(Kind::Topology { store: true, sync: false }, args, 10).await?;
    let outcome = measure(&deployment, rows, pages, limit).await;
    deployment.stop().await;
    outcome
}

async fn measure(deployment: &topology::Deployment, rows: u64, pages: usize, limit: u32) -> anyhow::Result<()> {
    let url = deployment.database_url().context("the topology has no store")?;
    let Some(redis_port) = deployment.redis_port else {
        bail!("--scrollback runs on one Redis, not a Redis Cluster");
    };
    let started = Instant::now();
    fill(&url, rows).await?;
    println!("[scrollback] {rows} rows inserted and analyzed in {:.1} s", started.elapsed().as_secs_f64());
    set_last_seq(redis_port, rows).await?;

    let address = deployment.room_services.first().context("no room-service")?.clone();
    let mut client = RoomServiceClient::connect(address.clone())
        .await
        .with_context(|| format!("connecting to the room-service at {address}"))?;
    let mut random = Random::seeded();
    let mut latencies_us = Vec::with_capacity(pages);
    let started = Instant::now();
    for i in 0..WARM_UP + pages {
        // A cursor anywhere from just above the first page to the newest.
        let before_seq = u64::from(limit) + 1 + random.below(rows - u64::from(limit) + 1);
        let asked = Instant::now();
        let page = client
            .history(HistoryRequest { room: ROOM.to_owned(), limit, before_seq, ..Default::default() })
            .await
            .with_context(|| format!("History before_seq {before_seq}"))?
            .into_inner();
        let took = asked.elapsed();
        let seqs: Vec<u64> = page.events.iter().map(|e| e.seq).collect();
        let expected: Vec<u64> = (before_seq - u64::from(limit)..before_seq).collect();
        ensure!(seqs == expected, "History before_seq {before_seq} gave seqs {seqs:?}, expected {expected:?}");
        if i >= WARM_UP {
            latencies_us.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    println!(
        "[scrollback] {pages} pages of {limit} from {rows} rows: p50 {} ms  p99 {} ms  max {} ms  ({:.0} pages/s one at a time)",
        ms(percentile_ms(&latencies_us, 50.0)),
        ms(percentile_ms(&latencies_us, 99.0)),
        ms(percentile_ms(&latencies_us, 100.0)),
        (WARM_UP + pages) as f64 / elapsed.max(1e-3)
    );
    Ok(())
}

/// Writes seq 1..=rows of [`ROOM`] into the `messages` table the
/// room-services' migrations made, then refreshes the planner's statistics.
async fn fill(url: &str, rows: u64) -> anyhow::Result<()> {
    let sql = format!(
        "INSERT INTO messages (room, seq, epoch, ts_ms, member_id, username, body, client_id) \
         SELECT '{ROOM}', g, '{EPOCH}', 1700000000000 + g, 'm' || (g % 50), 'member ' || (g % 50), \
                'message number ' || g || ' of the scrollback bench, with a few words to index', 'c' || g \
         FROM generate_series(1, {rows}) AS g; \
         ANALYZE messages;"
    );
    let output = Command::new(psql()?)
        .arg(url)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", &sql])
        .output()
        .await
        .context("running psql")?;
    ensure!(output.status.success(), "psql failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    Ok(())
}

/// Tells Redis the room's last seq is `last` (and its epoch), as if it had
/// numbered those messages itself and then lost its history of them.
async fn set_last_seq(port: u16, last: u64) -> anyhow::Result<()> {
    let cli = find_on_path("redis-cli").context("redis-cli is not on PATH: apt-get install -y redis-tools")?;
    let output = Command::new(cli)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "MSET"])
        .args([format!("chat:{{{ROOM}}}:seq"), last.to_string(), format!("chat:{{{ROOM}}}:epoch"), EPOCH.to_owned()])
        .output()
        .await
        .context("running redis-cli")?;
    let said = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success() && said.trim() == "OK", "redis-cli MSET said {said:?}");
    Ok(())
}

/// `psql` next to `initdb` (the server's own version), else the one on PATH.
fn psql() -> anyhow::Result<PathBuf> {
    postgres_server::bin_dir()
        .map(|bin| bin.join("psql"))
        .filter(|psql| psql.is_file())
        .or_else(|| find_on_path("psql"))
        .context("psql is not installed: apt-get install -y postgresql-client")
}

/// xorshift64*: random enough for picking depths, no dependency.
struct Random(u64);

impl Random {
    fn seeded() -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or(Duration::ZERO);
        Self(u64::try_from(nanos.as_nanos() & u128::from(u64::MAX)).unwrap_or(1) | 1)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}
