//! Members a moderator removed (a kick or ban: a presence leave with
//! reason `kicked` or `banned`, applied by the room-service for the whole
//! room): each local listener that was that member is dropped from the
//! feed and told, through its own queue, so its session leaves the room
//! too and answers the browser's later frames for it with `not_joined`.

use std::sync::Arc;

use chat_proto::LeaveReason;
use chat_proto::v1::MemberLeft;
use tokio::sync::mpsc;

use super::{Delivery, Feed};
use crate::frame::{ServerFrame, encode};

impl Feed {
    /// Drops the listeners of members that `leaves` says a moderator removed.
    pub(super) fn removed(&self, leaves: &[MemberLeft]) {
        let removed: Vec<(&str, &str)> = leaves
            .iter()
            .filter(|l| l.reason == LeaveReason::Kicked.as_str() || l.reason == LeaveReason::Banned.as_str())
            .filter_map(|l| l.member.as_ref().map(|m| (m.member_id.as_str(), l.reason.as_str())))
            .collect();
        if removed.is_empty() {
            return;
        }
        let epoch = self.epoch();
        self.listeners().retain(|conn, listener| {
            let Some((_, reason)) = removed.iter().find(|(id, _)| **id == *listener.member_id) else {
                return true;
            };
            tracing::info!(room = %self.room, conn, member = %listener.member_id, reason, "removed by a moderator");
            let frame = encode(&ServerFrame::Left { room: &self.room, reason: Some(reason) });
            let delivery = Delivery {
                room: Arc::clone(&self.room),
                epoch: Arc::clone(&epoch),
                seq: 0,
                from: None,
                frame,
                resync: false,
                removed: true,
            };
            // A full queue: the session is closed as too slow anyway.
            if let Err(mpsc::error::TrySendError::Full(_)) = listener.queue.try_send(Arc::new(delivery)) {
                listener.too_slow.notify_one();
            }
            false
        });
    }
}
