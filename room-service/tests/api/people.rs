//! People over gRPC on a real room-service: direct conversations opened
//! from either side, their refusals (with the `chat-error-code` metadata a
//! gateway passes on), only members getting into one, unread counts and
//! read markers, mentions, inbox updates on a user's inbox room, the
//! embedded mode, and, with a store, markers and conversations coming back
//! from PostgreSQL after Redis was flushed.

use chat_proto::people::inbox_room;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::room_service_client::RoomServiceClient;
use chat_proto::v1::{
    Direct, GetRoomRequest, HistoryRequest, InboxUpdate, JoinRequest, LeaveRequest, MarkReadRequest, MembersRequest,
    OpenDirectRequest, Person, SendRequest, SubscribeRequest, UserRoom, UserRoomsRequest,
};
use chat_testkit::PostgresServer;
use room_service::store::Store;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::archive::{archived_up_to, archiving, serve_room};
use crate::support::{PATIENCE, RoomService, eventually, member};

type Grpc = RoomServiceClient<Channel>;

async fn join(grpc: &mut Grpc, room: &str, name: &str) -> Result<(), Status> {
    let request = JoinRequest { room: room.into(), member: Some(member(name)), ..Default::default() };
    grpc.join(request).await.map(|_| ())
}

async fn open(grpc: &mut Grpc, opener: &str, with: &[&str]) -> Result<Direct, Status> {
    let request = OpenDirectRequest {
        opener: Some(Person { user_id: format!("u-{opener}"), name: opener.into() }),
        with: with.iter().map(|w| w.to_string()).collect(),
    };
    grpc.open_direct(request).await.map(tonic::Response::into_inner)
}

async fn send(grpc: &mut Grpc, room: &str, name: &str, text: &str) -> u64 {
    let request =
        SendRequest { room: room.into(), member_id: format!("m-{name}"), text: text.into(), ..Default::default() };
    grpc.send(request).await.expect("sent").into_inner().event.expect("stored").seq
}

async fn rooms(grpc: &mut Grpc, name: &str) -> Vec<UserRoom> {
    let request = UserRoomsRequest { user_id: format!("u-{name}"), limit: 0 };
    grpc.user_rooms(request).await.expect("UserRooms").into_inner().rooms
}

async fn entry(grpc: &mut Grpc, name: &str, room: &str) -> Option<UserRoom> {
    rooms(grpc, name).await.into_iter().find(|r| r.room == room)
}

async fn mark(grpc: &mut Grpc, name: &str, room: &str, seq: u64) -> Result<UserRoom, Status> {
    let request = MarkReadRequest { user_id: format!("u-{name}"), room: room.into(), seq };
    grpc.mark_read(request).await.map(|r| r.into_inner().room.expect("the entry"))
}

/// The `chat-error-code` a refusal carries.
fn code(status: &Status) -> &str {
    status.metadata().get(chat_proto::ERROR_CODE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn assert_refused(result: Result<impl std::fmt::Debug, Status>, grpc_code: Code, error: &str, case: &str) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), grpc_code, "{case}: {status:?}");
    assert_eq!(code(&status), error, "{case}: {status:?}");
}

/// ada, bob and cy have joined "general" (so they exist), and ada has
/// opened a conversation with bob.
async fn three_people(grpc: &mut Grpc) -> String {
    for name in ["ada", "bob", "cy"] {
        join(grpc, "general", name).await.expect("joins general");
    }
    open(grpc, "ada", &["u-bob"]).await.expect("opens").room
}

async fn a_conversation_is_one_room_from_either_side(service: &RoomService) {
    let mut grpc = service.grpc().await;
    for name in ["ada", "bob"] {
        join(&mut grpc, "general", name).await.expect("joins");
    }
    let first = open(&mut grpc, "ada", &["u-bob"]).await.expect("ada opens");
    assert!(first.created);
    assert_eq!(first.room, chat_proto::people::direct_room(&["u-ada", "u-bob"]));
    let names: Vec<&str> = first.members.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ada", "bob"]);
    let second = open(&mut grpc, "bob", &["u-ada"]).await.expect("bob opens");
    assert_eq!((second.room.as_str(), second.created), (first.room.as_str(), false));

    for name in ["ada", "bob"] {
        let dm = entry(&mut grpc, name, &first.room).await.expect("the conversation is in their rooms");
        assert_eq!((dm.kind.as_str(), dm.members.len(), dm.unread), ("direct", 2, 0), "{name}");
        join(&mut grpc, &first.room, name).await.expect("a member joins it");
    }
    let seq = send(&mut grpc, &first.room, "ada", "hello bob").await;
    let bob = entry(&mut grpc, "bob", &first.room).await.expect("bob's");
    assert_eq!((bob.last_seq, bob.read_seq, bob.unread), (seq, 0, 1));
    assert_eq!(
        bob.last.and_then(|e| e.kind).map(|k| matches!(k, Kind::Message(m) if m.text == "hello bob")),
        Some(true)
    );
    // The sender has read their own message, off the reply path.
    eventually("ada's marker on her message", || {
        let mut grpc = grpc.clone();
        let room = first.room.clone();
        async move { entry(&mut grpc, "ada", &room).await.is_some_and(|e| e.read_seq == seq && e.unread == 0) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_is_one_room_from_either_side_on_redis() {
    a_conversation_is_one_room_from_either_side(&RoomService::start(|_| {}).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_is_one_room_from_either_side_embedded() {
    let service = RoomService::start(|config| config.redis_url = None).await;
    a_conversation_is_one_room_from_either_side(&service).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_conversations_are_refused_with_bad_direct() {
    let service = RoomService::start(|_| {}).await;
    let mut grpc = service.grpc().await;
    join(&mut grpc, "general", "ada").await.expect("joins");
    let nine: Vec<String> = (1..=8).map(|i| format!("u-p{i}")).collect();
    let nine: Vec<&str> = nine.iter().map(String::as_str).collect();
    let cases: [(&str, &[&str]); 6] = [
        ("nobody else", &[]),
        ("herself only", &["u-ada"]),
        ("nine users", &nine),
        ("a user nobody has", &["u-ghost"]),
        ("an empty id", &[""]),
        ("an id with a newline", &["u-b\nob"]),
    ];
    for (case, with) in cases {
        assert_refused(open(&mut grpc, "ada", with).await, Code::InvalidArgument, "bad_direct", case);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_its_members_get_into_a_conversation() {
    let service = RoomService::start(|_| {}).await;
    let mut grpc = service.grpc().await;
    let dm = three_people(&mut grpc).await;

    assert_refused(join(&mut grpc, &dm, "cy").await, Code::PermissionDenied, "forbidden", "cy joins");
    let unknown = format!("dm-{}", "0".repeat(40));
    assert_refused(join(&mut grpc, &unknown, "ada").await, Code::PermissionDenied, "forbidden", "a dm nobody opened");
    let inbox = inbox_room("u-ada");
    assert_refused(join(&mut grpc, &inbox, "ada").await, Code::InvalidArgument, "bad_room", "an inbox");
    let history = |user: &str| HistoryRequest { room: dm.clone(), user_id: user.into(), ..Default::default() };
    assert_refused(grpc.history(history("u-cy")).await, Code::PermissionDenied, "forbidden", "cy's history");
    let members = MembersRequest { room: dm.clone(), user_id: "u-cy".into(), ..Default::default() };
    assert_refused(grpc.members(members).await, Code::PermissionDenied, "forbidden", "cy's members");
    let get = GetRoomRequest { room: dm.clone(), user_id: "u-cy".into() };
    assert_refused(grpc.get_room(get).await, Code::PermissionDenied, "forbidden", "cy's room");

    grpc.history(history("u-bob")).await.expect("a member reads it");
    grpc.history(history("")).await.expect("the operator reads it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_counts_messages_after_the_marker_which_never_moves_back() {
    let service = RoomService::start(|_| {}).await;
    let mut grpc = service.grpc().await;
    let dm = three_people(&mut grpc).await;
    join(&mut grpc, &dm, "ada").await.expect("joins");
    let mut last = 0;
    for n in 1..=5 {
        last = send(&mut grpc, &dm, "ada", &format!("message {n}")).await;
    }
    let bob = entry(&mut grpc, "bob", &dm).await.expect("bob's");
    assert_eq!((bob.unread, bob.read_seq, bob.last_seq), (5, 0, last));

    let marked = mark(&mut grpc, "bob", &dm, 3).await.expect("marks");
    assert_eq!((marked.read_seq, marked.unread), (3, 2));
    let back = mark(&mut grpc, "bob", &dm, 1).await.expect("a lower seq is no error");
    assert_eq!((back.read_seq, back.unread), (3, 2), "the marker never moves back");
    assert_eq!(entry(&mut grpc, "bob", &dm).await.expect("bob's").unread, 2);

    assert_refused(mark(&mut grpc, "bob", &dm, last + 1).await, Code::InvalidArgument, "bad_read", "past the end");
    assert_refused(mark(&mut grpc, "cy", &dm, 1).await, Code::InvalidArgument, "bad_read", "not cy's room");
    assert_refused(mark(&mut grpc, "bob", "elsewhere", 0).await, Code::InvalidArgument, "bad_read", "never joined");

    // Joining a public room does not make its history unread; leaving it
    // on purpose takes it off the user's rooms.
    send(&mut grpc, "general", "ada", "before cy looks").await;
    let general = entry(&mut grpc, "cy", "general").await.expect("cy's general");
    assert_eq!(general.unread, 1, "sent after cy joined");
    join(&mut grpc, "lobby", "cy").await.expect("joins lobby");
    assert_eq!(entry(&mut grpc, "cy", "lobby").await.expect("cy's lobby").unread, 0);
    let leave =
        LeaveRequest { room: "lobby".into(), member_id: "m-cy".into(), reason: "left".into(), ..Default::default() };
    grpc.leave(leave).await.expect("leaves");
    assert!(entry(&mut grpc, "cy", "lobby").await.is_none(), "left on purpose: not cy's any more");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_is_counted_until_read() {
    let service = RoomService::start(|_| {}).await;
    let mut grpc = service.grpc().await;
    three_people(&mut grpc).await;
    let plain = send(&mut grpc, "general", "ada", "no one in particular").await;
    let seq = send(&mut grpc, "general", "ada", "look, @Bob!").await;
    assert_eq!(seq, plain + 1);
    eventually("bob's mention counted", || {
        let mut grpc = grpc.clone();
        async move { entry(&mut grpc, "bob", "general").await.is_some_and(|e| e.mentions == 1) }
    })
    .await;
    assert_eq!(entry(&mut grpc, "cy", "general").await.expect("cy's").mentions, 0, "cy was not mentioned");
    let read = mark(&mut grpc, "bob", "general", seq).await.expect("reads");
    assert_eq!((read.mentions, read.unread), (0, 0));
}

/// The next inbox update on `stream`.
async fn next_update(stream: &mut tonic::Streaming<chat_proto::v1::RoomEvent>) -> InboxUpdate {
    loop {
        let event = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("an inbox update in time")
            .expect("the stream stands")
            .expect("not ended");
        if let Some(Kind::Inbox(update)) = event.kind {
            return *update;
        }
    }
}

/// The next inbox update for `user` with `reason` on `stream` (a shard
/// carries other users' updates too, and updates sent from different tasks
/// may come in either order).
async fn next_for(stream: &mut tonic::Streaming<chat_proto::v1::RoomEvent>, user: &str, reason: &str) -> UserRoom {
    loop {
        let update = next_update(stream).await;
        if update.user_id == user && update.reason == reason {
            return *update.room.expect("the entry");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbox_updates_reach_the_users_inbox_room() {
    let service = RoomService::start(|_| {}).await;
    let mut grpc = service.grpc().await;
    for name in ["ada", "bob"] {
        join(&mut grpc, "general", name).await.expect("joins");
    }
    let request = SubscribeRequest { room: inbox_room("u-bob"), gateway: "test".into(), ..Default::default() };
    let mut inbox = grpc.subscribe(request).await.expect("Subscribe").into_inner();

    let dm = open(&mut grpc, "ada", &["u-bob"]).await.expect("opens").room;
    let opened = next_for(&mut inbox, "u-bob", "direct").await;
    assert_eq!((opened.room.as_str(), opened.kind.as_str()), (dm.as_str(), "direct"));

    join(&mut grpc, &dm, "ada").await.expect("joins");
    let seq = send(&mut grpc, &dm, "ada", "hi").await;
    let message = next_for(&mut inbox, "u-bob", "message").await;
    assert_eq!((message.room.as_str(), message.last_seq, message.unread), (dm.as_str(), seq, 1));

    mark(&mut grpc, "bob", &dm, seq).await.expect("reads");
    let read = next_for(&mut inbox, "u-bob", "read").await;
    assert_eq!((read.room.as_str(), read.read_seq, read.unread), (dm.as_str(), seq, 0));

    join(&mut grpc, "lobby", "bob").await.expect("joins lobby");
    assert_eq!(next_for(&mut inbox, "u-bob", "joined").await.room, "lobby");
    let mention = send(&mut grpc, "lobby", "bob", "talking to myself").await;
    join(&mut grpc, "lobby", "ada").await.expect("ada joins lobby");
    send(&mut grpc, "lobby", "ada", "@bob see this").await;
    let mentioned = next_for(&mut inbox, "u-bob", "mention").await;
    assert_eq!((mentioned.room.as_str(), mentioned.mentions, mentioned.last_seq), ("lobby", 1, mention + 1));
    let leave =
        LeaveRequest { room: "lobby".into(), member_id: "m-bob".into(), reason: "left".into(), ..Default::default() };
    grpc.leave(leave).await.expect("leaves");
    assert_eq!(next_for(&mut inbox, "u-bob", "left").await.room, "lobby");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markers_and_conversations_come_back_from_the_store_after_redis_is_flushed() {
    let postgres = PostgresServer::start().await;
    let service = archiving(&postgres, 1000).await;
    let mut grpc = service.grpc().await;
    let dm = three_people(&mut grpc).await;
    let _reading = serve_room(&mut grpc, &dm).await;
    join(&mut grpc, &dm, "ada").await.expect("joins");
    for n in 1..=3 {
        send(&mut grpc, &dm, "ada", &format!("message {n}")).await;
    }
    mark(&mut grpc, "bob", &dm, 2).await.expect("marks");
    let store = Store::connect(&postgres.url()).await.expect("store");
    archived_up_to(&store, &dm, 3, PATIENCE).await;

    let mut redis = service.redis.connection().await;
    redis::cmd("FLUSHALL").query_async::<()>(&mut redis).await.expect("FLUSHALL");

    let bob = entry(&mut grpc, "bob", &dm).await.expect("the conversation is back in bob's rooms");
    assert_eq!((bob.kind.as_str(), bob.members.len()), ("direct", 2));
    assert_eq!((bob.read_seq, bob.last_seq, bob.unread), (2, 3, 1));
    assert!(entry(&mut grpc, "bob", "general").await.is_some(), "and his other rooms");
    // The record is back too: cy is still kept out, bob still let in.
    assert_refused(join(&mut grpc, &dm, "cy").await, Code::PermissionDenied, "forbidden", "cy after the flush");
    join(&mut grpc, &dm, "bob").await.expect("bob joins after the flush");
    let again = open(&mut grpc, "bob", &["u-ada"]).await.expect("opens again");
    assert!(!again.created, "the store still has it");
}
