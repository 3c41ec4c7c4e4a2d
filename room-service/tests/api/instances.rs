//! The room-service binary as people start it: several on one host that
//! differ only by GRPC_PORT, closed to the network by default, and startup
//! errors that fit on one line.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const PATIENCE: Duration = Duration::from_secs(10);

/// The binary with a clean environment: only what the test sets, so no
/// variable of the developer's shell (REDIS_CLUSTER_URLS, GRPC_TOKEN, …)
/// reaches it, however many flags the room-service grows.
fn room_service() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_room-service"));
    command.env_clear().env("RUST_LOG", "info").kill_on_drop(true);
    command
}

/// A port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Starts the binary and waits for its "listening" log line.
async fn start(grpc_port: u16) -> Child {
    start_with(grpc_port, &[]).await.0
}

/// [`start`] with `env` set too; also returns the "listening" line.
async fn start_with(grpc_port: u16, env: &[(&str, &str)]) -> (Child, String) {
    let mut child = room_service()
        .env("GRPC_PORT", grpc_port.to_string())
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the room-service binary");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let listening = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.expect("read stderr") {
            if line.contains("listening for gRPC") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("started in time");
    let listening =
        listening.unwrap_or_else(|| panic!("room-service on {grpc_port} ({env:?}) exited before listening"));
    // Keep draining its logs so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, listening)
}

async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect for HTTP");
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut response = String::new();
    tokio::time::timeout(PATIENCE, stream.read_to_string(&mut response)).await.expect("answer in time").expect("read");
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    (status, response)
}

#[tokio::test]
async fn instances_that_differ_only_by_grpc_port_run_side_by_side() {
    let ports = [free_port(), free_port()];
    let mut children = Vec::new();
    for port in ports {
        children.push(start(port).await);
    }
    for (port, child) in ports.iter().zip(&mut children) {
        assert!(child.try_wait().expect("status").is_none(), "room-service on {port} died");
        let addr: SocketAddr = ([127, 0, 0, 1], *port).into();
        // Prometheus scrapes the gRPC port over plain HTTP/1.1...
        let (status, body) = http_get(addr, "/metrics").await;
        assert_eq!(status, 200, "GET /metrics on {port}: {body}");
        assert!(body.contains(&format!("room_service=\"room-service-{port}\"")), "metrics of {port}: {body}");
        // ...and gRPC still answers on it.
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("url")
            .connect()
            .await
            .expect("gRPC connects");
        let health = tonic_health::pb::health_client::HealthClient::new(channel)
            .check(tonic_health::pb::HealthCheckRequest { service: "chat.v1.RoomService".into() })
            .await
            .expect("health check")
            .into_inner();
        assert_eq!(health.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    }
}

/// Runs the binary to its exit and returns its stderr.
async fn fails_with(env: &[(&str, String)]) -> String {
    let mut command = room_service();
    command.env("GRPC_PORT", free_port().to_string()).env("RUST_BACKTRACE", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = tokio::time::timeout(PATIENCE, command.stderr(Stdio::piped()).output())
        .await
        .expect("exits in time")
        .expect("runs");
    assert!(!output.status.success(), "{env:?} should fail");
    String::from_utf8(output.stderr).expect("UTF-8")
}

#[tokio::test]
async fn a_startup_error_is_one_line_naming_what_to_fix() {
    let closed = free_port();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().expect("addr").port();
    let cases: [(&[(&str, String)], &str); 7] = [
        (&[("REDIS_URL", format!("redis://127.0.0.1:{closed}"))], "cannot connect to Redis at"),
        (&[("REDIS_HOST", "127.0.0.1".into()), ("REDIS_PORT", closed.to_string())], "REDIS_HOST"),
        (
            &[("REDIS_URL", "redis://127.0.0.1:6379".into()), ("REDIS_CLUSTER_URLS", "redis://127.0.0.1:7000".into())],
            "set only one of them",
        ),
        (&[("METRICS_PORT", taken_port.to_string())], "cannot listen for metrics"),
        (&[("DATABASE_URL", format!("postgres://chat:pw@127.0.0.1:{closed}/chat"))], "cannot connect to PostgreSQL at"),
        (
            &[("STORE_SYNC", "1".into())],
            "STORE_SYNC=1 acknowledges a send once PostgreSQL committed it, but DATABASE_URL is not set",
        ),
        (&[("HISTORY_RETENTION_DAYS", "30".into())], "DATABASE_URL is not set"),
    ];
    for (env, expected) in cases {
        let stderr = fails_with(env).await;
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{env:?}: one line, got:\n{stderr}");
        assert!(lines[0].starts_with("room-service: ") && lines[0].contains(expected), "{env:?}: {stderr}");
        assert!(!stderr.contains("acktrace"), "{env:?}: no backtrace: {stderr}");
    }
    drop(taken);
}

#[tokio::test]
async fn the_api_is_served_beyond_loopback_only_with_a_token_or_on_purpose() {
    // Bare: on loopback.
    let port = free_port();
    let (_bare, listening) = start_with(port, &[]).await;
    assert!(listening.contains(&format!("127.0.0.1:{port}")), "a bare start listens on loopback: {listening}");

    // On every address without a token: refused, saying how to fix it.
    for env in [
        vec![("HOST", "0.0.0.0".to_owned())],
        vec![("HOST", "0.0.0.0".to_owned()), ("GRPC_TOKEN", String::new())],
        vec![("HOST", "0.0.0.0".to_owned()), ("ALLOW_OPEN_GRPC", "0".to_owned())],
    ] {
        let stderr = fails_with(&env).await;
        assert_eq!(stderr.lines().count(), 1, "{env:?}: one line, got:\n{stderr}");
        for hint in ["without GRPC_TOKEN", "Set GRPC_TOKEN", "ALLOW_OPEN_GRPC=1"] {
            assert!(stderr.contains(hint), "{env:?}: says {hint:?}: {stderr}");
        }
    }

    // With a token, or told to: served.
    for env in [[("HOST", "0.0.0.0"), ("GRPC_TOKEN", "s3cret")], [("HOST", "0.0.0.0"), ("ALLOW_OPEN_GRPC", "1")]] {
        let port = free_port();
        let (mut child, listening) = start_with(port, &env).await;
        assert!(listening.contains(&format!("0.0.0.0:{port}")), "{env:?}: {listening}");
        assert!(child.try_wait().expect("status").is_none(), "{env:?}: still running");
    }
}
