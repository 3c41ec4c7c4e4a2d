//! Attachments over gRPC on a real room-service: Attach, a Send that posts
//! the attachments (with or without text), the message carrying them on
//! every path (the live stream, History, a resumed stream, a retried
//! Send), GetAttachment, and every refusal with its `chat-error-code`; on
//! Redis and in the embedded mode.

use chat_proto::files::{MAX_ATTACHMENTS, new_attachment_id};
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::room_service_client::RoomServiceClient;
use chat_proto::v1::{
    AttachRequest, Attachment, ChatMessage, GetAttachmentRequest, HistoryRequest, RoomEvent, SendRequest, SendResponse,
    SubscribeRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::support::{PATIENCE, RoomService, join};

type Grpc = RoomServiceClient<Channel>;

/// A stored file as a gateway describes it: an image with a thumbnail
/// when `n` is even, a PDF otherwise.
fn stored(room: &str, n: u8) -> Attachment {
    let image = n.is_multiple_of(2);
    Attachment {
        room: room.into(),
        name: if image { format!("shot {n}.png") } else { format!("report {n}.pdf") },
        content_type: if image { "image/png" } else { "application/pdf" }.into(),
        size: 1000 + u64::from(n),
        width: if image { 1600 } else { 0 },
        height: if image { 900 } else { 0 },
        thumb_width: if image { 400 } else { 0 },
        thumb_height: if image { 225 } else { 0 },
        blob: format!("{n:02x}").repeat(32),
        thumb_blob: if image { format!("{:02x}", n + 100).repeat(32) } else { String::new() },
        ..Default::default()
    }
}

async fn attach(grpc: &mut Grpc, name: &str, attachment: Attachment) -> Result<Attachment, Status> {
    let request = AttachRequest { user_id: format!("u-{name}"), attachment: Some(attachment) };
    grpc.attach(request).await.map(tonic::Response::into_inner)
}

async fn send(
    grpc: &mut Grpc,
    room: &str,
    name: &str,
    client_id: &str,
    text: &str,
    ids: &[String],
) -> Result<SendResponse, Status> {
    let request = SendRequest {
        room: room.into(),
        member_id: format!("m-{name}"),
        text: text.into(),
        client_id: client_id.into(),
        attachment_ids: ids.to_vec(),
        user_id: format!("u-{name}"),
        ..Default::default()
    };
    grpc.send(request).await.map(tonic::Response::into_inner)
}

fn message(event: &RoomEvent) -> &ChatMessage {
    match &event.kind {
        Some(Kind::Message(m)) => m,
        other => panic!("not a message: {other:?}"),
    }
}

fn code(status: &Status) -> &str {
    status.metadata().get(chat_proto::ERROR_CODE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn assert_refused(result: Result<impl std::fmt::Debug, Status>, grpc_code: Code, error: &str, case: &str) {
    let status = result.expect_err(case);
    assert_eq!(status.code(), grpc_code, "{case}: {status:?}");
    assert_eq!(code(&status), error, "{case}: {status:?}");
}

/// The next message on a Subscribe stream (presence events skipped).
async fn next_message(stream: &mut tonic::Streaming<RoomEvent>, case: &str) -> RoomEvent {
    loop {
        let event = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap_or_else(|_| panic!("{case}: no event within {PATIENCE:?}"))
            .expect("the stream is fine")
            .expect("the stream is open");
        if matches!(event.kind, Some(Kind::Message(_))) {
            return event;
        }
    }
}

async fn posted_attachments_travel_with_the_message(service: &RoomService) {
    let mut grpc = service.grpc().await;
    join(&mut grpc, "general", "ada").await;
    join(&mut grpc, "general", "bob").await;
    let request = SubscribeRequest { room: "general".into(), gateway: "gw-1".into(), ..Default::default() };
    let mut live = grpc.subscribe(request).await.expect("Subscribe").into_inner();

    // Something before it, for a stream to resume after.
    send(&mut grpc, "general", "bob", "c-0", "hello", &[]).await.expect("sends");
    assert!(message(&next_message(&mut live, "hello").await).attachments.is_empty(), "a message with none");

    let image = attach(&mut grpc, "ada", stored("general", 2)).await.expect("attaches an image");
    let pdf = attach(&mut grpc, "ada", stored("general", 3)).await.expect("attaches a pdf");
    assert!(chat_proto::files::is_attachment_id(&image.id), "{}", image.id);
    assert_ne!(image.id, pdf.id);
    assert_eq!((image.user_id.as_str(), image.room.as_str()), ("u-ada", "general"));
    assert!(image.uploaded_ms > 0);
    let expected = stored("general", 2);
    assert_eq!(
        (&image.name, &image.blob, image.thumb_width, image.width),
        (&expected.name, &expected.blob, 400, 1600),
        "the metadata as given"
    );

    // Pdf first: the message keeps the order sent. No text: allowed.
    let ids = vec![pdf.id.clone(), image.id.clone()];
    let sent = send(&mut grpc, "general", "ada", "c-1", "", &ids).await.expect("sends");
    let event = sent.event.expect("the stored event");
    let want = vec![pdf.clone(), image.clone()];
    assert_eq!(message(&event).attachments, want, "the answer");
    assert_eq!(message(&event).text, "");

    assert_eq!(message(&next_message(&mut live, "the live stream").await).attachments, want, "the live stream");
    let history = grpc
        .history(HistoryRequest { room: "general".into(), limit: 10, ..Default::default() })
        .await
        .expect("History")
        .into_inner();
    let last = history.events.iter().rfind(|e| e.seq == event.seq).expect("in history");
    assert_eq!(message(last).attachments, want, "History");
    let resume = SubscribeRequest {
        room: "general".into(),
        gateway: "gw-2".into(),
        after_seq: event.seq - 1,
        epoch: event.epoch.clone(),
    };
    let mut resumed = grpc.subscribe(resume).await.expect("Subscribe").into_inner();
    assert_eq!(message(&next_message(&mut resumed, "a resumed stream").await).attachments, want, "a resumed stream");

    // A retry of the same send (its answer was lost) gets the stored message.
    let retry = send(&mut grpc, "general", "ada", "c-1", "", &ids).await.expect("a retry");
    assert!(retry.repeat, "stored once");
    assert_eq!(retry.event.expect("the event").seq, event.seq);
    // Any other message may not post them again.
    let twice = send(&mut grpc, "general", "ada", "c-2", "again", &ids[..1]).await;
    assert_refused(twice, Code::InvalidArgument, "bad_attachment", "posted twice");

    let found = grpc.get_attachment(GetAttachmentRequest { id: image.id.clone(), user_id: "u-bob".into() }).await;
    assert_eq!(found.expect("bob is in general").into_inner(), image, "GetAttachment for a member");
    let operator = grpc.get_attachment(GetAttachmentRequest { id: pdf.id.clone(), user_id: String::new() }).await;
    assert_eq!(operator.expect("the operator's view").into_inner(), pdf);
}

async fn every_bad_attachment_is_refused(service: &RoomService) {
    let mut grpc = service.grpc().await;
    join(&mut grpc, "general", "ada").await;
    join(&mut grpc, "general", "bob").await;
    join(&mut grpc, "random", "ada").await;
    let ada_general = attach(&mut grpc, "ada", stored("general", 4)).await.expect("attaches");
    let ada_random = attach(&mut grpc, "ada", stored("random", 5)).await.expect("attaches");
    let bob_general = attach(&mut grpc, "bob", stored("general", 6)).await.expect("attaches");
    let unknown = new_attachment_id(42);
    let many: Vec<String> = (0..=MAX_ATTACHMENTS as u128).map(new_attachment_id).collect();

    let sends: [(&str, Vec<String>); 6] = [
        ("an unknown id", vec![unknown.clone()]),
        ("another room's", vec![ada_random.id.clone()]),
        ("another user's", vec![bob_general.id.clone()]),
        ("11 ids", many),
        ("a malformed id", vec!["at-XYZ".into()]),
        ("one id twice", vec![ada_general.id.clone(), ada_general.id.clone()]),
    ];
    for (case, ids) in sends {
        let refused = send(&mut grpc, "general", "ada", &format!("c-{case}"), "look", &ids).await;
        assert_refused(refused, Code::InvalidArgument, "bad_attachment", case);
    }
    // A refused send claimed nothing: a good id named with a bad one is
    // still free for the next message.
    let mixed = vec![ada_general.id.clone(), unknown.clone()];
    let refused = send(&mut grpc, "general", "ada", "c-mixed", "look", &mixed).await;
    assert_refused(refused, Code::InvalidArgument, "bad_attachment", "a good id beside an unknown one");
    let mut no_user = SendRequest {
        room: "general".into(),
        member_id: "m-ada".into(),
        attachment_ids: vec![ada_general.id.clone()],
        ..Default::default()
    };
    assert_refused(grpc.send(no_user.clone()).await, Code::InvalidArgument, "bad_attachment", "no user_id");
    // A sender who is not a member stores nothing, and claims nothing.
    no_user.member_id = "m-cy".into();
    no_user.user_id = "u-ada".into();
    assert_refused(grpc.send(no_user).await, Code::FailedPrecondition, "", "not a member");
    send(&mut grpc, "general", "ada", "c-ok", "", std::slice::from_ref(&ada_general.id)).await.expect("then posts it");

    let mut outsider = stored("general", 8);
    assert_refused(attach(&mut grpc, "cy", outsider.clone()).await, Code::PermissionDenied, "forbidden", "cy attaches");
    outsider.room = "nowhere".into();
    assert_refused(attach(&mut grpc, "ada", outsider).await, Code::PermissionDenied, "forbidden", "a room not hers");
    let mut bad = Vec::new();
    for (case, tweak) in [
        ("a path for a name", (|a: &mut Attachment| a.name = "../etc/passwd".into()) as fn(&mut Attachment)),
        ("a bidi name", |a| a.name = "invoice\u{202E}fdp.exe".into()),
        ("no name", |a| a.name = " ".into()),
        ("a blob that is no hash", |a| a.blob = "../../secret".into()),
        ("a thumb blob that is no hash", |a| a.thumb_blob = "nope".into()),
        ("a thumbnail without its size", |a| a.thumb_width = 0),
        ("no content type", |a| a.content_type = String::new()),
        ("a bad room name", |a| a.room = "no such room!".into()),
    ] {
        let mut attachment = stored("general", 10);
        tweak(&mut attachment);
        bad.push((case, attachment));
    }
    for (case, attachment) in bad {
        assert_refused(attach(&mut grpc, "ada", attachment).await, Code::InvalidArgument, "bad_attachment", case);
    }
    let no_file = grpc.attach(AttachRequest { user_id: "u-ada".into(), attachment: None }).await;
    assert_refused(no_file, Code::InvalidArgument, "bad_attachment", "no attachment");

    let cy = grpc.get_attachment(GetAttachmentRequest { id: ada_general.id.clone(), user_id: "u-cy".into() }).await;
    assert_refused(cy, Code::PermissionDenied, "forbidden", "GetAttachment for a non-member");
    let none = grpc.get_attachment(GetAttachmentRequest { id: unknown, user_id: String::new() }).await;
    assert_refused(none, Code::NotFound, "bad_attachment", "GetAttachment of an unknown id");
    let malformed = grpc.get_attachment(GetAttachmentRequest { id: "x".into(), user_id: String::new() }).await;
    assert_refused(malformed, Code::InvalidArgument, "bad_attachment", "GetAttachment of a malformed id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_attachments_travel_with_the_message_on_redis() {
    posted_attachments_travel_with_the_message(&RoomService::start(|_| {}).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_attachments_travel_with_the_message_embedded() {
    posted_attachments_travel_with_the_message(&RoomService::start(|c| c.redis_url = None).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_attachment_is_refused_on_redis() {
    every_bad_attachment_is_refused(&RoomService::start(|_| {}).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_attachment_is_refused_embedded() {
    every_bad_attachment_is_refused(&RoomService::start(|c| c.redis_url = None).await).await;
}

/// With a store: the attachments are archived with their message, and
/// History and Search served from PostgreSQL after Redis lost everything
/// give them back as the live message showed them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_come_back_from_the_store_after_redis_is_flushed() {
    let postgres = chat_testkit::PostgresServer::start().await;
    let service = crate::archive::archiving(&postgres, 1000).await;
    let store = room_service::store::Store::connect(&postgres.url()).await.expect("the store");
    let mut grpc = service.grpc().await;
    join(&mut grpc, "general", "ada").await;
    let _serving = crate::archive::serve_room(&mut grpc, "general").await;
    send(&mut grpc, "general", "ada", "c-0", "before", &[]).await.expect("sends");
    let image = attach(&mut grpc, "ada", stored("general", 2)).await.expect("attaches");
    let pdf = attach(&mut grpc, "ada", stored("general", 3)).await.expect("attaches");
    let ids = vec![image.id.clone(), pdf.id.clone()];
    let sent = send(&mut grpc, "general", "ada", "c-1", "the quarterly report", &ids).await.expect("sends");
    let seq = sent.event.expect("stored").seq;
    crate::archive::archived_up_to(&store, "general", seq, PATIENCE).await;

    let mut redis = service.redis.connection().await;
    redis::cmd("FLUSHALL").query_async::<()>(&mut redis).await.expect("FLUSHALL");

    let want = vec![image, pdf];
    let history = grpc
        .history(HistoryRequest { room: "general".into(), limit: 10, ..Default::default() })
        .await
        .expect("History from the store")
        .into_inner();
    let found = history.events.iter().find(|e| e.seq == seq).expect("the message in History");
    assert_eq!(message(found).attachments, want, "History from the store");
    let before = history.events.iter().find(|e| e.seq == seq - 1).expect("the one before");
    assert!(message(before).attachments.is_empty(), "a message without any has none");

    let search =
        chat_proto::v1::SearchRequest { room: "general".into(), query: "quarterly".into(), ..Default::default() };
    let hits = grpc.search(search).await.expect("Search").into_inner().hits;
    let hit = hits.first().and_then(|h| h.event.as_ref()).expect("one hit");
    assert_eq!(message(hit).attachments, want, "Search");
}
