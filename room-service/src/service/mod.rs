//! The `chat.v1.RoomService` gRPC handlers: validate, build the event, hand
//! it to the broker (joins and leaves through the room's presence batcher),
//! map what went wrong to a status that says why.
//!
//! Each call runs in a span named after its RPC, carrying the room and the
//! calling member or gateway as the request names them, so the lines one
//! call logs (here and in the broker) can be told from another's. Unary
//! calls' spans are at DEBUG, like the lines they hold: at the default
//! `info` filter a call pays one level check for its span and nothing else,
//! and when on, the fields are recorded as borrowed `&str`s. Subscribe's is
//! at INFO (one per stream, and its stream task logs at INFO) and goes with
//! the stream's task for as long as the stream lasts.

use std::sync::Arc;
use std::time::Duration;

use chat_runtime::clock::now_ms;

use chat_proto::v1::room_event::Kind;
use chat_proto::v1::room_service_server::RoomService;
use chat_proto::v1::{
    AttachRequest, Attachment, AuditLogRequest, AuditLogResponse, ChangeResponse, DeleteRequest, Direct, EditRequest,
    GetAttachmentRequest, GetRoomRequest, HeartbeatRequest, HeartbeatResponse, HistoryRequest, HistoryResponse,
    JoinRequest, JoinResponse, LeaveRequest, LeaveResponse, ListRoomsRequest, ListRoomsResponse, MarkReadRequest,
    MarkReadResponse, MemberTyping, MembersRequest, MembersResponse, ModerateRequest, ModerateResponse,
    OpenDirectRequest, ReactRequest, Room, RoomEvent, SearchRequest, SearchResponse, SendBatchRequest,
    SendBatchResponse, SendRequest, SendResponse, SubscribeRequest, TypingRequest, TypingResponse, UserRoomsRequest,
    UserRoomsResponse,
};
use chat_proto::{LeaveReason, MemberId, RoomName, names};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::Instrument;

use crate::attachments::{AttachmentRecords, Records};
use crate::broker::{Broker, BrokerError, Leave, Position, PresenceChange, Stored};
use crate::group_commit::{Committer, Place};
use crate::metrics::RoomServiceMetrics;
use crate::people::{Directory, Inbox, People};
use crate::presence_batch::PresenceBatcher;
use crate::seeding::{Seeder, Unknown};
use crate::store::{Store, StoredMessage};
use crate::stream;

mod attachments;
mod changes;
mod history;
mod moderation;
mod people;
mod presence;
mod resume;
mod send;

pub(crate) use moderation::banned;
pub(crate) use people::refusal;

/// History returned when a request asks for 0 events.
const DEFAULT_HISTORY: usize = 50;
/// The most events one Join returns.
const MAX_HISTORY: usize = 500;
/// The most rooms ListRooms returns.
const MAX_ROOMS_LISTED: usize = 1000;
/// Members per Members page when the request asks for 0, and at most.
const DEFAULT_MEMBERS_PAGE: usize = 100;
const MAX_MEMBERS_PAGE: usize = 500;
/// The most members GetRoom lists (it counts them all).
const MAX_MEMBERS_LISTED: usize = 1000;
/// The longest members cursor accepted: a name and a member id.
const MAX_CURSOR_BYTES: usize = 4 * names::MAX_USERNAME_CHARS + 1 + names::MAX_MEMBER_ID_CHARS * 4;
/// Expired members removed per room per housekeeping round.
const REAP_BATCH: usize = 500;
/// The most member ids one heartbeat may carry.
const MAX_HEARTBEAT_MEMBERS: usize = 10_000;
/// The most events a resuming join is given; a member that missed more
/// gets `recovered: false` (the history holds `HISTORY_LEN` anyway).
const MAX_RESUMED: u64 = 10_000;
/// The longest a leave may keep a member for its session to resume.
const MAX_GRACE_MS: u64 = 3_600_000;
/// Events buffered per Subscribe stream before the stream waits for its
/// gateway (and, past the fanout's bound, refills from history).
const STREAM_BUFFER: usize = 256;

/// The room-service's state shared by every call.
#[derive(Debug)]
pub(crate) struct Rooms<B> {
    broker: Arc<B>,
    /// Attachments' records: the broker's, written through to the store.
    attachments: Arc<AttachmentRecords<B>>,
    presence: Arc<PresenceBatcher<B>>,
    presence_ttl: Duration,
    /// Cancelled when the room-service shuts down, to end open streams.
    stopping: CancellationToken,
    metrics: Arc<RoomServiceMetrics>,
    /// The durable record (DATABASE_URL): older History pages and Search.
    store: Option<Store>,
    /// With a store: seeds rooms Redis lost (see `seeding`).
    seeder: Option<Arc<Seeder<B>>>,
    /// STORE_SYNC: sends are answered once the store committed them.
    committer: Option<Committer>,
    /// People's state (directory + store) and the inbox updates about it.
    inbox: Arc<Inbox<B>>,
    /// Traces are on: sends get spans for their steps (`crate::traced`).
    traced: bool,
    /// EDIT_WINDOW_SECS: how long after sending a message may be edited.
    edit_window: Option<Duration>,
}

impl<B: Broker + Directory> Rooms<B> {
    pub(crate) fn new(
        broker: Arc<B>,
        presence_ttl: Duration,
        stopping: CancellationToken,
        metrics: Arc<RoomServiceMetrics>,
        store: Option<Store>,
        seeder: Option<Arc<Seeder<B>>>,
        committer: Option<Committer>,
    ) -> Self {
        let people = Arc::new(People::new(Arc::clone(&broker), store.clone(), Arc::clone(&metrics)));
        let attachments = Arc::new(AttachmentRecords::new(Arc::clone(&broker), store.clone()));
        let inbox = Arc::new(Inbox::new(Arc::clone(&broker), people, seeder.clone(), Arc::clone(&metrics)));
        let presence =
            PresenceBatcher::new(Arc::clone(&broker), Arc::clone(&metrics), seeder.clone(), Arc::clone(&inbox));
        Self {
            broker,
            attachments,
            presence,
            presence_ttl,
            stopping,
            metrics,
            store,
            seeder,
            committer,
            inbox,
            traced: false,
            edit_window: None,
        }
    }

    /// Attachments' records as Send, Attach and GetAttachment use them,
    /// for the sweep to use the same (see `attachments::write_through`).
    pub(crate) fn attachment_records(&self) -> Arc<AttachmentRecords<B>> {
        Arc::clone(&self.attachments)
    }

    /// Edits allowed only this long after sending (`None`: any time).
    pub(crate) fn edit_window(mut self, window: Option<Duration>) -> Self {
        self.edit_window = window;
        self
    }

    /// With traces on (checked once per send, not per step).
    pub(crate) fn traced(mut self, on: bool) -> Self {
        self.traced = on;
        self
    }

    /// With STORE_SYNC, a place in the committer's queue, taken before the
    /// Redis step (a full queue refuses the send before it is stored).
    fn reserve_commit(&self) -> Result<Option<Place<'_>>, Status> {
        self.committer.as_ref().map(Committer::reserve).transpose()
    }

    /// With STORE_SYNC, waits until the store committed what Redis stored
    /// (repeats too: a retry after a failed commit is committed now).
    async fn commit(place: Option<Place<'_>>, stored: &[Stored]) -> Result<(), Status> {
        let Some(place) = place else { return Ok(()) };
        place.commit(stored.iter().filter_map(|s| StoredMessage::of(&s.event)).collect()).await
    }

    fn expires_at(&self) -> i64 {
        now_ms() + i64::try_from(self.presence_ttl.as_millis()).unwrap_or(i64::MAX / 2)
    }

    /// Counts a failed broker call and turns it into the status to answer with.
    fn failed(&self, error: BrokerError) -> Status {
        if !matches!(error, BrokerError::NotMember(_) | BrokerError::Muted { .. }) {
            self.metrics.broker_errors.increment(1);
        }
        error.into()
    }

    /// Where the room's sequence stands. A room Redis has no epoch for is
    /// seeded first when the store knows it (with a store), so a reader
    /// right after Redis lost the room sees its epoch and last seq.
    async fn position(&self, room: &RoomName) -> Result<Position, Status> {
        let position = self.broker.position(room).await.map_err(|e| self.failed(e))?;
        match &self.seeder {
            Some(seeder) if position.epoch.is_empty() && seeder.seed(room, Unknown::LeaveUnseeded).await? => {
                self.broker.position(room).await.map_err(|e| self.failed(e))
            }
            _ => Ok(position),
        }
    }

    /// Removes members whose presence ran out and tells the room they left.
    pub(crate) async fn reap(&self, room: &RoomName) -> Result<usize, Status> {
        let now = now_ms();
        let expired = self.broker.expired(room, now, REAP_BATCH).await.map_err(|e| self.failed(e))?;
        // All queued at once, so they are applied as one batch.
        let leaves = expired.into_iter().map(|member_id| {
            let leave = Leave {
                member_id,
                reason: LeaveReason::Expired.as_str().into(),
                only_if_expired_at: Some(now),
                ..Leave::default()
            };
            let change = PresenceChange::Leave(leave);
            self.presence.apply(room, change, 0)
        });
        let mut reaped = 0;
        for outcome in futures_util::future::join_all(leaves).await {
            if outcome?.0 {
                reaped += 1;
            }
        }
        if reaped > 0 {
            tracing::info!(%room, reaped, "removed members whose gateway stopped heartbeats");
        }
        Ok(reaped)
    }
}

fn new_event(room: &str, kind: Kind) -> RoomEvent {
    RoomEvent { room: room.to_owned(), ts_ms: now_ms(), kind: Some(kind), ..Default::default() }
}

fn invalid(error: names::Invalid) -> Status {
    Status::invalid_argument(error.message)
}

fn history_limit(requested: u32) -> usize {
    match requested {
        0 => DEFAULT_HISTORY,
        n => (n as usize).min(MAX_HISTORY),
    }
}

impl From<BrokerError> for Status {
    fn from(error: BrokerError) -> Self {
        match error {
            BrokerError::NotMember(_) => Status::failed_precondition(error.to_string()),
            BrokerError::Muted { until_ms } => moderation::muted(until_ms),
            // Not UNAVAILABLE: that tells a gateway this room-service is gone and
            // to retry elsewhere, but every room-service shares the one Redis.
            BrokerError::Redis(_) => Status::internal(error.to_string()),
            BrokerError::Corrupt(_) => Status::internal(error.to_string()),
            BrokerError::Store(_) => Status::internal(error.to_string()),
            // Only after the room was seeded and lost again, more than once.
            BrokerError::Unseeded(_) => Status::internal(error.to_string()),
        }
    }
}

#[tonic::async_trait]
impl<B: Broker + Directory + Records> RoomService for Rooms<B> {
    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        member = request.get_ref().member.as_ref().map_or("", |m| m.member_id.as_str()),
        gateway = request.get_ref().member.as_ref().map_or("", |m| m.gateway.as_str()),
    ))]
    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        self.join_room(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        member = request.get_ref().member_id.as_str(),
    ))]
    async fn leave(&self, request: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        self.leave_room(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        member = request.get_ref().member_id.as_str(),
    ))]
    async fn send(&self, request: Request<SendRequest>) -> Result<Response<SendResponse>, Status> {
        self.send_message(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        member = request.get_ref().member_id.as_str(),
    ))]
    async fn send_batch(&self, request: Request<SendBatchRequest>) -> Result<Response<SendBatchResponse>, Status> {
        self.send_messages(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        member = request.get_ref().member_id.as_str(),
    ))]
    async fn typing(&self, request: Request<TypingRequest>) -> Result<Response<TypingResponse>, Status> {
        let TypingRequest { room, member_id } = request.into_inner();
        let room = RoomName::try_from(room).map_err(invalid)?;
        let member_id = MemberId::try_from(member_id).map_err(invalid)?;
        let member = self
            .broker
            .member(&room, &member_id)
            .await
            .map_err(|e| self.failed(e))?
            .ok_or_else(|| Status::from(BrokerError::NotMember(member_id.to_string())))?;
        let event =
            new_event(&room, Kind::Typing(MemberTyping { member_id: member_id.into(), username: member.username }));
        self.broker.publish_ephemeral(&room, event).await.map_err(|e| self.failed(e))?;
        self.metrics.published("typing");
        Ok(Response::new(TypingResponse {}))
    }

    type SubscribeStream = ReceiverStream<Result<RoomEvent, Status>>;

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        gateway = request.get_ref().gateway.as_str(),
    ))]
    async fn subscribe(&self, request: Request<SubscribeRequest>) -> Result<Response<Self::SubscribeStream>, Status> {
        let request = request.into_inner();
        let room = RoomName::try_from(request.room.as_str()).map_err(invalid)?;
        // Live first, then the position: nothing published in between is missed.
        let subscription = self.broker.subscribe(&room).await.map_err(|e| self.failed(e))?;
        let position = self.position(&room).await?;
        let (start_epoch, start_seq) = (position.epoch.clone(), position.last_seq);
        tracing::info!(after_seq = request.after_seq, "stream opened");
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BUFFER);
        let stream = stream::Stream {
            broker: Arc::clone(&self.broker),
            metrics: Arc::clone(&self.metrics),
            stopping: self.stopping.clone(),
        };
        tokio::spawn(stream.run(room, request, subscription, position, tx).instrument(tracing::Span::current()));
        // Where the stream starts, for a reader that has no position yet.
        let mut response = Response::new(ReceiverStream::new(rx));
        let headers = response.metadata_mut();
        if let Ok(epoch) = start_epoch.parse() {
            headers.insert(chat_proto::EPOCH_HEADER, epoch);
        }
        headers.insert(chat_proto::LAST_SEQ_HEADER, start_seq.into());
        Ok(response)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room = request.get_ref().room.as_str()))]
    async fn history(&self, request: Request<HistoryRequest>) -> Result<Response<HistoryResponse>, Status> {
        self.history_page(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room = request.get_ref().room.as_str()))]
    async fn search(&self, request: Request<SearchRequest>) -> Result<Response<SearchResponse>, Status> {
        self.search_page(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room = request.get_ref().room.as_str()))]
    async fn members(&self, request: Request<MembersRequest>) -> Result<Response<MembersResponse>, Status> {
        let MembersRequest { room, after, limit, user_id } = request.into_inner();
        let room = RoomName::try_from(room).map_err(invalid)?;
        self.check_direct(&room, &user_id).await?;
        if after.len() > MAX_CURSOR_BYTES {
            return Err(Status::invalid_argument(format!(
                "after is {} bytes: a cursor from a previous page is at most {MAX_CURSOR_BYTES}",
                after.len()
            )));
        }
        let limit = match limit {
            0 => DEFAULT_MEMBERS_PAGE,
            n => (n as usize).min(MAX_MEMBERS_PAGE),
        };
        let page = self.broker.members_page(&room, &after, limit).await.map_err(|e| self.failed(e))?;
        Ok(Response::new(MembersResponse { members: page.members, member_count: page.member_count, next: page.next }))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_rooms(&self, _: Request<ListRoomsRequest>) -> Result<Response<ListRoomsResponse>, Status> {
        let rooms = self.broker.rooms(MAX_ROOMS_LISTED).await.map_err(|e| self.failed(e))?;
        Ok(Response::new(ListRoomsResponse { rooms }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room = request.get_ref().room.as_str()))]
    async fn get_room(&self, request: Request<GetRoomRequest>) -> Result<Response<Room>, Status> {
        let GetRoomRequest { room, user_id } = request.into_inner();
        let room = RoomName::try_from(room).map_err(invalid)?;
        self.check_direct(&room, &user_id).await?;
        self.reap(&room).await?;
        let page = self.broker.members_page(&room, "", MAX_MEMBERS_LISTED).await.map_err(|e| self.failed(e))?;
        let position = self.position(&room).await?;
        Ok(Response::new(Room {
            name: room.into(),
            member_count: page.member_count,
            members: page.members,
            last_seq: position.last_seq,
            epoch: position.epoch,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        gateway = request.get_ref().gateway.as_str(),
    ))]
    async fn heartbeat(&self, request: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        let HeartbeatRequest { room, gateway: _, member_ids } = request.into_inner();
        let room = RoomName::try_from(room).map_err(invalid)?;
        if member_ids.len() > MAX_HEARTBEAT_MEMBERS {
            return Err(Status::invalid_argument(format!(
                "{} member ids in one heartbeat: at most {MAX_HEARTBEAT_MEMBERS}",
                member_ids.len()
            )));
        }
        let unknown_member_ids =
            self.broker.heartbeat(&room, &member_ids, self.expires_at()).await.map_err(|e| self.failed(e))?;
        tracing::trace!(members = member_ids.len(), unknown = unknown_member_ids.len(), "heartbeat");
        Ok(Response::new(HeartbeatResponse { unknown_member_ids }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        opener = request.get_ref().opener.as_ref().map_or("", |p| p.user_id.as_str()),
    ))]
    async fn open_direct(&self, request: Request<OpenDirectRequest>) -> Result<Response<Direct>, Status> {
        self.open_direct_room(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = request.get_ref().user_id.as_str()))]
    async fn user_rooms(&self, request: Request<UserRoomsRequest>) -> Result<Response<UserRoomsResponse>, Status> {
        self.user_rooms_page(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        user = request.get_ref().user_id.as_str(),
    ))]
    async fn mark_read(&self, request: Request<MarkReadRequest>) -> Result<Response<MarkReadResponse>, Status> {
        self.mark_room_read(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().attachment.as_ref().map_or("", |a| a.room.as_str()),
        user = request.get_ref().user_id.as_str(),
    ))]
    async fn attach(&self, request: Request<AttachRequest>) -> Result<Response<Attachment>, Status> {
        self.attach_file(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        member = request.get_ref().member_id.as_str(),
        seq = request.get_ref().seq,
    ))]
    async fn edit(&self, request: Request<EditRequest>) -> Result<Response<ChangeResponse>, Status> {
        self.edit_message(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        member = request.get_ref().member_id.as_str(),
        seq = request.get_ref().seq,
    ))]
    async fn delete(&self, request: Request<DeleteRequest>) -> Result<Response<ChangeResponse>, Status> {
        self.delete_message(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        member = request.get_ref().member_id.as_str(),
        seq = request.get_ref().seq,
    ))]
    async fn react(&self, request: Request<ReactRequest>) -> Result<Response<ChangeResponse>, Status> {
        self.react_to_message(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(
        room = request.get_ref().room.as_str(),
        actor = request.get_ref().actor.as_ref().map_or("", |a| a.user_id.as_str()),
        action = request.get_ref().action.as_str(),
    ))]
    async fn moderate(&self, request: Request<ModerateRequest>) -> Result<Response<ModerateResponse>, Status> {
        self.moderate_room(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(room = request.get_ref().room.as_str()))]
    async fn audit_log(&self, request: Request<AuditLogRequest>) -> Result<Response<AuditLogResponse>, Status> {
        self.audit_log_page(request.into_inner()).await.map(Response::new)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(id = request.get_ref().id.as_str()))]
    async fn get_attachment(&self, request: Request<GetAttachmentRequest>) -> Result<Response<Attachment>, Status> {
        self.find_attachment(request.into_inner()).await.map(Response::new)
    }
}
