//! Runs a [`Plan`]: starts it tier by tier, waits until something ends it,
//! and stops it in reverse order.
//!
//! Each child runs in its own process group, so a Ctrl+C in the terminal
//! reaches only us and we decide the order: gateways get SIGTERM first (they
//! drain their browsers), then room-services (they remove their presence),
//! then Redis. Each tier gets [`Timing::grace`] to exit before SIGKILL; a second
//! Ctrl+C kills what is left at once.
//!
//! One task per child owns its `tokio::process::Child`: it waits for the exit,
//! lets the child's last output lines through, and reports on a channel. The
//! same task does the SIGKILL when asked, so nothing signals a pid after it
//! was reaped. `kill_on_drop` covers the case where we end abruptly.
//!
//! A child's output goes where [`Output`] says: behind its name on our
//! stdout (`cargo xtask up`), or into a log file of its own (the bench,
//! whose stdout is its tables). Its environment is what its
//! [`Inherit`] lets through of ours, with the plan's own settings over it.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use chat_testkit::redis_cluster;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::plan::{ESSENTIALS, Inherit, Plan, Process, Setup};
use crate::ports;
use crate::prefix::{self, Style};

/// How long things may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How long a started process has to open its port.
    pub startup: Duration,
    /// How long one tier has to exit after SIGTERM before it is killed.
    pub grace: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            startup: Duration::from_secs(30),
            // The gateway drains its browsers within about 10 s.
            grace: Duration::from_secs(15),
        }
    }
}

/// How long, after a child exited, its last output may take to come through
/// (a grandchild holding the pipe open must not hold us).
const LAST_OUTPUT: Duration = Duration::from_secs(2);

/// Why the topology is coming down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The developer asked (Ctrl+C, SIGTERM, SIGHUP).
    Signal(&'static str),
    /// A child ended by itself.
    Exited { name: String, status: String },
    /// A child did not open its port in time.
    NotReady { name: String, port: u16, waited: Duration },
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Signal(signal) => write!(f, "{signal} received"),
            Stop::Exited { name, status } => write!(f, "{name} exited unexpectedly ({status})"),
            Stop::NotReady { name, port, waited } => {
                write!(f, "{name} did not open port {port} within {} s", waited.as_secs_f32())
            }
        }
    }
}

/// Where the children's output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Each line on our stdout behind its child's name, as are our own
    /// messages ([`Supervisor::say`]).
    Prefixed(Style),
    /// Each child's stdout and stderr into `<dir>/<name>.log`, our own
    /// messages into `<dir>/supervisor.log`; nothing on our stdout.
    LogFiles(PathBuf),
}

/// Requests to stop, by the name of the signal that asked.
pub type Interrupts = mpsc::Receiver<&'static str>;

/// From now on SIGINT, SIGTERM and SIGHUP no longer end this process: they
/// arrive on the returned channel instead.
pub fn interrupts() -> anyhow::Result<Interrupts> {
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut hangup = signal(SignalKind::hangup()).context("listening for SIGHUP")?;
    // Only the first two matter (stop, then kill): more are dropped.
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
                _ = hangup.recv() => "SIGHUP",
            };
            if tx.try_send(name).is_err() && tx.is_closed() {
                return;
            }
        }
    });
    Ok(rx)
}

struct Exit {
    index: usize,
    status: std::io::Result<ExitStatus>,
}

struct Child {
    name: String,
    tier: usize,
    pid: Option<Pid>,
    /// Its process id as the system gave it, for reading `/proc`.
    id: Option<u32>,
    /// Asks the child's task to SIGKILL it; taken when used.
    kill: Option<oneshot::Sender<()>>,
    /// `None` while it runs.
    ended: Option<String>,
}

/// The running children of one plan.
pub struct Supervisor {
    output: Output,
    timing: Timing,
    children: Vec<Child>,
    exits_tx: mpsc::Sender<Exit>,
    exits: mpsc::Receiver<Exit>,
}

impl Supervisor {
    /// A supervisor showing every child's output behind its name on our stdout.
    pub fn new(plan: &Plan, style: Style, timing: Timing) -> Self {
        Self::with_output(plan, Output::Prefixed(style), timing)
    }

    /// A supervisor sending the children's output where `output` says.
    pub fn with_output(plan: &Plan, output: Output, timing: Timing) -> Self {
        // Every child reports exactly once, so this bound is never reached.
        let (exits_tx, exits) = mpsc::channel(plan.processes().count().max(1));
        Self { output, timing, children: Vec::new(), exits_tx, exits }
    }

    /// Shows one of our own messages among the children's lines (or logs
    /// it, with [`Output::LogFiles`]).
    pub fn say(&self, message: &str) {
        match &self.output {
            Output::Prefixed(style) => println!("{}{message}", style.own_label()),
            Output::LogFiles(dir) => {
                use std::io::Write;
                let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("supervisor.log"));
                // A message that cannot be logged is not worth stopping for.
                let _ = log.and_then(|mut log| writeln!(log, "{message}"));
            }
        }
    }

    /// Starts the plan tier by tier, each once the one before is listening,
    /// then waits until a signal or a child ends it. Returns why it stopped;
    /// the children are still running (call [`Supervisor::stop`]).
    pub async fn run(&mut self, plan: &Plan, interrupts: &mut Interrupts) -> anyhow::Result<Stop> {
        if let Some(stop) = self.start(plan, interrupts).await? {
            return Ok(stop);
        }

        for line in plan.summary() {
            self.say(&line);
        }
        self.say("Ctrl+C stops everything");

        Ok(tokio::select! {
            Some(signal) = interrupts.recv() => Stop::Signal(signal),
            Some(exit) = self.exits.recv() => self.ended_unexpectedly(exit),
        })
    }

    /// Starts the plan tier by tier, each once the one before is listening
    /// and its setup is done. `None` once all of it is up; otherwise why it
    /// did not come up (what started is still running: call
    /// [`Supervisor::stop`]).
    pub async fn start(&mut self, plan: &Plan, interrupts: &mut Interrupts) -> anyhow::Result<Option<Stop>> {
        for (tier_index, tier) in plan.tiers.iter().enumerate() {
            for process in &tier.processes {
                self.spawn(process, tier_index)?;
            }
            if let Some(stop) = self.wait_listening(&plan.connect_host, &tier.processes, interrupts).await {
                return Ok(Some(stop));
            }
            if let Some(setup) = &tier.setup {
                self.run_setup(setup).await?;
            }
            self.say(&format!("{} up", tier.role));
        }
        Ok(None)
    }

    fn spawn(&mut self, process: &Process, tier: usize) -> anyhow::Result<()> {
        let index = self.children.len();

        let mut command = Command::new(&process.program);
        command.args(&process.args).stdin(Stdio::null()).process_group(0).kill_on_drop(true);
        inherit(&mut command, &process.inherit);
        command.envs(&process.env);
        let label = match &self.output {
            Output::Prefixed(style) => {
                command.stdout(Stdio::piped()).stderr(Stdio::piped());
                if !style.color {
                    // Our output is not a terminal: keep escape codes out of it.
                    command.env("NO_COLOR", "1");
                }
                Some(style.label(&process.name, index))
            }
            Output::LogFiles(dir) => {
                let path = log_path(dir, &process.name);
                let log = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                command.stdout(log.try_clone()?).stderr(log).env("NO_COLOR", "1");
                None
            }
        };
        let mut child = command.spawn().with_context(|| format!("could not start {}", process.program.display()))?;

        let id = child.id();
        let pid = id.and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
        let stdout = child
            .stdout
            .take()
            .zip(label.clone())
            .map(|(out, label)| tokio::spawn(async move { prefix::copy_prefixed(out, &label, Printed).await }));
        let stderr = child
            .stderr
            .take()
            .zip(label)
            .map(|(err, label)| tokio::spawn(async move { prefix::copy_prefixed(err, &label, Printed).await }));

        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let exits = self.exits_tx.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                Ok(()) = kill_rx => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let last_output = async {
                for task in [stdout, stderr].into_iter().flatten() {
                    let _ = task.await;
                }
            };
            let _ = timeout(LAST_OUTPUT, last_output).await;
            let _ = exits.send(Exit { index, status }).await;
        });

        self.children.push(Child { name: process.name.clone(), tier, pid, id, kill: Some(kill_tx), ended: None });
        Ok(())
    }

    /// Runs a tier's setup to its end, showing what it printed.
    async fn run_setup(&self, setup: &Setup) -> anyhow::Result<()> {
        match setup {
            Setup::JoinCluster { cli, ports, replicas } => {
                let replicas = usize::from(*replicas);
                let create = redis_cluster::create_args(ports, replicas).join(" ");
                self.say(&format!("joining the Redis Cluster: {} {create}", cli.display()));
                let printed = redis_cluster::join(cli, ports, replicas)
                    .await
                    .map_err(|error| anyhow::anyhow!("the Redis Cluster did not form: {error}"))?;
                for line in printed.lines() {
                    self.say(&format!("redis-cli: {line}"));
                }
                self.say("the Redis Cluster is ok on every node");
            }
        }
        Ok(())
    }

    /// Waits until every one of `started` accepts connections on its port.
    /// `None` when they all do.
    async fn wait_listening(&mut self, host: &str, started: &[Process], interrupts: &mut Interrupts) -> Option<Stop> {
        let deadline = Instant::now() + self.timing.startup;
        let mut waiting: Vec<&Process> = started.iter().collect();
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for process in waiting {
                if !ports::answers(host, process.ready_port).await {
                    still.push(process);
                }
            }
            waiting = still;
            if waiting.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let process = waiting[0];
                return Some(Stop::NotReady {
                    name: process.name.clone(),
                    port: process.ready_port,
                    waited: self.timing.startup,
                });
            }
            tokio::select! {
                Some(signal) = interrupts.recv() => return Some(Stop::Signal(signal)),
                Some(exit) = self.exits.recv() => return Some(self.ended_unexpectedly(exit)),
                () = sleep(Duration::from_millis(100)) => {}
            }
        }
        None
    }

    fn ended_unexpectedly(&mut self, exit: Exit) -> Stop {
        let index = self.record(exit);
        let child = &self.children[index];
        Stop::Exited { name: child.name.clone(), status: child.ended.clone().unwrap_or_default() }
    }

    /// Notes that a child ended; returns its index.
    fn record(&mut self, exit: Exit) -> usize {
        let status = match exit.status {
            Ok(status) => describe(status),
            Err(error) => format!("could not wait for it: {error}"),
        };
        let child = &mut self.children[exit.index];
        child.ended = Some(status);
        child.kill = None;
        exit.index
    }

    /// Stops every child still running, the last tier first: SIGTERM, then
    /// SIGKILL for what is left after [`Timing::grace`] or on a second signal.
    pub async fn stop(&mut self, interrupts: &mut Interrupts) {
        let Some(last_tier) = self.children.iter().map(|c| c.tier).max() else {
            return;
        };
        let mut hurry = false;
        for tier in (0..=last_tier).rev() {
            let running: Vec<usize> = self.running_in(tier);
            if running.is_empty() {
                continue;
            }
            for &index in &running {
                let child = &self.children[index];
                if hurry {
                    self.sigkill(index);
                } else if let Some(pid) = child.pid {
                    // ESRCH only means it has just ended; its exit is on the way.
                    let _ = kill(pid, Signal::SIGTERM);
                }
            }
            let deadline = Instant::now() + self.timing.grace;
            let mut killed = hurry;
            while !self.running_in(tier).is_empty() {
                tokio::select! {
                    Some(exit) = self.exits.recv() => {
                        let index = self.record(exit);
                        let child = &self.children[index];
                        self.say(&format!(
                            "{} stopped ({})",
                            child.name,
                            child.ended.as_deref().unwrap_or_default()
                        ));
                    }
                    () = sleep_until(deadline), if !killed => {
                        self.say(&format!(
                            "{} still running {} s after SIGTERM: killing",
                            self.names(&self.running_in(tier)),
                            self.timing.grace.as_secs_f32()
                        ));
                        killed = true;
                        self.kill_tier(tier);
                    }
                    Some(signal) = interrupts.recv(), if !hurry => {
                        self.say(&format!("{signal} again: killing what is left"));
                        hurry = true;
                        killed = true;
                        self.kill_tier(tier);
                    }
                }
            }
        }
    }

    /// Every child started so far, with how it ended (`None`: still running).
    pub fn children(&self) -> Vec<(&str, Option<&str>)> {
        self.children.iter().map(|child| (child.name.as_str(), child.ended.as_deref())).collect()
    }

    /// Every child started so far, in start order, with its process id.
    pub fn pids(&self) -> Vec<(&str, Option<u32>)> {
        self.children.iter().map(|child| (child.name.as_str(), child.id)).collect()
    }

    /// The last `lines` lines `name` wrote, with [`Output::LogFiles`]; for
    /// an error message that says why it ended.
    pub fn log_tail(&self, name: &str, lines: usize) -> Option<String> {
        let Output::LogFiles(dir) = &self.output else { return None };
        let text = std::fs::read_to_string(log_path(dir, name)).ok()?;
        let all: Vec<&str> = text.lines().collect();
        Some(all[all.len().saturating_sub(lines)..].join("\n"))
    }

    fn running_in(&self, tier: usize) -> Vec<usize> {
        (0..self.children.len())
            .filter(|&i| self.children[i].tier == tier && self.children[i].ended.is_none())
            .collect()
    }

    fn kill_tier(&mut self, tier: usize) {
        for index in self.running_in(tier) {
            self.sigkill(index);
        }
    }

    fn sigkill(&mut self, index: usize) {
        if let Some(kill) = self.children[index].kill.take() {
            let _ = kill.send(());
        }
    }

    fn names(&self, indexes: &[usize]) -> String {
        indexes.iter().map(|&i| self.children[i].name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// Gives `command` what `inherit` lets through of our environment.
fn inherit(command: &mut Command, inherit: &Inherit) {
    match inherit {
        Inherit::AllBut(names) => {
            for name in names {
                command.env_remove(name);
            }
        }
        Inherit::Essentials => {
            command.env_clear();
            for name in ESSENTIALS {
                if let Some(value) = std::env::var_os(name) {
                    command.env(name, value);
                }
            }
        }
    }
}

fn log_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.log"))
}

/// Our stdout through `print!`, which takes its lock once per call (so one
/// line never interleaves with another) and which tests capture.
struct Printed;

impl std::io::Write for Printed {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        print!("{}", String::from_utf8_lossy(bytes));
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::Write::flush(&mut std::io::stdout())
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(signal) => format!("killed by {signal}"),
            Err(_) => format!("killed by signal {signal}"),
        },
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_statuses_read_as_words() {
        assert_eq!(describe(ExitStatus::from_raw(0)), "exit code 0");
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit code 3");
        assert_eq!(describe(ExitStatus::from_raw(9)), "killed by SIGKILL");
    }

    #[test]
    fn stop_reasons_say_who_and_why() {
        let exited = Stop::Exited { name: "room-service-50052".to_owned(), status: "exit code 1".to_owned() };
        assert_eq!(exited.to_string(), "room-service-50052 exited unexpectedly (exit code 1)");
        let not_ready = Stop::NotReady { name: "gateway-3001".to_owned(), port: 3001, waited: Duration::from_secs(30) };
        assert_eq!(not_ready.to_string(), "gateway-3001 did not open port 3001 within 30 s");
    }
}
