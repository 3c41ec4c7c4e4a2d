//! One-busy-room mode (`--busy-room`): one room of `--busy-members` browsers
//! spread over the gateways, `--busy-senders` of them sending, offered a
//! rising message rate step by step. A step is carried when every message
//! came back to its sender (the echo is the acknowledgement) and reached
//! every member, the senders wrote at least 95% of the offered rate, and
//! messages reached everyone at no less than 90% of it (a room that only
//! catches up in the drain is falling behind); stepping stops at the first
//! step that is not carried. Reports the most messages/s
//! the room carried.
//!
//! With the store on (the default here; `--store off|both`), each step's
//! peak archive lag is read from the room-services' metrics too, and it
//! reports the most messages/s the room carried with the lag staying under
//! [`ARCHIVED_WITHIN`]: how fast one room's messages reach PostgreSQL.

use std::time::Duration;

use crate::archive_lag::LagWatch;
use crate::fleet::{self, Fleet};
use crate::stats::{ms, percentile_ms};
use crate::topology::{self, StoreMode};
use crate::{Args, report};

const SETTLE: Duration = Duration::from_secs(1);
/// The archive lag a step may peak at and still count as archived.
const ARCHIVED_WITHIN: f64 = 1.0;

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let (members, senders) = (args.busy_members.max(1), args.busy_senders.clamp(1, args.busy_members.max(1)));
    println!(
        "busy room: 1 room x {members} browsers, {senders} senders, {} s steps, offered messages/s: {:?}",
        args.step_secs, args.busy_rates
    );
    for kind in topology::sides(args, StoreMode::On) {
        let deployment = topology::start(kind, args, members).await?;
        let label = deployment.label();
        let plan = fleet::plan(1, members, senders, deployment.urls.len(), false);
        let concurrency = args.connect_concurrency.unwrap_or(200);
        let mut fleet =
            Fleet::connect(&deployment.urls, &plan, concurrency, Duration::from_secs_f64(args.join_timeout_secs)).await;
        report::joins(label, &fleet.joins, members);
        let procs = deployment.watched();
        let watch = deployment.database_url().map(|_| LagWatch::start(&deployment.room_services));
        tokio::time::sleep(SETTLE).await;
        println!(
            "{:>9} {:>9} {:>10} {:>10} {:>12} {:>8} {:>8} {:>8} {:>5} {:>12}  CPU % of one core",
            "offered",
            "sent/s",
            "acked/s",
            "to all/s",
            "deliveries/s",
            "p50 ms",
            "p99 ms",
            "lost",
            "4008",
            "lag msgs/s"
        );
        let (mut best, mut best_archived) = (None, None);
        for &rate in &args.busy_rates {
            let secs = args.step_secs;
            if let Some(watch) = &watch {
                watch.take();
            }
            let r = fleet
                .step(
                    rate as f64 / senders as f64,
                    Duration::from_secs_f64(secs),
                    None,
                    Duration::from_secs_f64(args.drain_secs),
                    &procs,
                )
                .await;
            let span = r.last_arrival_secs.max(r.send_secs).max(1e-3);
            let carried = r.sent > 0
                && r.echoed == r.sent
                && r.delivered_to_all == r.sent
                && r.sent as f64 >= 0.95 * rate as f64 * secs
                && r.delivered_to_all as f64 / span >= 0.9 * rate as f64;
            let lag = watch.as_ref().map(LagWatch::take);
            // Under a second behind by either gauge: the room-service's
            // seconds gauge is set after each write and does not see what
            // waits on its channel, so the backlog must also be under one
            // second of the offered rate.
            let archived = lag.is_some_and(|lag| {
                lag.scrapes > 0 && lag.seconds < ARCHIVED_WITHIN && lag.messages < rate as f64 * ARCHIVED_WITHIN
            });
            println!(
                "{:>9} {:>9.0} {:>10.0} {:>10.0} {:>12.0} {:>8} {:>8} {:>8} {:>5} {:>12}  {}{}",
                rate,
                r.sent as f64 / r.send_secs.max(1e-3),
                r.echoed as f64 / span,
                r.delivered_to_all as f64 / span,
                r.delivered_per_sec(),
                ms(percentile_ms(&r.latencies_us, 50.0)),
                ms(percentile_ms(&r.latencies_us, 99.0)),
                r.lost,
                r.cut_off,
                lag.map_or_else(|| "-".to_owned(), |lag| lag.show()),
                r.cpu,
                match (carried, lag.is_some(), archived) {
                    (false, _, _) => "  <- not carried",
                    (true, true, false) => "  <- archive lag 1 s or more",
                    _ => "",
                }
            );
            if !carried {
                break;
            }
            best = Some((rate, r.delivered_to_all as f64 / span));
            if archived {
                best_archived = Some((rate, r.delivered_to_all as f64 / span));
            }
            tokio::time::sleep(SETTLE).await;
        }
        match best {
            Some((rate, per_sec)) => println!(
                "[{label}] one room carried {per_sec:.0} messages/s to all {members} members (offered {rate}/s, the last step carried)"
            ),
            None => println!("[{label}] the room did not carry even the first step"),
        }
        if watch.is_some() {
            match best_archived {
                Some((rate, per_sec)) => println!(
                    "[{label}] one room archived {per_sec:.0} messages/s into PostgreSQL with the lag under {ARCHIVED_WITHIN} s (offered {rate}/s)"
                ),
                None => println!("[{label}] no carried step kept the archive lag under {ARCHIVED_WITHIN} s"),
            }
        }
        drop(watch);
        fleet.close();
        deployment.stop().await;
    }
    Ok(())
}
