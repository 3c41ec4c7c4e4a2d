//! `cargo xtask test`: everything the test suite needs, then the suite.
//!
//! The tests use real parts: `redis-server`, PostgreSQL (`initdb` and
//! `postgres`, for the store's tests), Debian's `chromium` and
//! `chromium-driver` (for the browser tests) and Node.js (for the page's
//! unit tests). What is missing is installed with apt when this runs as
//! root on a machine that has apt (a fresh CI box); otherwise the one
//! command that installs it is printed and nothing runs. Then
//! `cargo test --workspace --locked` runs, with any extra arguments given.

use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::process::Command;

use crate::binaries::workspace_root;
use crate::cli::TestArgs;

/// A program the tests need, and the Debian package that has it.
struct Needed {
    program: &'static str,
    package: &'static str,
}

const NEEDED: [Needed; 4] = [
    Needed { program: "redis-server", package: "redis-server" },
    Needed { program: "chromium", package: "chromium" },
    Needed { program: "chromedriver", package: "chromium-driver" },
    Needed { program: "node", package: "nodejs" },
];

pub async fn run(args: TestArgs) -> anyhow::Result<()> {
    let missing: Vec<&Needed> = NEEDED.iter().filter(|n| !on_path(n.program)).collect();
    let postgres = (!has_initdb()).then_some("postgresql");
    if !missing.is_empty() || postgres.is_some() {
        let packages: Vec<&str> = missing.iter().map(|n| n.package).chain(postgres).collect();
        install(&packages).await?;
    }
    let node = node_tests().await?;
    if !node {
        bail!("the page's unit tests failed (node --test static/test): see above");
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(["test", "--workspace", "--locked"])
        .args(&args.cargo_args)
        .status()
        .await
        .with_context(|| format!("could not run {}", cargo.to_string_lossy()))?;
    if !status.success() {
        bail!("cargo test --workspace failed ({status}): see above");
    }
    Ok(())
}

/// Installs `packages` with apt when that is possible here, or says how.
async fn install(packages: &[&str]) -> anyhow::Result<()> {
    let command = format!("apt-get install -y {}", packages.join(" "));
    let root = nix::unistd::Uid::effective().is_root();
    if !root || !on_path("apt-get") {
        bail!("the tests need {}: install them with `{command}` (as root), then run this again", packages.join(", "));
    }
    println!("xtask test: installing {} with apt", packages.join(", "));
    for step in [vec!["update", "-qq"], [&["install", "-y", "-qq"][..], packages].concat()] {
        let status = Command::new("apt-get")
            .args(&step)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .await
            .context("could not run apt-get")?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status}); run `{command}` by hand", step.join(" "));
        }
    }
    Ok(())
}

/// Runs the page's pure-function tests with Node's own test runner.
async fn node_tests() -> anyhow::Result<bool> {
    let dir = workspace_root().join("static/test");
    if !dir.is_dir() {
        return Ok(true);
    }
    println!("xtask test: node --test static/test");
    let status = Command::new("node")
        .current_dir(workspace_root())
        .args(["--test", "static/test/"])
        .status()
        .await
        .context("could not run node (apt-get install -y nodejs)")?;
    Ok(status.success())
}

/// Whether PostgreSQL's `initdb` is on `PATH` or where Debian's package puts
/// it (`/usr/lib/postgresql/<version>/bin`, not on `PATH`).
fn has_initdb() -> bool {
    on_path("initdb")
        || std::fs::read_dir("/usr/lib/postgresql")
            .is_ok_and(|versions| versions.flatten().any(|v| v.path().join("bin/initdb").is_file()))
}

/// Whether `program` is an executable file in a `PATH` directory.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
    })
}
