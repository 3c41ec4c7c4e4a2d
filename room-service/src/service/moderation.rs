//! Moderation: who may keep order in a room (its roles), and the
//! `Moderate` and `AuditLog` calls.
//!
//! Roles, mutes and bans live with the room in the broker
//! (`broker::moderation`), where the steps that enforce them read them: the
//! presence step refuses a banned user's join, the message step a muted
//! user's send. A `Moderate` call flows: check the request, read the
//! actor's and target's standing (one read), change the target's standing
//! (one step, which also names the members a kick or ban removes), remove
//! those members through the presence batcher (a leave with reason
//! `kicked`/`banned`, which every gateway sees and drops them for), then
//! store the action as a `ModerationNotice` event in the room's order and
//! keep it in the audit log.

use chat_proto::people::{check_user_id, is_direct};
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{AuditLogRequest, AuditLogResponse, ModerateRequest, ModerateResponse, ModerationNotice, Person};
use chat_proto::{ErrorCode, LeaveReason, RoomName};
use chat_runtime::clock::now_ms;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use super::people::refusal;
use super::{Rooms, invalid, new_event};
use crate::broker::{Broker, Leave, Outgoing, PresenceChange, Standing};
use crate::people::Directory;

/// The longest mute: 30 days.
pub(crate) const MAX_MUTE_SECS: u32 = 30 * 24 * 3600;
/// The longest reason, in characters.
pub(crate) const MAX_REASON_CHARS: usize = 200;
/// Audit entries per page when the request asks for 0, and at most.
const DEFAULT_AUDIT_PAGE: usize = 50;
const MAX_AUDIT_PAGE: usize = 200;
/// The name the operator's actions are shown under.
const OPERATOR: &str = "operator";

/// A user's role in a room, as `joined` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Owner,
    Moderator,
    Member,
}

impl Role {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Moderator => "moderator",
            Self::Member => "member",
        }
    }

    /// `user_id`'s role given the room's owner and moderators, and whether
    /// their gateway says they moderate every room.
    pub(crate) fn of(user_id: &str, owner: &str, moderators: &[String], everywhere: bool) -> Self {
        if user_id.is_empty() {
            Self::Member
        } else if owner == user_id {
            Self::Owner
        } else if everywhere || moderators.iter().any(|m| m == user_id) {
            Self::Moderator
        } else {
            Self::Member
        }
    }
}

/// The refusal of a muted user's send, edit or reaction.
pub(crate) fn muted(until_ms: i64) -> Status {
    let left_secs = ((until_ms - now_ms()).max(0) + 999) / 1000;
    let mut status = refusal(
        Code::FailedPrecondition,
        ErrorCode::Muted,
        format!("a moderator muted you in this room for {left_secs} more seconds; this was not sent"),
    );
    status.metadata_mut().insert(chat_proto::MUTED_UNTIL_HEADER, MetadataValue::from(until_ms));
    status
}

/// The refusal of a banned user's join.
pub(crate) fn banned(room: &str) -> Status {
    refusal(
        Code::PermissionDenied,
        ErrorCode::Banned,
        format!("you are banned from room {room}; a moderator of it can lift the ban"),
    )
}

fn bad(message: impl Into<String>) -> Status {
    refusal(Code::InvalidArgument, ErrorCode::BadModeration, message)
}

fn not_moderator(message: impl Into<String>) -> Status {
    refusal(Code::PermissionDenied, ErrorCode::NotModerator, message)
}

/// A request's action, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Mute,
    Unmute,
    Kick,
    Ban,
    Unban,
    Role,
}

impl Action {
    fn parse(action: &str) -> Result<Self, Status> {
        Ok(match action {
            "mute" => Self::Mute,
            "unmute" => Self::Unmute,
            "kick" => Self::Kick,
            "ban" => Self::Ban,
            "unban" => Self::Unban,
            "role" => Self::Role,
            other => {
                return Err(bad(format!("action {other:?} is not one of mute, unmute, kick, ban, unban, role")));
            }
        })
    }

    const fn as_str(self) -> &'static str {
        match self {
            Self::Mute => "mute",
            Self::Unmute => "unmute",
            Self::Kick => "kick",
            Self::Ban => "ban",
            Self::Unban => "unban",
            Self::Role => "role",
        }
    }
}

impl<B: Broker + Directory> Rooms<B> {
    /// Whether `user_id` may moderate `room`: delete others' messages and
    /// act through `Moderate`. An empty `user_id` is the operator. (A user
    /// who moderates every room by their token is the gateway's to say.)
    pub(crate) async fn may_moderate(&self, room: &RoomName, user_id: &str) -> Result<bool, Status> {
        if user_id.is_empty() {
            return Ok(true);
        }
        if is_direct(room) {
            return Ok(false);
        }
        let roles = self.broker.roles(room, &[user_id]).await.map_err(|e| self.failed(e))?;
        Ok(roles.is_moderator(user_id))
    }

    /// Refuses with `muted` when a moderator muted `user_id` in `room`: for
    /// changes (edits, reactions), which do not pass `message.lua`.
    pub(crate) async fn check_not_muted(&self, room: &RoomName, user_id: &str) -> Result<(), Status> {
        if user_id.is_empty() {
            return Ok(());
        }
        let roles = self.broker.roles(room, &[user_id]).await.map_err(|e| self.failed(e))?;
        match roles.muted.get(user_id) {
            Some(&until_ms) if until_ms > now_ms() => Err(muted(until_ms)),
            _ => Ok(()),
        }
    }

    pub(super) async fn moderate_room(&self, request: ModerateRequest) -> Result<ModerateResponse, Status> {
        let ModerateRequest {
            room,
            actor,
            action,
            target_user_id: target,
            duration_secs,
            reason,
            role,
            actor_moderates_everywhere,
        } = request;
        let room = RoomName::try_from(room).map_err(invalid)?;
        let action = Action::parse(&action)?;
        let actor = actor.unwrap_or_default();
        if !actor.user_id.is_empty() {
            check_user_id(&actor.user_id).map_err(invalid)?;
        }
        if target.is_empty() {
            return Err(bad("user_id is missing: name the user to act on"));
        }
        check_user_id(&target).map_err(|e| bad(e.message))?;
        if reason.chars().count() > MAX_REASON_CHARS {
            return Err(bad(format!(
                "the reason is {} characters: at most {MAX_REASON_CHARS}",
                reason.chars().count()
            )));
        }
        if is_direct(&room) {
            return Err(bad("a direct conversation has no moderators"));
        }
        if target == actor.user_id {
            return Err(bad("you cannot moderate yourself"));
        }
        let standing = match action {
            Action::Mute => {
                if duration_secs == 0 || duration_secs > MAX_MUTE_SECS {
                    return Err(bad(format!(
                        "a mute of {duration_secs} seconds: give a duration of 1 to {MAX_MUTE_SECS} (30 days)"
                    )));
                }
                Standing::Mute { until_ms: now_ms() + i64::from(duration_secs) * 1000 }
            }
            Action::Unmute => Standing::Unmute,
            Action::Kick => Standing::Kick,
            Action::Ban => Standing::Ban,
            Action::Unban => Standing::Unban,
            Action::Role => match role.as_str() {
                "moderator" => Standing::Moderator(true),
                "member" => Standing::Moderator(false),
                other => return Err(bad(format!("role {other:?} is not \"moderator\" or \"member\""))),
            },
        };

        let roles =
            self.broker.roles(&room, &[actor.user_id.as_str(), target.as_str()]).await.map_err(|e| self.failed(e))?;
        if roles.owner == target {
            return Err(bad("nobody may act on the room's owner"));
        }
        let operator = actor.user_id.is_empty();
        let owner_like = operator || actor_moderates_everywhere || roles.owner == actor.user_id;
        let allowed = match action {
            Action::Role => owner_like,
            _ => owner_like || roles.is_moderator(&actor.user_id),
        };
        if !allowed {
            return Err(not_moderator(match action {
                Action::Role => format!("only the owner of room {room} may make and unmake its moderators"),
                _ => format!("you are not a moderator of room {room}"),
            }));
        }
        // A moderator does not act on another moderator; the owner does.
        if !owner_like && roles.is_moderator(&target) {
            return Err(not_moderator("another moderator can only be acted on by the room's owner"));
        }
        // A kick changes no standing: this only finds the target's members.
        let members = self.broker.change_standing(&room, &target, &standing).await.map_err(|e| self.failed(e))?;
        if action == Action::Kick && members.is_empty() {
            return Err(refusal(
                Code::FailedPrecondition,
                ErrorCode::NotInRoom,
                format!("user {target} has no member in room {room}: nobody to kick"),
            ));
        }
        let reason_left = match action {
            Action::Ban => LeaveReason::Banned,
            _ => LeaveReason::Kicked,
        };
        let leaves = members.iter().map(|member_id| {
            let leave = Leave { member_id: member_id.clone(), reason: reason_left.as_str().into(), ..Leave::default() };
            self.presence.apply(&room, PresenceChange::Leave(leave), 0)
        });
        let mut removed = 0;
        for outcome in futures_util::future::join_all(leaves).await {
            if outcome?.0 {
                removed += 1;
            }
        }

        let actor = match operator {
            true => Person { user_id: String::new(), name: OPERATOR.into() },
            false => actor,
        };
        let target_name = self
            .broker
            .profiles(std::slice::from_ref(&target))
            .await
            .map_err(|e| self.failed(e))?
            .into_iter()
            .next()
            .flatten()
            .unwrap_or_else(|| target.clone());
        let notice = ModerationNotice {
            action: action.as_str().into(),
            actor: Some(actor),
            target: Some(Person { user_id: target, name: target_name }),
            reason,
            until_ms: match standing {
                Standing::Mute { until_ms } => until_ms,
                _ => 0,
            },
            role: if action == Action::Role { role } else { String::new() },
            removed,
        };
        let event = new_event(&room, Kind::Moderation(notice));
        let stored = self.append(&room, None, vec![Outgoing { client_id: String::new(), event }]).await?;
        let event =
            stored.into_iter().next().map(|s| s.event).ok_or_else(|| Status::internal("the broker stored nothing"))?;
        self.broker.record_audit(&room, &event).await.map_err(|e| self.failed(e))?;
        self.metrics.published("moderation");
        tracing::info!(%room, action = action.as_str(), seq = event.seq, removed, "moderation action");
        Ok(ModerateResponse { event: Some(event) })
    }

    pub(super) async fn audit_log_page(&self, request: AuditLogRequest) -> Result<AuditLogResponse, Status> {
        let AuditLogRequest { room, limit, before_seq } = request;
        let room = RoomName::try_from(room).map_err(invalid)?;
        let limit = match limit {
            0 => DEFAULT_AUDIT_PAGE,
            n => (n as usize).min(MAX_AUDIT_PAGE),
        };
        // One more than the page, to know whether another follows.
        let mut entries = self.broker.audit(&room, before_seq, limit + 1).await.map_err(|e| self.failed(e))?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next_before_seq = if more { entries.last().map_or(0, |e| e.seq) } else { 0 };
        Ok(AuditLogResponse { entries, next_before_seq })
    }
}
