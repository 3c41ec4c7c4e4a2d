//! `cargo xtask test`: everything the test suite needs, then the suite.
//!
//! The tests use real parts: `redis-server`, PostgreSQL (`initdb` and
//! `postgres`, for the store's tests), Debian's `chromium` and
//! `chromium-driver` (for the browser tests) and Node.js (for the page's
//! unit tests). What is missing is installed with apt when this runs as
//! root on a machine that has apt (a fresh CI box); otherwise the one
//! command that installs it is printed and nothing runs. Then
//! `cargo test --locked` runs on the whole workspace, or on the packages the
//! arguments pick (`cargo xtask test -p gateway --test api browser`), with
//! the arguments given.

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
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    if !on_path("s3s-fs") {
        // The S3-compatible server the attachment tests store files on.
        let status = Command::new(&cargo)
            .args(["install", "s3s-fs", "--version", "0.14.1", "--features", "binary", "--locked"])
            .status()
            .await
            .context("could not run cargo install s3s-fs")?;
        if !status.success() {
            bail!("`cargo install s3s-fs --version 0.14.1 --features binary --locked` failed ({status}): see above");
        }
    }
    let node = node_tests().await?;
    if !node {
        bail!("the page's unit tests failed (node --test static/test): see above");
    }
    let cargo_args = cargo_test_args(&args.cargo_args);
    let status = Command::new(&cargo)
        .current_dir(workspace_root())
        .args(&cargo_args)
        .status()
        .await
        .with_context(|| format!("could not run {}", cargo.to_string_lossy()))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status}): see above", cargo_args.join(" "));
    }
    Ok(())
}

/// The arguments of `cargo test` for the caller's `given`: `--workspace`
/// unless they pick packages themselves (`-p`/`--package`, or `--workspace`
/// already), since cargo takes `--workspace` over `-p`. An `--exclude`
/// alone still gets `--workspace`, which cargo requires with it. What
/// follows a bare `--` is for the test binaries and is not looked at.
pub fn cargo_test_args(given: &[String]) -> Vec<String> {
    let ours = given.iter().take_while(|arg| *arg != "--");
    let (mut picks_packages, mut locked) = (false, false);
    for arg in ours {
        picks_packages |= arg == "-p"
            || arg == "--package"
            || arg.starts_with("--package=")
            || (arg.starts_with("-p") && !arg.starts_with("--"))
            || arg == "--workspace"
            || arg == "--all";
        locked |= arg == "--locked";
    }
    let mut args = vec!["test".to_owned()];
    if !picks_packages {
        args.push("--workspace".to_owned());
    }
    // Given twice, cargo refuses it.
    if !locked {
        args.push("--locked".to_owned());
    }
    args.extend(given.iter().cloned());
    args
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(given: &[&str]) -> Vec<String> {
        cargo_test_args(&given.iter().map(|arg| (*arg).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn without_arguments_the_whole_workspace_is_tested() {
        assert_eq!(args(&[]), ["test", "--workspace", "--locked"]);
        assert_eq!(
            args(&["--test", "api", "browser"]),
            ["test", "--workspace", "--locked", "--test", "api", "browser"]
        );
    }

    #[test]
    fn packages_picked_by_the_caller_are_not_widened_to_the_workspace() {
        for given in [
            &["-p", "gateway", "--test", "api", "browser"][..],
            &["--package", "gateway"],
            &["--package=gateway"],
            &["-pgateway"],
            &["-p", "gateway", "-p", "room-service"],
        ] {
            let built = args(given);
            assert!(!built.contains(&"--workspace".to_owned()), "{given:?} gave {built:?}");
            assert_eq!(built[..2], ["test", "--locked"], "{given:?}");
            assert_eq!(built[2..], *given, "{given:?}: the caller's arguments follow as given");
        }
    }

    #[test]
    fn a_workspace_of_the_callers_own_is_not_given_twice() {
        assert_eq!(
            args(&["--workspace", "--exclude", "xtask"]),
            ["test", "--locked", "--workspace", "--exclude", "xtask"]
        );
        assert_eq!(args(&["--all"]), ["test", "--locked", "--all"]);
    }

    #[test]
    fn an_exclude_alone_gets_the_workspace_cargo_requires_with_it() {
        assert_eq!(args(&["--exclude", "xtask"]), ["test", "--workspace", "--locked", "--exclude", "xtask"]);
    }

    #[test]
    fn what_follows_a_bare_double_dash_is_for_the_test_binaries() {
        assert_eq!(
            args(&["--", "-p", "--workspace"]),
            ["test", "--workspace", "--locked", "--", "-p", "--workspace"],
            "a -p after -- is a test filter's business, not a package"
        );
    }

    #[test]
    fn locked_given_by_the_caller_is_not_given_twice() {
        assert_eq!(args(&["--locked", "-p", "xtask"]), ["test", "--locked", "-p", "xtask"]);
    }
}
