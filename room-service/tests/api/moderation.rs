//! Moderation over gRPC, on Redis and embedded alike: the first joiner owns
//! the room, owners make moderators, moderators mute, kick and ban;
//! refusals change nothing; bans hold by user for every member of theirs;
//! mutes hold in the message step until they run out; the audit log says
//! who did what.

use chat_proto::v1::room_event::Kind;
use chat_proto::v1::room_service_client::RoomServiceClient;
use chat_proto::v1::{
    AuditLogRequest, JoinRequest, JoinResponse, Member, MembersRequest, ModerateRequest, Person, RoomEvent, SendRequest,
};
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::support::{RoomService, eventually, member};

type Grpc = RoomServiceClient<Channel>;

async fn join_as(grpc: &mut Grpc, room: &str, member: Member) -> Result<JoinResponse, Status> {
    grpc.join(JoinRequest { room: room.into(), member: Some(member), ..Default::default() })
        .await
        .map(|r| r.into_inner())
}

/// `actor` (a name; "" for the operator) does `action` to user `u-<target>`.
fn request(actor: &str, action: &str, target: &str) -> ModerateRequest {
    ModerateRequest {
        room: "general".into(),
        actor: Some(match actor {
            "" => Person::default(),
            name => Person { user_id: format!("u-{name}"), name: name.into() },
        }),
        action: action.into(),
        target_user_id: format!("u-{target}"),
        ..Default::default()
    }
}

fn code_of(status: &Status) -> &str {
    status.metadata().get(chat_proto::ERROR_CODE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("")
}

async fn send(grpc: &mut Grpc, name: &str, text: &str) -> Result<(), Status> {
    let request = SendRequest {
        room: "general".into(),
        member_id: format!("m-{name}"),
        user_id: format!("u-{name}"),
        text: text.into(),
        ..Default::default()
    };
    grpc.send(request).await.map(drop)
}

async fn member_ids(grpc: &mut Grpc) -> Vec<String> {
    let page = grpc.members(MembersRequest { room: "general".into(), ..Default::default() }).await.expect("members");
    page.into_inner().members.into_iter().map(|m| m.member_id).collect()
}

async fn last_seq(grpc: &mut Grpc) -> u64 {
    let room = grpc.get_room(chat_proto::v1::GetRoomRequest { room: "general".into(), ..Default::default() });
    room.await.expect("room").into_inner().last_seq
}

async fn moderation_in_room(service: &RoomService) {
    let mut grpc = service.grpc().await;
    let ada = join_as(&mut grpc, "general", member("ada")).await.expect("ada joins");
    assert_eq!(ada.role, "owner", "the first joiner owns the room");
    for name in ["bob", "cy"] {
        let joined = join_as(&mut grpc, "general", member(name)).await.expect("joins");
        assert_eq!(joined.role, "member", "{name}");
    }

    // A member may not moderate, and a refusal changes nothing.
    let before = last_seq(&mut grpc).await;
    let mut mute = request("bob", "mute", "cy");
    mute.duration_secs = 60;
    let refused = grpc.moderate(mute).await.expect_err("bob is no moderator");
    assert_eq!((refused.code(), code_of(&refused)), (Code::PermissionDenied, "not_moderator"));
    let role = ModerateRequest { role: "moderator".into(), ..request("cy", "role", "bob") };
    let refused = grpc.moderate(role).await.expect_err("only the owner makes moderators");
    assert_eq!(code_of(&refused), "not_moderator");
    send(&mut grpc, "cy", "still here").await.expect("cy is not muted");
    let bad: [(&str, ModerateRequest); 6] = [
        ("an unknown action", request("ada", "smite", "bob")),
        ("a mute without a duration", request("ada", "mute", "bob")),
        ("a mute over 30 days", ModerateRequest { duration_secs: 2_592_001, ..request("ada", "mute", "bob") }),
        ("a reason over 200 characters", ModerateRequest { reason: "x".repeat(201), ..request("ada", "kick", "bob") }),
        ("the owner as target", request("", "ban", "ada")),
        ("an unknown role", ModerateRequest { role: "king".into(), ..request("ada", "role", "bob") }),
    ];
    for (case, bad) in bad {
        let refused = grpc.moderate(bad).await.expect_err(case);
        assert_eq!((refused.code(), code_of(&refused)), (Code::InvalidArgument, "bad_moderation"), "{case}");
    }
    let refused = grpc.moderate(request("ada", "kick", "dee")).await.expect_err("dee is not in the room");
    assert_eq!(code_of(&refused), "not_in_room");
    assert_eq!(last_seq(&mut grpc).await, before + 1, "only cy's message was stored");

    // The owner makes cy a moderator; cy's next join says so.
    let made = grpc.moderate(ModerateRequest { role: "moderator".into(), ..request("ada", "role", "cy") }).await;
    let notice = made.expect("the owner makes moderators").into_inner().event.expect("stored");
    let Some(Kind::Moderation(n)) = &notice.kind else { panic!("a moderation notice: {notice:?}") };
    assert_eq!((n.action.as_str(), n.role.as_str()), ("role", "moderator"));
    assert_eq!(join_as(&mut grpc, "general", member("cy")).await.expect("joins again").role, "moderator");

    // A mute holds in the message step until it runs out.
    let mute = ModerateRequest { duration_secs: 1, reason: "flooding".into(), ..request("cy", "mute", "bob") };
    let muted = grpc.moderate(mute).await.expect("a moderator mutes").into_inner().event.expect("stored");
    let Some(Kind::Moderation(n)) = &muted.kind else { panic!("a moderation notice") };
    assert!(n.until_ms > muted.ts_ms, "a mute says when it ends: {n:?}");
    let refused = send(&mut grpc, "bob", "hello?").await.expect_err("bob is muted");
    assert_eq!((refused.code(), code_of(&refused)), (Code::FailedPrecondition, "muted"));
    let until = refused.metadata().get(chat_proto::MUTED_UNTIL_HEADER).expect("until").to_str().expect("ascii");
    assert_eq!(until, n.until_ms.to_string());
    let grpc2 = grpc.clone();
    eventually("bob's mute to run out", || {
        let mut grpc = grpc2.clone();
        async move { send(&mut grpc, "bob", "back").await.is_ok() }
    })
    .await;

    // A ban removes every member of the user's and refuses their joins.
    join_as(&mut grpc, "general", Member { member_id: "m-bob-tab2".into(), ..member("bob") }).await.expect("tab 2");
    let banned = grpc.moderate(ModerateRequest { reason: "spam".into(), ..request("cy", "ban", "bob") }).await;
    let banned = banned.expect("a moderator bans").into_inner().event.expect("stored");
    let Some(Kind::Moderation(n)) = &banned.kind else { panic!("a moderation notice") };
    assert_eq!(n.removed, 2, "both of bob's tabs");
    let members = member_ids(&mut grpc).await;
    assert!(!members.iter().any(|m| m.starts_with("m-bob")), "bob is out: {members:?}");
    for tab in ["m-bob", "m-bob-tab3"] {
        let refused = join_as(&mut grpc, "general", Member { member_id: tab.into(), ..member("bob") }).await;
        let refused = refused.expect_err("banned");
        assert_eq!((refused.code(), code_of(&refused)), (Code::PermissionDenied, "banned"), "{tab}");
    }
    assert!(!member_ids(&mut grpc).await.iter().any(|m| m.starts_with("m-bob")), "a refused join changes nothing");
    let refused = grpc.moderate(request("cy", "ban", "ada")).await.expect_err("nobody acts on the owner");
    assert_eq!(code_of(&refused), "bad_moderation");

    // The operator may do anything; an unban lets bob back; a kick removes
    // him and he may join again.
    grpc.moderate(request("", "unban", "bob")).await.expect("the operator unbans");
    join_as(&mut grpc, "general", member("bob")).await.expect("unbanned, bob joins");
    grpc.moderate(request("ada", "kick", "bob")).await.expect("the owner kicks");
    assert!(!member_ids(&mut grpc).await.contains(&"m-bob".to_owned()), "kicked");
    join_as(&mut grpc, "general", member("bob")).await.expect("a kicked user may join again");

    // The audit log: who did what, newest first.
    let log = grpc.audit_log(AuditLogRequest { room: "general".into(), ..Default::default() }).await;
    let entries: Vec<RoomEvent> = log.expect("the audit log").into_inner().entries;
    let seen: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| match &e.kind {
            Some(Kind::Moderation(n)) => (
                n.action.clone(),
                n.actor.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
                n.target.as_ref().map(|t| t.user_id.clone()).unwrap_or_default(),
            ),
            other => panic!("not a moderation entry: {other:?}"),
        })
        .collect();
    let expected = [
        ("kick", "ada", "u-bob"),
        ("unban", "operator", "u-bob"),
        ("ban", "cy", "u-bob"),
        ("mute", "cy", "u-bob"),
        ("role", "ada", "u-cy"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.iter().map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into())).collect();
    assert_eq!(seen, expected);
    let page = grpc.audit_log(AuditLogRequest { room: "general".into(), limit: 2, before_seq: 0 }).await;
    let page = page.expect("a page").into_inner();
    assert_eq!(page.entries.len(), 2);
    let rest = grpc.audit_log(AuditLogRequest { room: "general".into(), limit: 10, before_seq: page.next_before_seq });
    assert_eq!(rest.await.expect("the rest").into_inner().entries.len(), 3, "pages do not overlap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_on_redis() {
    moderation_in_room(&RoomService::start(|_| {}).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moderation_embedded() {
    moderation_in_room(&RoomService::start(|config| config.redis_url = None).await).await;
}
