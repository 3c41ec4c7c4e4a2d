//! `cargo xtask up` as a process, with stand-in binaries (`--bin-dir`): `sh`
//! scripts that write down the `DATABASE_URL` they were given. The test
//! plays their servers (it opens their ports once they started), reads what
//! `up` says, interrupts it, and checks what the room-service got and that
//! a scratch PostgreSQL is gone afterwards. Needs PostgreSQL installed (as
//! every store test does); Redis is an `--redis-url` nobody dials.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Writes `<its name> DATABASE_URL=<value>` to `$XTASK_TEST_LOG`, then idles
/// until SIGTERM.
const STAND_IN: &str = r#"#!/bin/sh
trap 'exit 0' TERM
echo "$(basename "$0") DATABASE_URL=${DATABASE_URL:-}" >> "$XTASK_TEST_LOG"
while :; do sleep 0.05; done
"#;

/// How long `up` may take to come up (a scratch PostgreSQL takes seconds
/// on a busy machine) and to stop.
const WITHIN: Duration = Duration::from_secs(60);

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("xtask-up-test-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    for name in ["room-service", "gateway"] {
        let path = dir.join(name);
        std::fs::write(&path, STAND_IN).expect("write a stand-in");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("make it executable");
    }
    dir
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind").local_addr().expect("addr").port()
}

/// What `up` said and what its children wrote down.
struct Run {
    said: Vec<String>,
    /// Stand-in name → the DATABASE_URL it got.
    got: BTreeMap<String, String>,
    success: bool,
}

/// Runs `cargo xtask up` on the stand-ins with `extra` flags until every
/// child is up, then interrupts it and waits until it is done.
async fn up(test: &str, extra: &[&str]) -> Run {
    let dir = scratch(test);
    let log = dir.join("children.log");
    let (grpc, web) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("up")
        .arg("--bin-dir")
        .arg(&dir)
        .args(["--gateways", "1", "--room-services", "1", "--first-metrics-port", "0"])
        .args(["--first-port", &web.to_string(), "--first-grpc-port", &grpc.to_string()])
        .args(["--redis-url", "redis://127.0.0.1:1"])
        .args(extra)
        .env("XTASK_TEST_LOG", &log)
        // Not what the test is about: a developer's DATABASE_URL must not
        // reach the children (the flag or the scratch one does).
        .env("DATABASE_URL", "postgres://from-the-shell@nowhere/x")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run xtask");
    let said = Arc::new(Mutex::new(Vec::new()));
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let reader = {
        let said = Arc::clone(&said);
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                said.lock().expect("lock").push(line);
            }
        })
    };

    // Play the servers: each port opens once its stand-in started.
    let mut listeners = Vec::new();
    let all_up = tokio::time::timeout(WITHIN, async {
        loop {
            let written = std::fs::read_to_string(&log).unwrap_or_default();
            for (name, port) in [("room-service", grpc), ("gateway", web)] {
                let opened = listeners.iter().any(|(n, _)| *n == name);
                if !opened && written.lines().any(|l| l.starts_with(&format!("{name} "))) {
                    listeners.push((name, TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("bind")));
                }
            }
            if said.lock().expect("lock").iter().any(|l| l.contains("Ctrl+C stops everything")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    if all_up.is_err() {
        panic!("up did not come up within {WITHIN:?}; it said:\n{}", said.lock().expect("lock").join("\n"));
    }

    let pid = child.id().expect("running");
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).expect("interrupt up");
    let status = tokio::time::timeout(WITHIN, child.wait()).await.expect("up stops").expect("wait");
    let _ = reader.await;
    let got = read_got(&log);
    let _ = std::fs::remove_dir_all(&dir);
    let said = said.lock().expect("lock").clone();
    Run { said, got, success: status.success() }
}

fn read_got(log: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once(" DATABASE_URL="))
        .map(|(name, url)| (name.to_owned(), url.to_owned()))
        .collect()
}

#[tokio::test]
async fn with_postgresql_installed_up_starts_a_scratch_store_passes_it_on_and_removes_it() {
    let run = up("scratch", &[]).await;

    let said = run.said.join("\n");
    assert!(run.success, "up ends cleanly on Ctrl+C:\n{said}");
    let line = run
        .said
        .iter()
        .find(|l| l.contains("history is kept in PostgreSQL at "))
        .unwrap_or_else(|| panic!("no line on where history is kept:\n{said}"));
    let url = line
        .split("history is kept in PostgreSQL at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a URL on the line");
    assert!(url.starts_with("postgres://"), "{line}");
    assert_eq!(run.got.get("room-service").map(String::as_str), Some(url), "the room-service gets the store");
    assert_ne!(run.got.get("gateway").map(String::as_str), Some(url), "a gateway has no use for it");
    let dir = url.split("host=").nth(1).expect("a unix socket dir in the URL");
    assert!(!Path::new(dir).exists(), "the scratch PostgreSQL's dir {dir} is removed on exit");
}

#[tokio::test]
async fn a_database_url_is_used_as_given_and_its_password_not_shown() {
    let url = "postgres://chat:secret@db.invalid:5432/chat";

    let run = up("existing", &["--database-url", url]).await;

    let said = run.said.join("\n");
    assert!(run.success, "{said}");
    assert!(said.contains("history is kept in PostgreSQL at postgres://chat:***@db.invalid:5432/chat"), "{said}");
    assert!(!said.contains("secret"), "{said}");
    assert!(!said.contains("scratch PostgreSQL"), "nothing started:\n{said}");
    assert_eq!(run.got.get("room-service").map(String::as_str), Some(url));
}
