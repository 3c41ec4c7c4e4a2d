//! Join-storm mode (`--storm ROOMSxMEMBERS`): every browser connects and joins
//! one gateway at once (up to `--connect-concurrency`, default 1000, in
//! flight). Reports time to all joined and each browser's connect→`joined`
//! time, how many got in, were refused (by `error` code) or closed (by close
//! code, 4008 = slow consumer), and the frames each member received during
//! the storm, by `type` — whatever the presence frames look like, they are
//! counted, not interpreted. Then each room's sender posts a few messages and
//! the deliveries to all members are counted.

use std::time::Duration;

use crate::fleet::{self, Fleet};
use crate::topology;
use crate::{Args, report};

/// After the last join: time for the storm's presence traffic to arrive.
const SETTLE: Duration = Duration::from_secs(2);
/// Each sender's pace for the messages after.
const AFTER_RATE: f64 = 10.0;

pub async fn run(args: &Args, rooms: usize, members: usize) -> anyhow::Result<()> {
    let n = rooms * members;
    println!("storm: {rooms} rooms x {members} browsers ({n}) join one gateway at once");
    for kind in topology::sides(args, topology::StoreMode::Off) {
        let deployment = topology::start(kind, args, n).await?;
        let label = deployment.label();
        let plan = fleet::plan(rooms, members, 1, 1, true);
        let concurrency = args.connect_concurrency.unwrap_or(1000);
        let mut fleet =
            Fleet::connect(&deployment.urls[..1], &plan, concurrency, Duration::from_secs_f64(args.join_timeout_secs))
                .await;
        report::joins(label, &fleet.joins, n);
        tokio::time::sleep(SETTLE).await;

        let (by_type, mut per_member) = fleet.frame_counts();
        per_member.sort_unstable();
        let members_n = per_member.len().max(1) as f64;
        let total: u64 = per_member.iter().sum();
        let at = |p: f64| per_member.get(((per_member.len().max(1) - 1) as f64 * p) as usize).copied().unwrap_or(0);
        println!(
            "[{label}] frames per member during the storm: mean {:.1}, p50 {}, p99 {}, max {} ({total} in all)",
            total as f64 / members_n,
            at(0.5),
            at(0.99),
            at(1.0)
        );
        let breakdown: Vec<String> =
            by_type.iter().map(|(kind, n)| format!("{kind} {n} ({:.1}/member)", *n as f64 / members_n)).collect();
        println!("[{label}]   by type: {}", breakdown.join(", "));
        let (closed_4008, closed_other) =
            fleet.conns.iter().fold((0, 0), |(a, b), c| match crate::client::lock(&c.seen).closed {
                Some(4008) => (a + 1, b),
                Some(_) => (a, b + 1),
                None => (a, b),
            });
        println!("[{label}]   closed so far: {closed_4008} with 4008 (slow consumer), {closed_other} otherwise");

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
    }
    Ok(())
}
