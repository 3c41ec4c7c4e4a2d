//! A real PostgreSQL, started by the test in a temp dir of its own and
//! stopped when dropped: `initdb` makes a fresh cluster there, and
//! `postgres` serves it on a unix socket in that same dir only
//! (`listen_addresses=''`), so it never takes a TCP port, never collides
//! with another test's server, and leaves a PostgreSQL already running on
//! the machine alone.
//!
//! It is tuned for tests, not for keeping data through a power cut:
//! `fsync=off`, `synchronous_commit=off`, `full_page_writes=off`. A commit
//! still reaches the server's WAL before [`stop`] returns (a fast shutdown
//! writes everything out), so what was committed before a [`restart`] is
//! there after it.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (CI does),
//! `initdb` and `postgres` run as the `postgres` user that Debian's package
//! creates, and the temp dir is handed to that user.
//!
//! Tests call [`start`], which fails the test with what to do; `cargo xtask
//! up` and the bench call [`try_start`] with [`Options`] of their own (a
//! process group of its own, so a Ctrl+C in the terminal reaches only them
//! and they stop PostgreSQL after the room-services that write to it).
//!
//! [`start`]: PostgresServer::start
//! [`try_start`]: PostgresServer::try_start
//!
//! [`stop`]: PostgresServer::stop
//! [`restart`]: PostgresServer::restart

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid, User};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

/// The superuser `initdb` creates, and the database every cluster has.
const USER: &str = "postgres";
const DATABASE: &str = "postgres";
/// Only names the socket file (`.s.PGSQL.5432`) in the server's own dir:
/// with no TCP listener, two servers on one port number never meet.
const PORT: u16 = 5432;
/// How long startup (or crash recovery after a restart) may take.
const READY_WITHIN: Duration = Duration::from_secs(15);
/// How long a fast shutdown may take before the server is killed.
const STOPPED_WITHIN: Duration = Duration::from_secs(10);

/// How [`PostgresServer::try_start`] starts the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Run `postgres` in a process group of its own: a Ctrl+C in the
    /// terminal then does not reach it, and whoever started it decides when
    /// it stops ([`PostgresServer::stop`], or the drop). Off for tests, so
    /// an interrupted test run takes its servers with it.
    pub own_process_group: bool,
}

/// Why a scratch PostgreSQL could not start, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError(String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

#[derive(Debug)]
pub struct PostgresServer {
    child: Option<Child>,
    /// The temp dir: `data/` (the cluster), the socket, `postgres.log`.
    dir: PathBuf,
    /// Where `initdb` and `postgres` are.
    bin: PathBuf,
    /// Who runs them when the tests run as root; `None`: the tests' own user.
    owner: Option<Owner>,
    options: Options,
}

#[derive(Debug, Clone, Copy)]
struct Owner {
    uid: u32,
    gid: u32,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl PostgresServer {
    /// Makes a fresh cluster in a temp dir, starts `postgres` on it and
    /// waits until it accepts connections (about a second or two). Fails
    /// the test with the install command when PostgreSQL is not installed.
    pub async fn start() -> Self {
        match Self::try_start(Options::default()).await {
            Ok(server) => server,
            Err(error) => panic!("{error}"),
        }
    }

    /// [`Self::start`] for a program rather than a test: an error saying
    /// what was wrong and what to do instead of a panic. The temp dir is
    /// removed again when the start fails.
    pub async fn try_start(options: Options) -> Result<Self, StartError> {
        let bin = bin_dir().ok_or_else(|| {
            StartError(
                "PostgreSQL is not installed: no `initdb` and `postgres` on PATH or under \
                 /usr/lib/postgresql/*/bin. Install it with `apt-get install -y postgresql` \
                 (or run `cargo xtask test`, which does)"
                    .to_owned(),
            )
        })?;
        let owner = owner()?;
        let dir = std::env::temp_dir().join(format!(
            "chat-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let io = |what: &str, e: std::io::Error| StartError(format!("cannot {what} {} ({e})", dir.display()));
        std::fs::create_dir_all(&dir).map_err(|e| io("create PostgreSQL's temp dir", e))?;
        // From here on the drop removes the dir, whatever fails.
        let mut server = Self { child: None, dir: dir.clone(), bin, owner, options };
        // PostgreSQL wants its files to itself.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| io("make private", e))?;
        if let Some(owner) = owner {
            std::os::unix::fs::chown(&dir, Some(owner.uid), Some(owner.gid))
                .map_err(|e| io("hand to the postgres user", e))?;
        }
        server.initdb().await?;
        server.spawn().await?;
        Ok(server)
    }

    /// A `postgres://` URL for sqlx (or psql): the superuser `postgres`
    /// (trust authentication, no password) on database `postgres`, through
    /// the unix socket in `host=<dir>`.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@localhost:{PORT}/{DATABASE}?host={}", query_escape(&self.dir))
    }

    /// The dir holding the socket (`psql -h <it> -U postgres`), the data
    /// dir and `postgres.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops PostgreSQL (a fast shutdown: open connections are cut at once,
    /// committed data is kept) and waits until it is gone; a client then
    /// gets "connection refused" until [`Self::restart`].
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
        }
        if tokio::time::timeout(STOPPED_WITHIN, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }

    /// Starts PostgreSQL again on the same data dir (stopping it first if it
    /// runs), with everything committed before, and waits until it accepts
    /// connections.
    pub async fn restart(&mut self) {
        self.stop().await;
        if let Err(error) = self.spawn().await {
            panic!("{error}");
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn socket(&self) -> PathBuf {
        self.dir.join(format!(".s.PGSQL.{PORT}"))
    }

    /// A command for one of PostgreSQL's programs: run as the postgres user
    /// when the tests are root, with none of the shell's environment (a
    /// developer's PGPORT or PGDATA cannot change what a test gets).
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.env_clear().current_dir(&self.dir).stdin(Stdio::null());
        if let Some(owner) = self.owner {
            command.uid(owner.uid).gid(owner.gid);
        }
        if self.options.own_process_group {
            command.process_group(0);
        }
        command
    }

    async fn initdb(&self) -> Result<(), StartError> {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data())
            .args(["-U", USER, "-A", "trust", "-E", "UTF8"])
            // A UTF-8 ctype, so full-text search lowercases every alphabet
            // (with plain C only ASCII letters fold), the same on every host.
            .args(["--locale=C.UTF-8", "--no-sync", "--no-instructions"])
            .output()
            .await
            .map_err(|e| StartError(format!("cannot run {} ({e})", self.bin.join("initdb").display())))?;
        if !output.status.success() {
            return Err(StartError(format!(
                "initdb failed ({}) in {}: {}{}",
                output.status,
                self.dir.display(),
                String::from_utf8_lossy(&output.stderr).trim(),
                if self.owner.is_some() {
                    " (it runs as the postgres user: TMPDIR must be a dir that user can enter)"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }

    async fn spawn(&mut self) -> Result<(), StartError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| StartError(format!("cannot open {} ({e})", self.log().display())))?;
        if let Some(owner) = self.owner {
            let _ = std::os::unix::fs::chown(self.log(), Some(owner.uid), Some(owner.gid));
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-c", "listen_addresses="])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args(["-c", &format!("port={PORT}")])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| StartError(format!("cannot start {} ({e})", self.bin.join("postgres").display())))?;
        self.child = Some(child);
        let started = Instant::now();
        while started.elapsed() < READY_WITHIN {
            if accepts_connections(&self.socket()).await {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(StartError(format!("postgres exited ({status}) while starting: {}", self.log_tail())));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(StartError(format!(
            "postgres did not accept connections within {READY_WITHIN:?} on {}: {}",
            self.socket().display(),
            self.log_tail()
        )))
    }

    /// The end of `postgres.log`, for a failure message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            // Immediate shutdown: the postmaster ends its backends and exits
            // (a plain kill would leave them behind for a moment); nothing is
            // worth keeping, the dir goes next.
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGQUIT);
                let until = Instant::now() + Duration::from_secs(2);
                while Instant::now() < until && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether the server answers a startup message with an authentication
/// reply (`R`: trust says OK) rather than an error (`E`: still starting
/// up, or shutting down). Speaks just enough of the wire protocol (v3) to
/// ask, so the harness needs no client library.
async fn accepts_connections(socket: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(socket).await else { return false };
    let mut body = 196_608_i32.to_be_bytes().to_vec(); // protocol 3.0
    for part in ["user", USER, "database", DATABASE] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut message = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    message.extend_from_slice(&body);
    if stream.write_all(&message).await.is_err() {
        return false;
    }
    let reply = tokio::time::timeout(Duration::from_secs(1), stream.read_u8()).await;
    let ready = matches!(reply, Ok(Ok(b'R')));
    if ready {
        // Terminate, so the server does not log an unexpected EOF.
        let _ = stream.write_all(&[b'X', 0, 0, 0, 4]).await;
    }
    ready
}

/// The dir with `initdb` and `postgres`: the first `PATH` dir that has both,
/// else Debian's `/usr/lib/postgresql/<version>/bin` of the highest version;
/// `None` when PostgreSQL is not installed.
pub fn bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| ["initdb", "postgres"].iter().all(|p| is_executable(&dir.join(p)));
    let on_path =
        std::env::var_os("PATH").map(|path| std::env::split_paths(&path).collect::<Vec<_>>()).unwrap_or_default();
    if let Some(dir) = on_path.into_iter().find(|dir| has_both(dir)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| has_both(bin))
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// `Some` (the postgres user) when we run as root, which PostgreSQL
/// refuses to run as.
fn owner() -> Result<Option<Owner>, StartError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    match User::from_name(USER) {
        Ok(Some(user)) => Ok(Some(Owner { uid: user.uid.as_raw(), gid: user.gid.as_raw() })),
        _ => Err(StartError(format!(
            "this runs as root, which PostgreSQL refuses to run as, and there is no `{USER}` \
             user to run it as: install Debian's package (`apt-get install -y postgresql` creates \
             it) or run as another user"
        ))),
    }
}

/// `path` as a URL query value: percent-encodes all but the characters
/// temp paths are usually made of.
fn query_escape(path: &Path) -> String {
    let mut out = String::new();
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => out.push(char::from(*byte)),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
