//! Join and Leave: checked, then queued on the room's presence batcher
//! (which also records joiners in their users' rooms, see
//! `people::joins`). A direct conversation admits only its members; an
//! inbox room admits nobody. Leaving a public room with reason `left`
//! takes it off the user's rooms.

use chat_proto::people::{is_direct, is_inbox};
use chat_proto::v1::{JoinRequest, JoinResponse, LeaveRequest, LeaveResponse};
use chat_proto::{ErrorCode, LeaveReason, MemberId, RoomName, Username, names};
use chat_runtime::clock::now_ms;
use tonic::{Code, Status};

use super::moderation::Role;
use super::people::refusal;
use super::{MAX_GRACE_MS, Rooms, history_limit, invalid};
use crate::broker::{Broker, Leave, PresenceChange};
use crate::people::Directory;

impl<B: Broker + Directory> Rooms<B> {
    pub(super) async fn join_room(&self, request: JoinRequest) -> Result<JoinResponse, Status> {
        let JoinRequest { room, member, history_limit: limit, epoch, after_seq, restore, moderates_everywhere } =
            request;
        let room = RoomName::try_from(room).map_err(invalid)?;
        let mut member = member
            .ok_or_else(|| Status::invalid_argument("member is missing: give member_id, username and gateway"))?;
        MemberId::try_from(member.member_id.as_str()).map_err(invalid)?;
        member.username = Username::try_from(std::mem::take(&mut member.username)).map_err(invalid)?.into();
        if names::check_member_id(&member.gateway).is_err() {
            return Err(Status::invalid_argument(
                "member.gateway must name the gateway (1 to 128 printable characters)",
            ));
        }
        if !member.connection.is_empty() && names::check_member_id(&member.connection).is_err() {
            return Err(Status::invalid_argument(
                "member.connection must name the connection (1 to 128 printable characters) or be empty",
            ));
        }
        if is_inbox(&room) {
            return Err(refusal(Code::InvalidArgument, ErrorCode::BadRoom, "inbox rooms are not joinable"));
        }
        if is_direct(&room) {
            self.check_direct_member(&room, &member.user_id).await?;
        }
        member.joined_at_ms = now_ms();

        tracing::debug!(username = member.username, "member joining");
        let user_id = if member.user_id.is_empty() { member.member_id.clone() } else { member.user_id.clone() };
        let change = PresenceChange::Join { member, expires_at_ms: self.expires_at(), restore };
        let (_, snapshot) = self.presence.apply(&room, change, history_limit(limit)).await?;
        self.metrics.published("joined");
        let missed = match epoch.as_str() {
            "" => None,
            epoch => self.missed(&room, &snapshot.position, epoch, after_seq).await?,
        };
        if !epoch.is_empty() {
            tracing::debug!(after_seq, recovered = missed.is_some(), "member resuming");
        }
        let recovered = missed.is_some();
        let mut history = match missed {
            Some(missed) => missed,
            None => self.newest_messages(&room, &snapshot, history_limit(limit)).await?,
        };
        self.mark_mine(&room, &user_id, &mut history, false).await?;
        Ok(JoinResponse {
            recovered,
            history,
            members: snapshot.members.clone(),
            epoch: snapshot.position.epoch.clone(),
            last_seq: snapshot.position.last_seq,
            member_count: snapshot.member_count,
            members_next: snapshot.members_next.clone(),
            // A direct conversation has no moderators, whoever opened it.
            role: match is_direct(&room) {
                true => Role::Member,
                false => Role::of(&user_id, &snapshot.owner, &snapshot.moderators, moderates_everywhere),
            }
            .as_str()
            .into(),
        })
    }

    pub(super) async fn leave_room(&self, request: LeaveRequest) -> Result<LeaveResponse, Status> {
        let LeaveRequest { room, member_id, reason, connection, grace_ms } = request;
        let room = RoomName::try_from(room).map_err(invalid)?;
        let id = MemberId::try_from(member_id.as_str()).map_err(invalid)?;
        let Some(reason) = LeaveReason::from_request(&reason) else {
            return Err(Status::invalid_argument(format!(
                "reason {:?} is not one of \"{}\", \"{}\", \"{}\"",
                reason,
                LeaveReason::Left,
                LeaveReason::Disconnected,
                LeaveReason::Timeout
            )));
        };
        if !connection.is_empty() {
            names::check_member_id(&connection).map_err(invalid)?;
        }
        if grace_ms > MAX_GRACE_MS {
            return Err(Status::invalid_argument(format!("grace_ms {grace_ms} is over {MAX_GRACE_MS} (an hour)")));
        }
        // Who the member is, read before they are gone: only for a person
        // leaving a public room on purpose (disconnects keep their rooms,
        // and direct conversations are never left).
        let leaving_user = match reason == LeaveReason::Left && !is_direct(&room) {
            true => self.broker.member(&room, &id).await.map_err(|e| self.failed(e))?.map(|m| m.user_id),
            false => None,
        };
        let leave = Leave {
            member_id,
            reason: reason.as_str().into(),
            connection: Some(connection).filter(|c| !c.is_empty()),
            only_if_expired_at: None,
            detach_until: (grace_ms > 0).then(|| now_ms() + i64::try_from(grace_ms).unwrap_or(0)),
        };
        let change = PresenceChange::Leave(leave);
        let (was_member, _) = self.presence.apply(&room, change, 0).await?;
        if was_member {
            self.metrics.published("left");
            tracing::debug!(%reason, "member left");
            if let Some(user_id) = leaving_user.filter(|u| !u.is_empty()) {
                self.inbox.left(&room, user_id).await;
            }
        }
        Ok(LeaveResponse { was_member })
    }
}
