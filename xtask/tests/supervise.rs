//! The supervisor against real child processes (`sh` scripts), with short
//! timings: start order, stop order, SIGKILL after the grace period or on a
//! second interrupt, and a child that ends or never listens.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use xtask::plan::{Inherit, Plan, Process, Tier};
use xtask::prefix::Style;
use xtask::supervise::{Stop, Supervisor, Timing};

const QUICK: Timing = Timing { startup: Duration::from_millis(500), grace: Duration::from_millis(500) };

/// A port that answers for as long as the listener lives.
fn listening() -> (TcpListener, u16) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

/// A scratch directory for one test's log file.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-test-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// A `sh` child called `name` running `script`, with `$NAME` and `$LOG` set.
fn sh(name: &str, script: &str, log: &Path, ready_port: u16) -> Process {
    Process {
        name: name.to_owned(),
        program: PathBuf::from("sh"),
        args: vec!["-c".to_owned(), script.to_owned()],
        env: BTreeMap::from([("NAME".to_owned(), name.to_owned()), ("LOG".to_owned(), log.display().to_string())]),
        inherit: Inherit::AllBut(Vec::new()),
        ready_port,
    }
}

/// Logs `up`, and on SIGTERM logs `stop` and exits 0.
const POLITE: &str = r#"trap 'echo "stop $NAME" >> "$LOG"; exit 0' TERM
echo "up $NAME" >> "$LOG"
while :; do sleep 0.05; done"#;

/// Logs `up` and ignores SIGTERM.
const STUBBORN: &str = r#"trap '' TERM
echo "up $NAME" >> "$LOG"
while :; do sleep 0.05; done"#;

fn plan(tiers: Vec<(&'static str, Vec<Process>)>) -> Plan {
    Plan {
        tiers: tiers.into_iter().map(|(role, processes)| Tier { role, processes, setup: None }).collect(),
        connect_host: "127.0.0.1".to_owned(),
        notes: Vec::new(),
    }
}

fn supervisor(plan: &Plan, timing: Timing) -> Supervisor {
    Supervisor::new(plan, Style { color: false, width: 8 }, timing)
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log).unwrap_or_default().lines().map(str::to_owned).collect()
}

/// Sends `signal` once `count` children have logged `up` (their trap is set).
fn interrupt_when_up(log: PathBuf, count: usize, tx: mpsc::Sender<&'static str>) {
    tokio::spawn(async move {
        for _ in 0..200 {
            if log_lines(&log).iter().filter(|l| l.starts_with("up ")).count() >= count {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tx.send("SIGINT").await.expect("supervisor listening");
    });
}

/// A free port, for a listener that opens later.
fn free_port() -> u16 {
    listening().1
}

/// Plays the part of each child's server: opens `ports[name]` once the
/// child `name` has logged `up`, so a tier counts as up only after its
/// children really started.
fn listen_when_up(log: PathBuf, ports: Vec<(&'static str, u16)>) {
    tokio::spawn(async move {
        let mut listeners = Vec::new();
        for _ in 0..500 {
            let lines = log_lines(&log);
            for (name, port) in &ports {
                let opened = listeners.iter().any(|(n, _)| n == name);
                if !opened && lines.contains(&format!("up {name}")) {
                    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, *port)).expect("bind");
                    listeners.push((*name, listener));
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}

#[tokio::test]
async fn tiers_start_in_order_and_an_interrupt_stops_the_last_started_first() {
    let dir = scratch("order");
    let log = dir.join("log");
    let (redis_port, rs_port, gw_port) = (free_port(), free_port(), free_port());
    let plan = plan(vec![
        ("redis", vec![sh("redis", POLITE, &log, redis_port)]),
        ("room-services", vec![sh("rs", POLITE, &log, rs_port)]),
        ("gateways", vec![sh("gw", POLITE, &log, gw_port)]),
    ]);
    let slow_start = Timing { startup: Duration::from_secs(5), ..QUICK };
    let mut supervisor = supervisor(&plan, slow_start);
    listen_when_up(log.clone(), vec![("redis", redis_port), ("rs", rs_port), ("gw", gw_port)]);
    let (tx, mut interrupts) = mpsc::channel(2);
    interrupt_when_up(log.clone(), 3, tx);

    let stop = supervisor.run(&plan, &mut interrupts).await.expect("run");
    supervisor.stop(&mut interrupts).await;

    assert_eq!(stop, Stop::Signal("SIGINT"));
    let lines = log_lines(&log);
    assert_eq!(lines[..3], ["up redis", "up rs", "up gw"], "started tier by tier: {lines:?}");
    assert_eq!(lines[3..], ["stop gw", "stop rs", "stop redis"], "stopped in reverse: {lines:?}");
    assert_eq!(
        supervisor.children(),
        [("redis", Some("exit code 0")), ("rs", Some("exit code 0")), ("gw", Some("exit code 0")),]
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_child_ignoring_sigterm_is_killed_after_the_grace_period() {
    let dir = scratch("grace");
    let log = dir.join("log");
    let (_gw, port) = listening();
    let plan = plan(vec![("gateways", vec![sh("gw", STUBBORN, &log, port)])]);
    let mut supervisor = supervisor(&plan, QUICK);
    let (tx, mut interrupts) = mpsc::channel(2);
    interrupt_when_up(log.clone(), 1, tx);

    supervisor.run(&plan, &mut interrupts).await.expect("run");
    let started = Instant::now();
    supervisor.stop(&mut interrupts).await;

    let took = started.elapsed();
    assert!(took >= QUICK.grace, "killed before the grace period: {took:?}");
    assert!(took < QUICK.grace + Duration::from_secs(3), "took {took:?}");
    assert_eq!(supervisor.children(), [("gw", Some("killed by SIGKILL"))]);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_second_interrupt_kills_at_once() {
    let dir = scratch("hurry");
    let log = dir.join("log");
    let (_gw, port) = listening();
    let plan = plan(vec![("gateways", vec![sh("gw", STUBBORN, &log, port)])]);
    let patient = Timing { grace: Duration::from_secs(60), ..QUICK };
    let mut supervisor = supervisor(&plan, patient);
    let (tx, mut interrupts) = mpsc::channel(2);
    interrupt_when_up(log.clone(), 1, tx.clone());

    supervisor.run(&plan, &mut interrupts).await.expect("run");
    let started = Instant::now();
    tx.send("SIGINT").await.expect("second interrupt");
    supervisor.stop(&mut interrupts).await;

    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(supervisor.children(), [("gw", Some("killed by SIGKILL"))]);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_child_that_ends_by_itself_is_named_and_the_rest_are_stopped() {
    let dir = scratch("ends");
    let log = dir.join("log");
    let (_rs, rs_port) = listening();
    let (_gw, gw_port) = listening();
    let plan = plan(vec![
        ("room-services", vec![sh("rs", "sleep 0.3; exit 3", &log, rs_port)]),
        ("gateways", vec![sh("gw", POLITE, &log, gw_port)]),
    ]);
    let mut supervisor = supervisor(&plan, QUICK);
    let (_tx, mut interrupts) = mpsc::channel(2);

    let stop = supervisor.run(&plan, &mut interrupts).await.expect("run");
    supervisor.stop(&mut interrupts).await;

    assert_eq!(stop, Stop::Exited { name: "rs".to_owned(), status: "exit code 3".to_owned() });
    assert_eq!(stop.to_string(), "rs exited unexpectedly (exit code 3)", "the message names the process");
    let children = supervisor.children();
    assert_eq!(children[0], ("rs", Some("exit code 3")));
    assert_eq!(children[1].0, "gw");
    assert!(children[1].1.is_some(), "gw still running: {children:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_child_that_never_opens_its_port_stops_the_start() {
    let dir = scratch("never");
    let log = dir.join("log");
    let (closed, port) = listening();
    drop(closed);
    let (_gw, gw_port) = listening();
    let plan = plan(vec![
        ("room-services", vec![sh("rs", "exec sleep 30", &log, port)]),
        ("gateways", vec![sh("gw", POLITE, &log, gw_port)]),
    ]);
    let mut supervisor = supervisor(&plan, QUICK);
    let (_tx, mut interrupts) = mpsc::channel(2);

    let stop = supervisor.run(&plan, &mut interrupts).await.expect("run");
    supervisor.stop(&mut interrupts).await;

    assert_eq!(stop, Stop::NotReady { name: "rs".to_owned(), port, waited: QUICK.startup });
    assert_eq!(supervisor.children(), [("rs", Some("killed by SIGTERM"))], "the gateways were never started");
    let _ = std::fs::remove_dir_all(dir);
}
