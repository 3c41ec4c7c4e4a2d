//! Heartbeats: what keeps this gateway's members of a room present at the
//! room-service while their browsers stay connected.
//!
//! The feed's task (`stream.rs`) ticks [`heartbeat_timer`] and calls
//! [`send_heartbeats`], which sends the feed's members in chunks of
//! [`HEARTBEAT_CHUNK`]. Members the room-service answers it does not know
//! (their presence ran out while it could not be reached, or Redis started
//! over empty) are joined again with `restore`, so nobody is told they
//! joined: they never left.

use std::sync::Arc;
use std::time::Duration;

use chat_proto::v1::{HeartbeatRequest, JoinRequest, Member};

use super::Feed;
use crate::limits::HEARTBEAT_CHUNK;
use crate::upstream::RoomServices;

/// The feed's heartbeat clock. After a stall (a busy runtime, a stream
/// that took long to reopen) the ticks it missed are not fired back to
/// back — each would be a heartbeat call for every member — but the next
/// comes one period after the late one.
pub(super) fn heartbeat_timer(every: Duration) -> tokio::time::Interval {
    let mut timer = tokio::time::interval(every);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    timer
}

pub(super) fn send_heartbeats(feed: &Arc<Feed>, services: &Arc<RoomServices>, gateway: &Arc<str>) {
    tokio::spawn(send_heartbeat(Arc::clone(feed), Arc::clone(services), Arc::clone(gateway)));
}

/// Keeps this gateway's members of the room present; joins again any the
/// room-service forgot (their presence ran out while it could not be reached).
async fn send_heartbeat(feed: Arc<Feed>, services: Arc<RoomServices>, gateway: Arc<str>) {
    let room = feed.room.to_string();
    let members = feed.members();
    for chunk in members.chunks(HEARTBEAT_CHUNK) {
        let request = HeartbeatRequest {
            room: room.clone(),
            gateway: gateway.to_string(),
            member_ids: chunk.iter().map(|l| l.member_id.to_string()).collect(),
        };
        let heartbeat = services.call(&room, request, |mut c, r| async move { c.heartbeat(r).await });
        let unknown = match heartbeat.await {
            Ok(reply) => reply.unknown_member_ids,
            Err(status) => {
                tracing::warn!(room, %status, "heartbeat failed");
                return;
            }
        };
        for listener in chunk.iter().filter(|l| unknown.iter().any(|u| **u == *l.member_id)) {
            let member_id = &listener.member_id;
            // Left or disconnected since the list was taken: not a lost member.
            if !feed.has_member(member_id) {
                continue;
            }
            // Put back silently: the member never left, so nobody is told
            // it joined (Redis restarted empty, or it was unreachable for
            // longer than the presence TTL).
            let join = JoinRequest {
                room: room.clone(),
                member: Some(Member {
                    member_id: member_id.to_string(),
                    username: listener.username.to_string(),
                    gateway: gateway.to_string(),
                    joined_at_ms: 0,
                    connection: listener.connection.to_string(),
                    user_id: listener.user_id.to_string(),
                }),
                history_limit: 1,
                restore: true,
                ..JoinRequest::default()
            };
            match services.call(&room, join, |mut c, r| async move { c.join(r).await }).await {
                Ok(_) => tracing::info!(room, %member_id, "joined again a member whose presence had run out"),
                Err(status) => tracing::warn!(room, %member_id, %status, "could not join again"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    #[tokio::test(start_paused = true)]
    async fn a_stalled_heartbeat_fires_once_not_once_per_missed_tick() {
        let every = Duration::from_secs(10);
        let mut heartbeat = heartbeat_timer(every);
        heartbeat.tick().await; // the first tick is immediate
        tokio::time::advance(every * 5 + Duration::from_secs(1)).await; // stalled for five periods
        let mut fired = 0;
        while heartbeat.tick().now_or_never().is_some() {
            fired += 1;
        }
        assert_eq!(fired, 1, "one heartbeat for the stall, not one per missed period");
    }
}
