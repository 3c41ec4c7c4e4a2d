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

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use crate::plan::{Plan, Process};
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
    /// Asks the child's task to SIGKILL it; taken when used.
    kill: Option<oneshot::Sender<()>>,
    /// `None` while it runs.
    ended: Option<String>,
}

/// The running children of one plan.
pub struct Supervisor {
    style: Style,
    timing: Timing,
    children: Vec<Child>,
    exits_tx: mpsc::Sender<Exit>,
    exits: mpsc::Receiver<Exit>,
}

impl Supervisor {
    pub fn new(plan: &Plan, style: Style, timing: Timing) -> Self {
        // Every child reports exactly once, so this bound is never reached.
        let (exits_tx, exits) = mpsc::channel(plan.processes().count().max(1));
        Self { style, timing, children: Vec::new(), exits_tx, exits }
    }

    /// Prints one of our own messages among the children's lines.
    pub fn say(&self, message: &str) {
        println!("{}{message}", self.style.own_label());
    }

    /// Starts the plan tier by tier, each once the one before is listening,
    /// then waits until a signal or a child ends it. Returns why it stopped;
    /// the children are still running (call [`Supervisor::stop`]).
    pub async fn run(&mut self, plan: &Plan, interrupts: &mut Interrupts) -> anyhow::Result<Stop> {
        for (tier_index, tier) in plan.tiers.iter().enumerate() {
            for process in &tier.processes {
                self.spawn(process, tier_index)?;
            }
            if let Some(stop) = self.wait_listening(&plan.connect_host, &tier.processes, interrupts).await {
                return Ok(stop);
            }
            if let Some(setup) = &tier.setup {
                self.run_setup(setup).await?;
            }
            self.say(&format!("{} up", tier.role));
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

    fn spawn(&mut self, process: &Process, tier: usize) -> anyhow::Result<()> {
        let index = self.children.len();
        let label = self.style.label(&process.name, index);

        let mut command = Command::new(&process.program);
        command
            .args(&process.args)
            .envs(&process.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        for name in &process.env_remove {
            command.env_remove(name);
        }
        if !self.style.color {
            // Our output is not a terminal: keep escape codes out of it.
            command.env("NO_COLOR", "1");
        }
        let mut child = command.spawn().with_context(|| format!("could not start {}", process.program.display()))?;

        let pid = child.id().and_then(|id| i32::try_from(id).ok()).map(Pid::from_raw);
        let stdout = child.stdout.take().map(|out| {
            let label = label.clone();
            tokio::spawn(async move { prefix::copy_prefixed(out, &label, Printed).await })
        });
        let stderr = child.stderr.take().map(|err| {
            let label = label.clone();
            tokio::spawn(async move { prefix::copy_prefixed(err, &label, Printed).await })
        });

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

        self.children.push(Child { name: process.name.clone(), tier, pid, kill: Some(kill_tx), ended: None });
        Ok(())
    }

    /// Runs a tier's one-shot setup command to its end, its output shown
    /// under its name; fails unless it exits 0.
    async fn run_setup(&self, setup: &Process) -> anyhow::Result<()> {
        self.say(&format!("running {} {}", setup.program.display(), setup.args.join(" ")));
        let mut command = Command::new(&setup.program);
        command.args(&setup.args).envs(&setup.env).stdin(Stdio::null()).kill_on_drop(true);
        for name in &setup.env_remove {
            command.env_remove(name);
        }
        let output = command.output().await.with_context(|| format!("could not start {}", setup.program.display()))?;
        for line in
            String::from_utf8_lossy(&output.stdout).lines().chain(String::from_utf8_lossy(&output.stderr).lines())
        {
            self.say(&format!("{}: {line}", setup.name));
        }
        if !output.status.success() {
            anyhow::bail!("{} failed ({})", setup.name, describe(output.status));
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
