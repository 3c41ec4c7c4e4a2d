//! A gateway started as the bench starts it — xtask's scratch topology under
//! xtask's supervisor, the code `cargo xtask up` runs too — gets none of the
//! configuration a developer's shell exports: only what the plan sets, and
//! PATH, HOME and the like. The variables really are in the starting
//! process's environment (the test runs itself again with them, see
//! `chat_testkit::rerun`); what the gateway got is read from its
//! `/proc/<pid>/environ`.

use std::path::PathBuf;
use std::time::Duration;

use chat_testkit::rerun;
use tokio::sync::mpsc;
use xtask::plan::{self, Binaries};
use xtask::scratch::{self, Redis, Shape};
use xtask::supervise::{Output, Supervisor, Timing};

/// What a developer working on the chat might have exported.
const SHELL: [(&str, &str); 4] = [
    ("JWT_SECRET", "a-secret-from-the-shell"),
    ("REDIS_CLUSTER_URLS", "redis://127.0.0.1:1"),
    ("REDIS_HOST", "redis.from.the.shell"),
    ("PING_SECS", "1"),
];

#[tokio::test]
async fn a_gateway_started_as_the_bench_starts_it_gets_nothing_of_the_shells_configuration() {
    if !rerun::is_child() {
        rerun::with_env(
            "shell::a_gateway_started_as_the_bench_starts_it_gets_nothing_of_the_shells_configuration",
            &SHELL,
        )
        .await;
        return;
    }
    for (name, value) in SHELL {
        assert_eq!(std::env::var(name).as_deref(), Ok(value), "{name} is in the starting process's environment");
    }
    let dir = std::env::temp_dir().join(format!("chat-test-shell-gateway-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch dir");
    let binaries = Binaries {
        gateway: PathBuf::from(env!("CARGO_BIN_EXE_gateway")),
        // Not started: this crate builds no room-service binary (the
        // room-service's own test checks it the same way).
        room_service: PathBuf::from("room-service"),
    };
    let shape = Shape { gateways: 1, room_services: 1, redis: Redis::InProcess };
    let mut plan = scratch::plan(&shape, &binaries, &dir).expect("a scratch plan");
    plan.tiers.retain(|tier| tier.role == plan::GATEWAYS);

    let timing = Timing { startup: Duration::from_secs(30), grace: Duration::from_secs(5) };
    let mut supervisor = Supervisor::with_output(&plan, Output::LogFiles(dir.clone()), timing);
    let (_no_signals, mut interrupts) = mpsc::channel(1);
    let stop = supervisor.start(&plan, &mut interrupts).await.expect("start the gateway");
    let environment = supervisor.pids().first().and_then(|(_, pid)| *pid).map(rerun::environment_of);
    let log = supervisor.log_tail(&plan.tiers[0].processes[0].name, 20).unwrap_or_default();
    supervisor.stop(&mut interrupts).await;
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(stop, None, "the gateway did not come up; its log:\n{log}");
    let environment = environment.expect("the gateway's pid");
    for (name, _) in SHELL {
        assert!(!environment.contains_key(name), "{name} reached the gateway: {environment:?}");
    }
    assert!(environment.contains_key("PATH"), "the essentials still reach it: {environment:?}");
}
