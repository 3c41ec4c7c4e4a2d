//! What one call may carry: a SendBatch holds 1 to `chat_proto::limits::
//! SEND_BATCH` messages, the bound the gateway batches up to.

use chat_proto::limits::SEND_BATCH;
use chat_proto::v1::{BatchedMessage, JoinRequest, Member, SendBatchRequest};

use crate::support::RoomService;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_holds_one_to_send_batch_messages() {
    let room_service = RoomService::start(|_| {}).await;
    let mut grpc = room_service.grpc().await;
    let member =
        Member { member_id: "m-ada".into(), username: "ada".into(), gateway: "gw-1".into(), ..Default::default() };
    grpc.join(JoinRequest { room: "general".into(), member: Some(member), ..Default::default() }).await.expect("joins");
    let batch = |n: usize| SendBatchRequest {
        room: "general".into(),
        member_id: "m-ada".into(),
        messages: (0..n).map(|i| BatchedMessage { text: format!("m{i}"), ..Default::default() }).collect(),
        ..Default::default()
    };

    let stored = grpc.send_batch(batch(SEND_BATCH)).await.expect("a full batch is stored").into_inner();
    assert_eq!(stored.events.len(), SEND_BATCH);
    for n in [0, SEND_BATCH + 1] {
        let refused = grpc.send_batch(batch(n)).await.expect_err("refused");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{n} messages");
        assert!(refused.message().contains(&format!("send 1 to {SEND_BATCH}")), "{n}: {}", refused.message());
    }
    let history =
        grpc.history(chat_proto::v1::HistoryRequest { room: "general".into(), limit: 100, ..Default::default() }).await;
    assert_eq!(
        history.expect("history").into_inner().last_seq,
        SEND_BATCH as u64,
        "the refused batches stored nothing"
    );
}
