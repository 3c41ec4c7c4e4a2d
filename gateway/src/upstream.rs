//! The room-services this gateway talks to, and which one answers for a room.
//!
//! Every gateway ranks the room-services for a room the same way
//! (rendezvous hashing of room and endpoint), so while the first-ranked one
//! is up, all of a room's calls and its streams from every gateway land on
//! it and it alone holds the room's Redis subscription. A call that finds
//! its room-service unreachable marks it down for a while and goes to the
//! next in the ranking; the marked one is tried again after the cool-down.
//!
//! Slow is not down: a room-service that answers RESOURCE_EXHAUSTED is busy
//! and is asked again after the wait it names; one that misses a call's
//! deadline but still answers its health check keeps its rooms, and the
//! caller is told to try again. Each call carries its deadline
//! (`grpc-timeout`), so the room-service drops work nobody waits for.

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chat_proto::RETRY_AFTER_HEADER;

use chat_proto::v1::room_service_client::RoomServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::limits::{BUSY_RETRY, CALL_TIMEOUT, COOL_DOWN, MAX_REPLY_BYTES};

// issue 10: every call carries GRPC_TOKEN (crate::bearer).
pub(crate) type Client = RoomServiceClient<InterceptedService<Channel, crate::bearer::Bearer>>;

#[derive(Debug)]
pub struct RoomServices {
    endpoints: Vec<RoomServiceEndpoint>,
    /// Traces are on: calls carry the caller's `traceparent` (`crate::traced`).
    traced: bool,
}

#[derive(Debug)]
pub struct RoomServiceEndpoint {
    pub url: String,
    channel: Channel,
    down_until: Mutex<Option<Instant>>,
    bearer: crate::bearer::Bearer, // issue 10
}

impl RoomServiceEndpoint {
    pub fn client(&self) -> Client {
        RoomServiceClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_REPLY_BYTES)
    }

    fn is_down(&self, now: Instant) -> bool {
        self.down_until.lock().map(|d| d.is_some_and(|until| until > now)).unwrap_or(false)
    }

    pub fn mark_down(&self) {
        if let Ok(mut down) = self.down_until.lock() {
            if down.is_none_or(|until| until <= Instant::now()) {
                tracing::warn!(room_service = self.url, "room-service unreachable; moving its rooms to the next one");
            }
            *down = Some(Instant::now() + COOL_DOWN);
        }
    }

    /// Whether it answers its health check within a second: a call that
    /// timed out on a room-service that does is slow, not gone.
    pub async fn answers_health(&self) -> bool {
        let mut health = HealthClient::new(self.channel.clone());
        let check = health.check(HealthCheckRequest { service: String::new() });
        matches!(tokio::time::timeout(Duration::from_secs(1), check).await, Ok(Ok(_)))
    }

    fn mark_up(&self) {
        if let Ok(mut down) = self.down_until.lock() {
            *down = None;
        }
    }
}

/// Whether a failed call says the room-service itself is gone, rather than
/// refusing the request.
pub(crate) fn is_unreachable(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Cancelled | Code::Unknown)
}

/// Whether a failed call says the room-service is busy: try again later,
/// on the same one.
pub(crate) fn is_busy(status: &Status) -> bool {
    matches!(status.code(), Code::ResourceExhausted | Code::DeadlineExceeded)
}

/// How long a busy room-service asked us to wait.
pub(crate) fn retry_after(status: &Status) -> Duration {
    status
        .metadata()
        .get(RETRY_AFTER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .map_or(BUSY_RETRY, Duration::from_millis)
        .min(CALL_TIMEOUT)
}

impl RoomServices {
    /// Channels connect lazily, so a room-service that is not up yet is no
    /// reason to refuse to start.
    pub fn new(urls: &[String]) -> anyhow::Result<Self> {
        anyhow::ensure!(!urls.is_empty(), "no room-services given: set ROOM_SERVICES (e.g. http://127.0.0.1:50051)");
        let endpoints = urls
            .iter()
            .map(|url| {
                let channel = Endpoint::from_shared(url.clone())
                    .map_err(|e| anyhow::anyhow!("room-service address {url:?} is not a URL: {e}"))?
                    .connect_timeout(Duration::from_secs(1))
                    .tcp_nodelay(true)
                    .http2_keep_alive_interval(Duration::from_secs(5))
                    .keep_alive_timeout(Duration::from_secs(5))
                    .keep_alive_while_idle(true)
                    .connect_lazy();
                Ok(RoomServiceEndpoint {
                    url: url.clone(),
                    channel,
                    down_until: Mutex::new(None),
                    bearer: crate::bearer::Bearer::none(),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self { endpoints, traced: false })
    }

    /// With traces on: calls carry their span's context, frames and
    /// deliveries get spans (`crate::traced`).
    pub fn traced(mut self, on: bool) -> Self {
        self.traced = on;
        self
    }

    /// Whether traces are on: the one flag the session and feeds check.
    pub(crate) fn is_traced(&self) -> bool {
        self.traced
    }

    /// issue 10: sends `authorization: Bearer <token>` with every call.
    pub fn with_token(mut self, token: Option<&str>) -> anyhow::Result<Self> {
        let bearer = crate::bearer::Bearer::new(token)?;
        for endpoint in &mut self.endpoints {
            endpoint.bearer = bearer.clone();
        }
        Ok(self)
    }

    /// The room-services for `room`, best first: the rendezvous order, with
    /// those marked down moved to the end (still tried if all are down).
    pub fn ranked(&self, room: &str) -> Vec<&RoomServiceEndpoint> {
        let mut ranked: Vec<&RoomServiceEndpoint> = self.endpoints.iter().collect();
        ranked.sort_by_key(|e| std::cmp::Reverse(crate::rendezvous::score(room, &e.url)));
        let now = Instant::now();
        ranked.sort_by_key(|e| e.is_down(now));
        ranked
    }

    /// Calls one `RoomService` method for `room` on the best room-service:
    /// `services.call(room, request, |mut c, r| async move { c.join(r).await })`.
    /// Moves on to the next room-service while they are unreachable; waits
    /// and asks again (within [`CALL_TIMEOUT`]) while one is busy.
    pub async fn call<Req, T, F, Fut>(&self, room: &str, request: Req, method: F) -> Result<T, Status>
    where
        Req: Clone,
        F: Fn(Client, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut last = Status::unavailable("no room-service configured");
        for endpoint in self.ranked(room) {
            let deadline = Instant::now() + CALL_TIMEOUT;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let mut attempt = tonic::Request::new(request.clone());
                attempt.set_timeout(left);
                if self.traced {
                    crate::traced::inject(attempt.metadata_mut());
                }
                match tokio::time::timeout(left, method(endpoint.client(), attempt)).await {
                    Ok(Ok(response)) => {
                        endpoint.mark_up();
                        return Ok(response.into_inner());
                    }
                    Ok(Err(status)) if status.code() == Code::ResourceExhausted => {
                        let wait = retry_after(&status);
                        if Instant::now() + wait >= deadline {
                            return Err(status);
                        }
                        tracing::debug!(room_service = endpoint.url, room, ?wait, "room-service busy; asking again");
                        tokio::time::sleep(wait).await;
                    }
                    Ok(Err(status)) if is_unreachable(&status) => {
                        endpoint.mark_down();
                        last = status;
                        break;
                    }
                    Ok(Err(status)) => return Err(status),
                    Err(_) if endpoint.answers_health().await => {
                        return Err(Status::deadline_exceeded(format!(
                            "{} is busy: no answer in {CALL_TIMEOUT:?}",
                            endpoint.url
                        )));
                    }
                    Err(_) => {
                        endpoint.mark_down();
                        last = Status::unavailable(format!("{} does not answer", endpoint.url));
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// Whether at least one room-service answers its health check as SERVING.
    pub async fn any_serving(&self) -> bool {
        for endpoint in &self.endpoints {
            let mut health = HealthClient::new(endpoint.channel.clone());
            let check = health.check(HealthCheckRequest { service: "chat.v1.RoomService".into() });
            if let Ok(Ok(response)) = tokio::time::timeout(Duration::from_secs(1), check).await
                && response.into_inner().status == ServingStatus::Serving as i32
            {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(n: usize) -> RoomServices {
        let urls: Vec<String> = (0..n).map(|i| format!("http://127.0.0.1:{}", 50051 + i)).collect();
        RoomServices::new(&urls).expect("valid urls")
    }

    #[tokio::test]
    async fn every_gateway_ranks_a_room_alike() {
        let (a, b) = (services(3), services(3));
        for room in ["general", "dev", "random", "x"] {
            let ra: Vec<_> = a.ranked(room).iter().map(|e| e.url.clone()).collect();
            let rb: Vec<_> = b.ranked(room).iter().map(|e| e.url.clone()).collect();
            assert_eq!(ra, rb, "room {room}");
        }
    }

    #[tokio::test]
    async fn rooms_spread_over_room_services() {
        let s = services(2);
        let firsts: std::collections::HashSet<String> =
            (0..50).map(|i| s.ranked(&format!("room{i}"))[0].url.clone()).collect();
        assert_eq!(firsts.len(), 2, "50 rooms should not all land on one room-service");
    }

    #[tokio::test]
    async fn a_down_room_service_moves_to_the_end() {
        let s = services(2);
        let first = s.ranked("general")[0].url.clone();
        s.ranked("general")[0].mark_down();
        assert_ne!(s.ranked("general")[0].url, first);
        assert_eq!(s.ranked("general")[1].url, first, "still tried last");
    }

    #[test]
    fn an_empty_list_is_refused_with_the_variable_to_set() {
        let err = RoomServices::new(&[]).unwrap_err().to_string();
        assert!(err.contains("ROOM_SERVICES"), "{err}");
    }
}
