//! What tools and orchestrators ask a room-service: health, for the
//! service and for the server as a whole, following its broker; and
//! reflection, so grpcurl needs no `.proto` file.

use chat_proto::v1::ListRoomsRequest;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::support::{RoomService, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_broker_for_the_service_and_the_server() {
    let mut room_service = RoomService::start(|_| {}).await;
    let channel = room_service.channel().await;
    let status = |service: &'static str| {
        let mut health = HealthClient::new(channel.clone());
        async move {
            let request = HealthCheckRequest { service: service.into() };
            health.check(request).await.map(|r| r.into_inner().status).unwrap_or(-1)
        }
    };
    for service in ["chat.v1.RoomService", ""] {
        assert_eq!(status(service).await, ServingStatus::Serving as i32, "{service:?} while Redis answers");
    }
    let mut grpc = room_service.grpc().await;
    grpc.list_rooms(ListRoomsRequest {}).await.expect("serves while Redis answers");

    room_service.redis.stop().await;
    for service in ["chat.v1.RoomService", ""] {
        eventually(&format!("{service:?} NOT_SERVING without Redis"), || async {
            status(service).await == ServingStatus::NotServing as i32
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services_for_grpcurl() {
    let room_service = RoomService::start(|_| {}).await;
    let mut reflection = ServerReflectionClient::new(room_service.channel().await);
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
