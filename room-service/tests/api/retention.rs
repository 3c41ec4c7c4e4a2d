//! How long a room is kept: a room with no stored event for `ROOM_TTL_SECS`
//! is forgotten, history, sequence and all.

use chat_proto::v1::{HistoryRequest, ListRoomsRequest, SendRequest};

use crate::support::{RoomService, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_with_no_events_for_its_ttl_is_forgotten() {
    let room_service = RoomService::start(|config| config.room_ttl_secs = 1).await;
    let mut grpc = room_service.grpc().await;
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
    let history = grpc
        .clone()
        .history(HistoryRequest { room: "idle".into(), limit: 10, ..Default::default() })
        .await
        .expect("History");
    let history = history.into_inner();
    assert!(history.events.is_empty(), "history expired with the room: {history:?}");
    assert_eq!(history.last_seq, 0);
}
