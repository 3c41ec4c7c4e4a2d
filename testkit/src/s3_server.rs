//! A real S3-compatible server for tests: `s3s-fs` (crates.io; `cargo xtask
//! test` installs it) on a free loopback port, serving a temp folder, with
//! one bucket ready. Stopped (and its folder removed) on drop.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

/// The bucket every server starts with.
pub const BUCKET: &str = "chat-files";
pub const ACCESS_KEY: &str = "test-access-key";
pub const SECRET_KEY: &str = "test-secret-key";

static NEXT: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
pub struct S3Server {
    _child: Child,
    dir: PathBuf,
    port: u16,
}

impl S3Server {
    /// Starts s3s-fs and waits until it accepts connections. Fails the test
    /// with the install command when s3s-fs is not on PATH.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "chat-test-s3-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join(BUCKET)).expect("create a temp dir for s3s-fs");
        for _attempt in 0..5 {
            // A free port: s3s-fs cannot be told to take port 0 and say which.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("a free port");
            let child = match Command::new("s3s-fs")
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
            {
                Ok(child) => child,
                Err(e) => panic!(
                    "cannot start s3s-fs ({e}); install it with \
                     `cargo install s3s-fs --version 0.14.1 --features binary --locked` (or run `cargo xtask test`)"
                ),
            };
            let mut server = S3Server { _child: child, dir: dir.clone(), port };
            for _ in 0..100 {
                if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    return server;
                }
                if let Ok(Some(_)) = server._child.try_wait() {
                    break; // the port was taken meanwhile: another one
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("s3s-fs did not start listening");
    }

    /// The endpoint, e.g. `http://127.0.0.1:9000`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Where it keeps the bucket's objects, to look at them from a test.
    pub fn bucket_dir(&self) -> PathBuf {
        self.dir.join(BUCKET)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
