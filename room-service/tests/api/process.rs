//! The room-service binary as a process of its own, for tests that kill it
//! (`kill -9`) and start it again: on a given gRPC port, with only the
//! environment the test gives it.

use std::process::Stdio;

use chat_proto::v1::room_service_client::RoomServiceClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tonic::transport::Channel;

use crate::support::PATIENCE;

pub struct RoomServiceProcess {
    child: Child,
    pub port: u16,
    env: Vec<(String, String)>,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

impl RoomServiceProcess {
    /// Starts the binary on `port` with `env` (and nothing of the shell's),
    /// and waits for its "listening" line.
    pub async fn start(port: u16, env: &[(&str, String)]) -> Self {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
        let child = spawn(port, &env).await;
        Self { child, port, env }
    }

    /// `kill -9`: no shutdown, nothing flushed, the archiver's queue lost.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL the room-service");
    }

    /// Starts it again on the same port with the same environment.
    pub async fn restart(&mut self) {
        self.child = spawn(self.port, &self.env).await;
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client whose channel connects lazily: calls fail at once while the
    /// process is down and work again once it is back.
    pub fn grpc(&self) -> RoomServiceClient<Channel> {
        let channel = Channel::from_shared(self.url())
            .expect("a valid url")
            .connect_timeout(std::time::Duration::from_secs(1))
            .connect_lazy();
        RoomServiceClient::new(channel)
    }
}

async fn spawn(port: u16, env: &[(String, String)]) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_room-service"))
        .env_clear()
        .env("RUST_LOG", "info")
        .env("GRPC_PORT", port.to_string())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run the room-service binary");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let show = std::env::var_os("TEST_LOG").is_some();
    let listening = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if show {
                eprintln!("room-service :{port} | {line}");
            }
            if line.contains("listening for gRPC") {
                return true;
            }
        }
        false
    })
    .await
    .expect("started in time");
    assert!(listening, "room-service on {port} exited before listening");
    // Keep draining its logs so it never blocks on a full pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if show {
                eprintln!("room-service :{port} | {line}");
            }
        }
    });
    child
}
