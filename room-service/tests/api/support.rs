//! A room-service as its binary runs it: `room_service::run` on port 0, on
//! a `redis-server` the test starts, stopped when dropped.

use std::net::SocketAddr;
use std::time::Duration;

use chat_proto::v1::room_service_client::RoomServiceClient;
use chat_proto::v1::{JoinRequest, Member};
use chat_testkit::RedisServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct RoomService {
    pub redis: RedisServer,
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl RoomService {
    /// Starts one on its own Redis, with `tweak` applied to its config.
    pub async fn start(tweak: impl FnOnce(&mut room_service::Config)) -> Self {
        let redis = RedisServer::start().await;
        let mut config = room_service::Config::with_redis(Some(redis.url()));
        tweak(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
        let addr = listener.local_addr().expect("bound");
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(error) = room_service::run(config, listener, shutdown).await {
                panic!("room-service failed: {error:#}");
            }
        });
        Self { redis, addr, _stop: stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A channel to it, once it accepts connections.
    pub async fn channel(&self) -> Channel {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match Channel::from_shared(self.url()).expect("a valid url").connect().await {
                Ok(channel) => return channel,
                Err(error) => assert!(tokio::time::Instant::now() < deadline, "room-service not up: {error}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn grpc(&self) -> RoomServiceClient<Channel> {
        RoomServiceClient::new(self.channel().await)
    }
}

/// Polls `check` until it holds, failing after PATIENCE.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what} did not happen within {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A member as the people tests know them: `m-<name>` on `gw-1`, the
/// user `u-<name>`.
pub fn member(name: &str) -> Member {
    Member {
        member_id: format!("m-{name}"),
        username: name.into(),
        gateway: "gw-1".into(),
        user_id: format!("u-{name}"),
        ..Default::default()
    }
}

/// [`member`] `name` joins `room`, failing the test if refused.
pub async fn join(grpc: &mut RoomServiceClient<Channel>, room: &str, name: &str) {
    let request = JoinRequest { room: room.into(), member: Some(member(name)), ..Default::default() };
    grpc.join(request).await.expect("joins");
}
