//! Sweep mode (the default): rooms × members browsers spread over the
//! gateways, one sender per room, and a step per offered rate; the same run
//! against the topology with the store (a scratch PostgreSQL the
//! room-services archive into), without it, and then the floor, printed
//! side by side, with the peak archive lag of each step and the
//! latency-vs-throughput plot. `--store on|off` runs one of the two.
//!
//! An offered rate is in deliveries/s: every message is delivered to every
//! member of its room (the sender's echo included), so each room's sender
//! posts `offered / (rooms × members)` messages/s.

use std::time::Duration;

use crate::archive_lag::LagWatch;
use crate::fleet::{self, Fleet};
use crate::report::{self, SweepRow};
use crate::topology::{self, StoreMode};
use crate::{Args, svg};

/// Quiet time after joining and between steps, so presence traffic and the
/// previous step's tail do not land in the next step.
const SETTLE: Duration = Duration::from_millis(1000);

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let (rooms, members) = (args.rooms.max(1), args.members.max(1));
    println!(
        "sweep: {rooms} rooms x {members} browsers, one sender per room, {} s steps (drain up to {} s), offered deliveries/s: {:?}",
        args.step_secs, args.drain_secs, args.sweep
    );
    let mut rows = Vec::new();
    for kind in topology::sides(args, StoreMode::Both) {
        let deployment = topology::start(kind, args, rooms * members).await?;
        let side = deployment.label();
        let plan = fleet::plan(rooms, members, 1, deployment.urls.len(), false);
        let concurrency = args.connect_concurrency.unwrap_or(200);
        let mut fleet =
            Fleet::connect(&deployment.urls, &plan, concurrency, Duration::from_secs_f64(args.join_timeout_secs)).await;
        report::joins(deployment.label(), &fleet.joins, plan.len());
        let procs = deployment.watched();
        let lag = deployment.database_url().map(|_| LagWatch::start(&deployment.room_services));
        tokio::time::sleep(SETTLE).await;
        println!("{}", report::sweep_header());
        for &offered in &args.sweep {
            let per_room = offered as f64 / (rooms * members) as f64;
            // What came before (joins, the settle) belongs to no step.
            if let Some(lag) = &lag {
                lag.take();
            }
            let result = fleet
                .step(
                    per_room,
                    Duration::from_secs_f64(args.step_secs),
                    None,
                    Duration::from_secs_f64(args.drain_secs),
                    &procs,
                )
                .await;
            let row = SweepRow { side, offered, result, lag: lag.as_ref().map(LagWatch::take) };
            println!("{}", report::sweep_line(&row));
            rows.push(row);
            tokio::time::sleep(SETTLE).await;
        }
        drop(lag);
        fleet.close();
        deployment.stop().await;
    }
    println!("\n{}", report::sweep_table(&rows));
    if let Some(path) = &args.svg {
        let title = format!("{rooms} rooms x {members} browsers, one sender per room");
        std::fs::write(path, svg::plot(&rows, &title))?;
        println!("plot: {}", path.display());
    }
    Ok(())
}
