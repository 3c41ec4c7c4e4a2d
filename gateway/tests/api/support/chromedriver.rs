//! chromedriver and the headless Chromium it starts, for the page's tests:
//! [`Driver`] runs chromedriver on a free port and opens a browser per
//! "tab", each with a profile of its own; both programs are found on `PATH`
//! as `cargo xtask test` finds them. Without them a test fails and says
//! what to install; it never skips.

use std::{
    ffi::OsStr,
    path::PathBuf,
    process::Stdio,
    sync::atomic::{AtomicUsize, Ordering},
    time::Instant,
};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

use super::browser::{DEADLINE, POLL};

/// The browser's names on `PATH`, the first found wins: Debian calls it
/// `chromium`, some other distributions `chromium-browser`.
const CHROMIUM: &[&str] = &["chromium", "chromium-browser"];
const CHROMEDRIVER: &[&str] = &["chromedriver"];
const INSTALL: &str = "install with: apt-get install -y chromium chromium-driver";

/// chromedriver on a free port, started and stopped by the test. Its
/// browsers live in their own process group, killed with it even when the
/// test panics, and each gets a fresh profile directory.
pub struct Driver {
    child: tokio::process::Child,
    url: String,
    /// The browser chromedriver starts.
    chromium: PathBuf,
    profiles: Vec<PathBuf>,
}

impl Driver {
    pub async fn start() -> Driver {
        let chromium = installed(CHROMIUM);
        let chromedriver = installed(CHROMEDRIVER);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("find a free port for chromedriver")
            .port();
        let child = tokio::process::Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}; {INSTALL}", chromedriver.display()));
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(started.elapsed() < DEADLINE, "chromedriver did not listen on port {port} within {DEADLINE:?}");
            tokio::time::sleep(POLL).await;
        }
        Driver { child, url: format!("http://127.0.0.1:{port}"), chromium, profiles: Vec::new() }
    }

    /// A new browser (its own profile, so its own storage: like another person).
    pub async fn browser(&mut self) -> Client {
        static N: AtomicUsize = AtomicUsize::new(0);
        let profile = std::env::temp_dir().join(format!(
            "chat-browser-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&profile).expect("create a browser profile directory");
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--window-size=1280,800",
        ]
        .into_iter()
        .map(String::from)
        .chain([format!("--user-data-dir={}", profile.display())])
        .collect::<Vec<_>>();
        self.profiles.push(profile);
        let caps = json!({"goog:chromeOptions": {"binary": self.chromium, "args": args}});
        let Value::Object(caps) = caps else { unreachable!() };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("start a chromium session through chromedriver: {e}; {INSTALL}"))
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            // The browsers chromedriver started share its process group.
            let _ = std::process::Command::new("kill").args(["-s", "KILL", "--", &format!("-{pid}")]).status();
        }
        let _ = self.child.start_kill();
        for dir in &self.profiles {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The program called by the first of `names` found on `PATH`; a test that
/// needs it and finds none fails here, saying what to install.
fn installed(names: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH");
    find_program(path.as_deref(), names).unwrap_or_else(|| {
        let path = path.as_deref().unwrap_or_default().to_string_lossy();
        panic!("none of {names:?} is an executable on PATH ({path}); {INSTALL}")
    })
}

/// The first of `names`, in that order, that is an executable file in a
/// directory of `path` (a `PATH` value), as a shell would find it.
fn find_program(path: Option<&OsStr>, names: &[&str]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dirs: Vec<PathBuf> = path.map(|p| std::env::split_paths(p).collect()).unwrap_or_default();
    names.iter().find_map(|name| {
        dirs.iter().map(|dir| dir.join(name)).find(|file| {
            std::fs::metadata(file).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
    })
}

#[test]
fn the_browser_is_found_on_path_by_its_first_name_there() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::env::temp_dir().join(format!("chat-find-program-{}", std::process::id()));
    let dir = |d: &str| {
        let dir = root.join(d);
        std::fs::create_dir_all(&dir).expect("create a directory for PATH");
        dir
    };
    let program = |d: &str, name: &str, mode: u32| {
        let file = dir(d).join(name);
        std::fs::write(&file, "#!/bin/sh\n").expect("write a program");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).expect("set its mode");
        file
    };
    let path = |dirs: &[&str]| std::env::join_paths(dirs.iter().map(|d| dir(d))).expect("a PATH value");

    let not_executable = program("a", "chromium", 0o644);
    let other_name = program("b", "chromium-browser", 0o755);
    assert_eq!(
        find_program(Some(path(&["a", "b"]).as_os_str()), CHROMIUM),
        Some(other_name.clone()),
        "{} is not executable: the next name is used",
        not_executable.display()
    );
    let first_name = program("c", "chromium", 0o755);
    assert_eq!(
        find_program(Some(path(&["a", "b", "c"]).as_os_str()), CHROMIUM),
        Some(first_name),
        "`chromium` anywhere on PATH comes before `chromium-browser`"
    );
    assert_eq!(
        find_program(Some(path(&["a", "b"]).as_os_str()), CHROMEDRIVER),
        None,
        "no chromedriver in these directories"
    );
    assert_eq!(find_program(None, CHROMIUM), None, "no PATH, nothing found");
    let _ = std::fs::remove_dir_all(&root);
}
