//! Who joined and left a room, gathered into at most one `presence` frame
//! per room every [`PRESENCE_EVERY`].
//!
//! Room-services publish a presence event per batch of joins and leaves. A
//! room filling up can produce dozens a second, and sending each to every
//! browser in it costs frames in proportion to members × joins. The room's
//! feed adds each event to its [`PresenceWindow`]; the first change after a
//! quiet spell goes out at once (a small room feels instant), later ones wait
//! for the window to close and go out together. A frame names at most
//! [`LISTED_MAX`] joins and as many leaves, and counts them all, so its size
//! stays bounded whatever the storm; a page that needs the full list asks
//! for it with `members`.

use axum::extract::ws::Utf8Bytes;
use chat_proto::v1::{Member, PresenceDiff};

use crate::frame::{LeaveView, MemberView, ServerFrame, encode};
use crate::limits::LISTED_MAX;

/// The presence changes of one room not yet sent to its browsers.
#[derive(Debug, Default)]
pub(crate) struct PresenceWindow {
    joins: Vec<Member>,
    leaves: Vec<(Member, String)>,
    joined: u32,
    left: u32,
    member_count: u32,
    pending: bool,
}

impl PresenceWindow {
    /// Whether there are changes to send.
    #[cfg(test)]
    pub(crate) fn is_pending(&self) -> bool {
        self.pending
    }

    /// Adds one batch. A member named twice in a window is listed by what
    /// happened last (joined, then left: listed as left), so a browser that
    /// applies the lists ends with the room as it stands.
    /// Members restored silently (the room's presence was lost and put
    /// back) only move the count: a frame with nothing listed. A diff with
    /// only takeovers in it is nothing browsers see.
    pub(crate) fn add(&mut self, diff: PresenceDiff) {
        if diff.joins.is_empty() && diff.leaves.is_empty() && diff.restored == 0 {
            return;
        }
        for member in diff.joins {
            self.joined += 1;
            self.leaves.retain(|(left, _)| left.member_id != member.member_id);
            self.joins.retain(|joined| joined.member_id != member.member_id);
            if self.joins.len() < LISTED_MAX {
                self.joins.push(member);
            }
        }
        for left in diff.leaves {
            let Some(member) = left.member else { continue };
            self.left += 1;
            self.joins.retain(|joined| joined.member_id != member.member_id);
            self.leaves.retain(|(gone, _)| gone.member_id != member.member_id);
            if self.leaves.len() < LISTED_MAX {
                self.leaves.push((member, left.reason));
            }
        }
        self.member_count = diff.member_count;
        self.pending = true;
    }

    /// The frame for what was gathered, and an empty window; `None` if
    /// nothing was.
    pub(crate) fn take(&mut self, room: &str) -> Option<Utf8Bytes> {
        if !self.pending {
            return None;
        }
        let window = std::mem::take(self);
        Some(encode(&ServerFrame::Presence {
            room,
            member_count: window.member_count,
            joined: window.joined,
            left: window.left,
            joins: window.joins.iter().map(MemberView::from).collect(),
            leaves: window
                .leaves
                .iter()
                .map(|(member, reason)| LeaveView { member: MemberView::from(member), reason })
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::MemberLeft;

    fn member(n: usize) -> Member {
        Member {
            member_id: format!("g/{n}"),
            username: format!("u{n}"),
            gateway: "g".into(),
            joined_at_ms: 1,
            ..Default::default()
        }
    }

    #[test]
    fn restored_members_only_move_the_count_and_takeovers_show_nothing() {
        let mut window = PresenceWindow::default();
        let moved = chat_proto::v1::SessionMoved { member_id: "s1".into(), connection: "g/r-1".into() };
        window.add(PresenceDiff { moved: vec![moved], member_count: 3, ..Default::default() });
        assert!(!window.is_pending(), "a takeover alone is nothing to show");
        window.add(PresenceDiff { restored: 2, member_count: 3, ..Default::default() });
        let frame = frame(&mut window);
        assert_eq!((frame["joined"].as_u64(), frame["left"].as_u64()), (Some(0), Some(0)));
        assert_eq!(frame["member_count"], 3);
        assert_eq!(frame["joins"].as_array().map(Vec::len), Some(0));
    }

    fn frame(window: &mut PresenceWindow) -> serde_json::Value {
        let text = window.take("r").expect("something to send");
        serde_json::from_str(&text).expect("JSON")
    }

    #[test]
    fn a_quiet_window_sends_nothing() {
        assert!(PresenceWindow::default().take("r").is_none());
    }

    #[test]
    fn batches_merge_into_one_frame_with_the_last_count() {
        let mut window = PresenceWindow::default();
        window.add(PresenceDiff { joins: vec![member(1)], leaves: vec![], member_count: 1, ..Default::default() });
        window.add(PresenceDiff { joins: vec![member(2)], leaves: vec![], member_count: 2, ..Default::default() });
        let frame = frame(&mut window);
        assert_eq!(frame["type"], "presence");
        assert_eq!(frame["member_count"], 2);
        assert_eq!((frame["joined"].as_u64(), frame["joins"].as_array().map(Vec::len)), (Some(2), Some(2)));
        assert!(!window.is_pending(), "taken");
    }

    #[test]
    fn the_last_change_of_a_member_wins() {
        let mut window = PresenceWindow::default();
        window.add(PresenceDiff { joins: vec![member(1)], leaves: vec![], member_count: 1, ..Default::default() });
        let left = MemberLeft { member: Some(member(1)), reason: "disconnected".into() };
        window.add(PresenceDiff { joins: vec![], leaves: vec![left], member_count: 0, ..Default::default() });
        let frame = frame(&mut window);
        assert_eq!(frame["joins"], serde_json::json!([]));
        assert_eq!(frame["leaves"][0]["member_id"], "g/1");
        assert_eq!(frame["leaves"][0]["reason"], "disconnected");
    }

    #[test]
    fn a_storm_lists_a_bounded_number_and_counts_the_rest() {
        let mut window = PresenceWindow::default();
        let joins: Vec<Member> = (0..1000).map(member).collect();
        window.add(PresenceDiff { joins, leaves: vec![], member_count: 1000, ..Default::default() });
        let frame = frame(&mut window);
        assert_eq!(frame["joined"], 1000);
        assert_eq!(frame["joins"].as_array().map(Vec::len), Some(LISTED_MAX));
    }
}
