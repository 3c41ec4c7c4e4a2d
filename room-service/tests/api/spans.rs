//! Each call's log lines name the call, its room and its caller (a span per
//! RPC), so two calls at once can be told apart in the logs.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use chat_proto::v1::{JoinRequest, Member, SendRequest, SubscribeRequest};
use tracing_subscriber::EnvFilter;

use crate::support::{RoomService, eventually};

/// Everything logged, as the binary's formatter writes it (no colours).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).lines().map(str::to_owned).collect()
    }

    /// The lines that contain `text`.
    fn with(&self, text: &str) -> Vec<String> {
        self.lines().into_iter().filter(|line| line.contains(text)).collect()
    }
}

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the room-service's tasks run on it too, so the subscriber set
// for this thread sees their lines (and no other test's).
#[tokio::test(flavor = "current_thread")]
async fn a_calls_lines_carry_its_rpc_room_and_caller() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("room_service=debug"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _logging = tracing::subscriber::set_default(subscriber);

    let room_service = RoomService::start(|_| {}).await;
    let mut grpc = room_service.grpc().await;
    let mut stream = grpc
        .subscribe(SubscribeRequest { room: "general".into(), gateway: "gw-7".into(), ..Default::default() })
        .await
        .expect("subscribes")
        .into_inner();
    for (id, name) in [("m-ada", "ada"), ("m-bob", "bob")] {
        let member =
            Member { member_id: id.into(), username: name.into(), gateway: "gw-7".into(), ..Default::default() };
        grpc.join(JoinRequest { room: "general".into(), member: Some(member), ..Default::default() })
            .await
            .expect("joins");
    }
    let post = |member: &str, text: &str| SendRequest {
        room: "general".into(),
        member_id: member.into(),
        text: text.into(),
        ..Default::default()
    };
    let (mut as_ada, mut as_bob) = (grpc.clone(), grpc.clone());
    let (ada, bob) = tokio::join!(as_ada.send(post("m-ada", "hi")), as_bob.send(post("m-bob", "yo")));
    let (ada, bob) = (ada.expect("ada's send").into_inner(), bob.expect("bob's send").into_inner());
    let seq_of = |reply: &chat_proto::v1::SendResponse| reply.event.as_ref().map_or(0, |e| e.seq);

    // Each send's lines, the broker's included, are in its own span.
    for (member, seq) in [("m-ada", seq_of(&ada)), ("m-bob", seq_of(&bob))] {
        let span = format!("send{{room=\"general\" member=\"{member}\"}}");
        let stored = logs.with(&format!("message stored seq={seq} "));
        assert!(stored.len() == 1 && stored[0].contains(&span), "{member}'s stored line is in {span}: {stored:?}");
        let published: Vec<String> =
            logs.with("published to Redis").into_iter().filter(|line| line.ends_with(&format!(" seq={seq}"))).collect();
        assert!(published.len() == 1 && published[0].contains(&span), "{member}'s broker line too: {published:?}");
    }
    let joining = logs.with("member joining");
    assert!(
        joining.iter().any(|l| l.contains("join{room=\"general\" member=\"m-bob\" gateway=\"gw-7\"}")),
        "{joining:?}"
    );

    // The stream's task logs in the Subscribe span, to its end.
    let subscribe = "subscribe{room=\"general\" gateway=\"gw-7\"}";
    let opened = logs.with("stream opened");
    assert!(opened.len() == 1 && opened[0].contains(subscribe), "{opened:?}");
    assert!(stream.message().await.expect("an event").is_some(), "the stream delivers");
    drop(stream);
    let logs = &logs;
    eventually("the stream's end is logged", || async move { !logs.with("stream closed").is_empty() }).await;
    let closed = logs.with("stream closed");
    assert!(closed[0].contains(subscribe), "{closed:?}");
}
