//! Builds `room-service` and `gateway` with cargo and finds their executables.
//!
//! The paths come from cargo's own JSON messages rather than from guessing
//! `target/<profile>/`, so a `CARGO_TARGET_DIR` or a `build.target-dir`
//! elsewhere works as well.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::plan::Binaries;

const ROOM_SERVICE: &str = "room-service";
const GATEWAY: &str = "gateway";

/// The workspace root: this crate sits one level below it.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Runs `cargo build` of both binaries (release unless `debug`), showing
/// cargo's diagnostics as usual and a line of progress every
/// [`PROGRESS_EVERY`] crates (a first build compiles a few hundred and takes
/// minutes: it must not look hung), and returns their paths.
pub async fn build(debug: bool) -> anyhow::Result<Binaries> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(workspace_root())
        .args(["build", "--package", ROOM_SERVICE, "--package", GATEWAY])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !debug {
        command.arg("--release");
    }
    let profile = if debug { "debug" } else { "release" };
    println!(
        "xtask: building {ROOM_SERVICE} and {GATEWAY} ({profile}); the first build compiles a few hundred crates and takes minutes"
    );
    let started = std::time::Instant::now();
    let mut child = command.spawn().with_context(|| format!("could not run {}", cargo.to_string_lossy()))?;
    let stdout = child.stdout.take().context("cargo's output was not piped")?;
    let mut lines = BufReader::new(stdout).lines();
    let (mut messages, mut built) = (String::new(), 0usize);
    while let Some(line) = lines.next_line().await.context("reading cargo's output")? {
        // Only crates compiled now: a build with nothing to do stays quiet.
        if line.contains(r#""reason":"compiler-artifact""#) && line.contains(r#""fresh":false"#) {
            built += 1;
            if built.is_multiple_of(PROGRESS_EVERY) {
                println!("xtask: {built} crates built ({} s)", started.elapsed().as_secs());
            }
        }
        messages.push_str(&line);
        messages.push('\n');
    }
    let status = child.wait().await.context("waiting for cargo")?;
    if !status.success() {
        bail!("cargo build of {ROOM_SERVICE} and {GATEWAY} failed ({status}): see the errors above");
    }
    println!("xtask: built in {:.1} s", started.elapsed().as_secs_f32());
    executables(&messages)
}

/// The two executables in `dir`, built before (another build to compare
/// with, or a debug build), without building anything.
pub fn in_dir(dir: &Path) -> anyhow::Result<Binaries> {
    let found = |name: &str| Some(dir.join(name)).filter(|path| path.is_file());
    match (found(ROOM_SERVICE), found(GATEWAY)) {
        (Some(room_service), Some(gateway)) => Ok(Binaries { room_service, gateway }),
        _ => bail!(
            "{} has no {ROOM_SERVICE} and {GATEWAY} executables: point at a folder with both (e.g. target/release)",
            dir.display()
        ),
    }
}

/// Crates between two progress lines of a build.
const PROGRESS_EVERY: usize = 25;

/// Picks the two executables out of cargo's `--message-format=json` lines.
pub fn executables(cargo_messages: &str) -> anyhow::Result<Binaries> {
    let mut room_service = None;
    let mut gateway = None;
    for line in cargo_messages.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(executable) = message["executable"].as_str() else {
            continue;
        };
        match message["target"]["name"].as_str() {
            Some(ROOM_SERVICE) => room_service = Some(PathBuf::from(executable)),
            Some(GATEWAY) => gateway = Some(PathBuf::from(executable)),
            _ => {}
        }
    }
    match (room_service, gateway) {
        (Some(room_service), Some(gateway)) => Ok(Binaries { room_service, gateway }),
        (room_service, gateway) => {
            let missing: Vec<_> = [(ROOM_SERVICE, room_service), (GATEWAY, gateway)]
                .into_iter()
                .filter(|(_, path)| path.is_none())
                .map(|(name, _)| name)
                .collect();
            bail!("cargo built no executable named {}: is there a [[bin]] of that name?", missing.join(" or "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(name: &str, kind: &str, executable: Option<&str>) -> String {
        serde_json::json!({
            "reason": "compiler-artifact",
            "package_id": format!("path+file:///w/{name}#0.1.0"),
            "target": { "kind": [kind], "crate_types": [kind], "name": name },
            "filenames": [executable.unwrap_or("/w/target/release/libx.rlib")],
            "executable": executable,
            "fresh": true,
        })
        .to_string()
    }

    #[test]
    fn finds_both_executables_among_libraries_and_other_messages() {
        let messages = [
            artifact("room_service", "lib", None),
            artifact("room-service", "bin", Some("/w/target/release/room-service")),
            r#"{"reason":"build-script-executed","package_id":"x"}"#.to_owned(),
            "not json at all".to_owned(),
            artifact("gateway", "lib", None),
            artifact("gateway", "bin", Some("/w/target/release/gateway")),
            r#"{"reason":"build-finished","success":true}"#.to_owned(),
        ]
        .join("\n");

        let binaries = executables(&messages).expect("both found");

        assert_eq!(binaries.room_service, PathBuf::from("/w/target/release/room-service"));
        assert_eq!(binaries.gateway, PathBuf::from("/w/target/release/gateway"));
    }

    #[test]
    fn a_missing_executable_is_named() {
        let messages = artifact("gateway", "bin", Some("/w/target/debug/gateway"));

        let error = executables(&messages).expect_err("room-service missing").to_string();

        assert!(error.contains("room-service"), "{error}");
        assert!(!error.contains("or gateway"), "{error}");
    }
}
