//! Part of a test run in a child process whose environment holds what a
//! developer's shell might export.
//!
//! A test cannot set its own environment: `std::env::set_var` is unsafe
//! since Rust 2024 and the workspace forbids unsafe code. So the test runs
//! itself again — the same test binary, only that test — with the
//! variables set, and the child does the part that must see them:
//!
//! ```text
//! if !rerun::is_child() {
//!     rerun::with_env("module::this_test", &[("JWT_SECRET", "x")]).await;
//!     return;
//! }
//! // here JWT_SECRET=x is in our environment
//! ```

use std::process::Stdio;

use tokio::process::Command;

/// Set in the child run, so the test knows which part it plays.
const CHILD: &str = "CHAT_TESTKIT_RERUN_CHILD";

/// Whether this run is the child of [`with_env`].
pub fn is_child() -> bool {
    std::env::var_os(CHILD).is_some()
}

/// Runs the test `name` (its path in the test binary, e.g.
/// `shell::a_gateway_gets_nothing_of_the_shell`) again in a child process
/// with `vars` set; fails the test unless the child ran exactly that test
/// and it passed.
pub async fn with_env(name: &str, vars: &[(&str, &str)]) {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let output = Command::new(test_binary)
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("run the test binary again");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the rerun of {name} failed ({}):\n{printed}", output.status);
    // A name that matches no test passes with nothing run.
    assert!(printed.contains("test result: ok. 1 passed"), "the rerun did not run {name} alone:\n{printed}");
}

/// The environment process `pid` started with, from `/proc/<pid>/environ`.
pub fn environment_of(pid: u32) -> std::collections::BTreeMap<String, String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read /proc/<pid>/environ");
    environ
        .split(|&byte| byte == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let (name, value) = entry.split_once('=').unwrap_or((&entry, ""));
            (name.to_owned(), value.to_owned())
        })
        .collect()
}
