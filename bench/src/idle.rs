//! Memory and connect mode (`--idle N`): N browsers connect and join rooms of
//! 10, all on one gateway. Reports the time until all are joined (and each
//! browser's connect→`joined` time), the gateway's resident memory per
//! connection — VmRSS once the joins have settled minus VmRSS before the
//! first connect, divided by the browsers joined — and then the latency of a
//! few messages each room's sender posts right after.

use std::time::Duration;

use crate::fleet::{self, Fleet};
use crate::topology::{self, Kind};
use crate::{Args, report};

/// Rooms in this mode have this many members.
const ROOM_SIZE: usize = 10;
/// Time for presence traffic and allocator to settle before reading RSS.
const SETTLE: Duration = Duration::from_secs(1);
/// Each sender's pace for the messages after.
const AFTER_RATE: f64 = 10.0;

pub async fn run(args: &Args, n: usize) -> anyhow::Result<()> {
    println!(
        "idle: {n} browsers in rooms of {ROOM_SIZE} on one gateway, then {} messages per room",
        args.after_messages
    );
    for kind in topology::sides(args, topology::StoreMode::Off) {
        let deployment = topology::start(kind, args, n).await?;
        let label = deployment.label();
        let gateway = deployment.gateway_process(0).cloned();
        tokio::time::sleep(SETTLE).await;
        let before = gateway.as_ref().and_then(|g| g.rss_kib());

        let mut plan = fleet::plan(n.div_ceil(ROOM_SIZE), ROOM_SIZE, 1, 1, true);
        plan.truncate(n);
        let concurrency = args.connect_concurrency.unwrap_or(200);
        let mut fleet =
            Fleet::connect(&deployment.urls[..1], &plan, concurrency, Duration::from_secs_f64(args.join_timeout_secs))
                .await;
        report::joins(label, &fleet.joins, n);
        tokio::time::sleep(SETTLE).await;
        let after = gateway.as_ref().and_then(|g| g.rss_kib());
        let joined = fleet.joins.joined.max(1) as f64;
        match (before, after) {
            (Some(b), Some(a)) => println!(
                "[{label}] {} RSS {:.1} MiB before, {:.1} MiB after: {:.1} KiB per connection",
                gateway.as_ref().map_or("", |g| g.name.as_str()),
                b as f64 / 1024.0,
                a as f64 / 1024.0,
                (a as f64 - b as f64) / joined
            ),
            _ => println!("[{label}] gateway RSS: not readable (not started by the bench)"),
        }

        let procs = deployment.watched();
        let result = fleet
            .step(
                AFTER_RATE,
                Duration::from_secs_f64(args.after_messages as f64 / AFTER_RATE),
                Some(args.after_messages as u64),
                Duration::from_secs_f64(args.drain_secs),
                &procs,
            )
            .await;
        report::after_messages(label, &result);
        fleet.close();
        deployment.stop().await;
        if kind == Kind::Floor {
            println!("[floor] (no presence and no history in `joined`: the floor's memory is the transport's own)");
        }
    }
    Ok(())
}
