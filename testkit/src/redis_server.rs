//! A real `redis-server`, started by the test on a unix socket of its own
//! (no port to collide with a Redis already on the machine) and killed when
//! dropped. It keeps nothing on disk, unless started [`persistent`]: then
//! every write is in its append-only file before it is answered, and a
//! restart (even after a kill) comes back with all of it.
//!
//! [`persistent`]: RedisServer::start_persistent

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    dir: PathBuf,
    /// `appendonly yes` with `appendfsync always`.
    persistent: bool,
}

static NEXT: AtomicU32 = AtomicU32::new(0);

impl RedisServer {
    /// Starts redis-server and waits until it answers PING. Fails the test
    /// with the install command when redis-server is not on PATH.
    pub async fn start() -> Self {
        Self::start_in_mode(false).await
    }

    /// [`Self::start`] with an append-only file synced on every write, so a
    /// [`Self::restart`] keeps the data.
    pub async fn start_persistent() -> Self {
        Self::start_in_mode(true).await
    }

    async fn start_in_mode(persistent: bool) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "chat-test-redis-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir for redis-server");
        let mut server = Self { child: None, dir, persistent };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let socket = self.socket();
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--unixsocketperm", "700", "--save", ""])
            .args(if self.persistent {
                ["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                ["--appendonly", "no", "--appendfsync", "everysec"]
            })
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}). The tests need a real Redis: install it with \
                     `apt-get install -y redis-server` (or put redis-server on PATH)"
                )
            });
        self.child = Some(child);
        for _ in 0..200 {
            if self.ping().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server did not answer PING within 5 s on {}", socket.display());
    }

    fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    async fn ping(&self) -> bool {
        let Ok(client) = redis::Client::open(self.url()) else { return false };
        let Ok(mut conn) = client.get_multiplexed_async_connection().await else { return false };
        redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok()
    }

    /// A plain connection for looking inside Redis from a test.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("valid url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis-server")
    }

    /// Kills redis-server and starts it again on the same socket: empty, or
    /// with everything it held when [`persistent`](Self::start_persistent).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.spawn().await;
    }

    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
