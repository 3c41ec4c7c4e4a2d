//! Running it: readiness, health, metrics, reflection and graceful drain.

use std::time::Duration;

use crate::support::{PATIENCE, Topology, http_get, metric};
use chat_proto::v1::{HistoryRequest, ListRoomsRequest, SendRequest};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

/// Polls `check` until it holds, failing after PATIENCE.
async fn eventually<F, Fut>(what: &str, check: F)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_room_services() {
    let mut topology = Topology::start(1, 1).await;
    let gateway = topology.gateway_addr(0);
    assert_eq!(http_get(gateway, "/healthz").await.0, 200);
    eventually("ready", || async { http_get(gateway, "/readyz").await.0 == 200 }).await;

    topology.stop_room_service(0).await;
    let (status, body) = http_get(gateway, "/readyz").await;
    assert_eq!(status, 503, "no room-service left: {body}");
    assert!(body.contains("room-service"), "{body}");
    assert_eq!(http_get(gateway, "/healthz").await.0, 200, "alive all the same");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_service_health_follows_its_broker() {
    let mut topology = Topology::start(1, 0).await;
    let channel = tonic::transport::Endpoint::from_shared(topology.room_service_url(0)).expect("url").connect_lazy();
    let status = || {
        let mut health = HealthClient::new(channel.clone());
        async move {
            health
                .check(HealthCheckRequest { service: "chat.v1.RoomService".into() })
                .await
                .map(|r| r.into_inner().status)
                .unwrap_or(-1)
        }
    };
    assert_eq!(status().await, ServingStatus::Serving as i32);
    topology.redis.as_mut().expect("redis").stop().await;
    eventually("NOT_SERVING without Redis", || async { status().await == ServingStatus::NotServing as i32 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_for_grpcurl() {
    let topology = Topology::start(1, 0).await;
    let channel = tonic::transport::Endpoint::from_shared(topology.room_service_url(0))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses =
        reflection.server_reflection_info(tokio_stream::iter([request])).await.expect("reflection").into_inner();
    let response = responses.message().await.expect("an answer").expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("expected a service list, got {response:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in ["chat.v1.RoomService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} missing from {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_when_messages_flow() {
    let topology = Topology::start(1, 2).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    let mut bob = topology.client(1).await;
    bob.join("general", "bob").await;
    ada.say("general", "counted").await;
    bob.next_where(|f| f["type"] == "message").await;
    ada.send_raw(Message::Text("nope".into())).await;
    ada.next_of("error").await;

    let gateway = http_get(topology.gateway_addr(0), "/metrics").await.1;
    assert_eq!(metric(&gateway, &["chat_gateway_connections"]), 1.0, "{gateway}");
    assert_eq!(metric(&gateway, &["chat_gateway_rooms"]), 1.0, "{gateway}");
    assert!(metric(&gateway, &["chat_gateway_frames_in_total", "type=\"send\""]) >= 1.0, "{gateway}");
    assert!(metric(&gateway, &["chat_gateway_errors_total", "code=\"bad_json\""]) >= 1.0, "{gateway}");
    let receiver = http_get(topology.gateway_addr(1), "/metrics").await.1;
    assert!(metric(&receiver, &["chat_gateway_frames_out_total"]) >= 1.0, "{receiver}");
    assert!(metric(&receiver, &["chat_gateway_publish_to_deliver_seconds_count"]) >= 1.0, "{receiver}");

    let room_service = http_get(topology.room_service_metrics_addr(0), "/metrics").await.1;
    assert!(
        metric(&room_service, &["chat_room_service_events_published_total", "kind=\"message\""]) >= 1.0,
        "{room_service}"
    );
    assert!(
        metric(&room_service, &["chat_room_service_events_received_total"]) >= 3.0,
        "two joins and a message: {room_service}"
    );
    assert_eq!(metric(&room_service, &["chat_room_service_streams"]), 2.0, "one stream per gateway: {room_service}");
    assert!(metric(&room_service, &["chat_room_service_publish_to_receive_seconds_count"]) >= 1.0, "{room_service}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_tells_browsers_to_reconnect_and_ends_in_time() {
    let mut topology = Topology::start(1, 2).await;
    let mut leaving = topology.client(0).await;
    leaving.join("general", "ada").await;
    let mut staying = topology.client(1).await;
    staying.join("general", "bob").await;

    let started = tokio::time::Instant::now();
    topology.stop_gateway(0).await; // waits for run() to return
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3 + 5), "drain is bounded by drain_secs; took {took:?}");

    let notice = leaving.next_of("reconnect").await;
    assert_eq!(notice["type"], "reconnect");
    let close = loop {
        match leaving.next_message().await {
            Some(Message::Close(close)) => break close,
            Some(_) => {}
            None => panic!("closed without a close frame"),
        }
    };
    assert_eq!(close.map(|c| c.code), Some(CloseCode::Restart), "close code 1012");

    let left = staying.next_leave_of("ada").await;
    assert_eq!(left["reason"], "disconnected", "the drain reports its browsers' departure, not their expiry");
    let mut grpc = topology.grpc(0).await;
    grpc.send(SendRequest { room: "general".into(), text: "after the drain".into(), ..Default::default() })
        .await
        .expect("send");
    assert_eq!(staying.next_where(|f| f["type"] == "message").await["text"], "after the drain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_with_no_events_for_its_ttl_is_forgotten() {
    let topology = Topology::start_with(1, 0, |config| config.room_ttl_secs = 1).await;
    let mut grpc = topology.grpc(0).await;
    let post = SendRequest { room: "idle".into(), text: "anyone?".into(), ..Default::default() };
    grpc.send(post).await.expect("send");
    let rooms = grpc.list_rooms(ListRoomsRequest {}).await.expect("ListRooms").into_inner().rooms;
    assert_eq!(rooms.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["idle"]);

    let grpc = &grpc;
    eventually("the idle room is forgotten", || async move {
        let mut grpc = grpc.clone();
        let rooms = grpc.list_rooms(ListRoomsRequest {}).await.expect("ListRooms").into_inner().rooms;
        rooms.is_empty()
    })
    .await;
    let history =
        topology.grpc(0).await.history(HistoryRequest { room: "idle".into(), limit: 10 }).await.expect("History");
    let history = history.into_inner();
    assert!(history.events.is_empty(), "history expired with the room: {history:?}");
    assert_eq!(history.last_seq, 0);
}
