//! `health-probe`, compose's room-service health check: exits 0 while the
//! room-service answers SERVING, and fails while its Redis is down.

use std::time::Duration;

use chat_testkit::RedisServer;
use tokio::net::TcpListener;

async fn probe(url: &str) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_health-probe")).arg(url).output().await.expect("run health-probe")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_fails_while_redis_is_down() {
    let mut redis = RedisServer::start().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let mut config = room_service::Config::with_redis(Some(redis.url()));
    config.metrics_port = 0;
    config.grpc_token = Some("the probe needs no token".into());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(room_service::run(config, listener, async move {
        let _ = stopped.await;
    }));

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !probe(&url).await.status.success() {
        assert!(tokio::time::Instant::now() < deadline, "health-probe never succeeded against a healthy room-service");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    redis.stop().await;
    let failed = loop {
        let output = probe(&url).await;
        if !output.status.success() {
            break output;
        }
        assert!(
            tokio::time::Instant::now() < deadline + Duration::from_secs(10),
            "health-probe passes with Redis down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let said = String::from_utf8_lossy(&failed.stderr);
    assert!(said.contains("NOT_SERVING"), "the probe says why: {said}");

    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}
