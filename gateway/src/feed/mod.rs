//! One room's events on this gateway: one upstream Subscribe stream, shared
//! by every local browser in the room.
//!
//! The feed task holds the stream to the room's current room-service. Each
//! event is turned into a JSON frame once and the same bytes are queued for
//! every local listener. A listener whose queue is full is a browser that
//! cannot keep up: it is dropped from the feed and its session closes with
//! 4008, instead of the gateway buffering without bound. Presence events are
//! gathered in the room's [`PresenceWindow`] and go out as at most one
//! `presence` frame per window. When the stream
//! breaks, the feed subscribes again — on the next room-service if that one is
//! gone — resuming after the last sequence number it saw, so nothing is lost.
//! The feed also sends the heartbeats that keep its listeners present.
//!
//! An inbox room's feed (`inbox.rs`) is the same stream with less: its
//! listeners are not members (no joins, heartbeats or presence), each
//! update goes only to the listeners of the user it names, and since
//! updates are not stored, a stream opened again tells every listener to
//! resync (a [`Delivery`] with `resync`) instead of replaying.
//!
//! Parts: this file holds the feed's listeners and hands each event to
//! them (`deliver`, `fan_out_to`); `stream.rs` is the task that keeps the
//! upstream stream open and feeds events in; `heartbeat.rs` keeps the
//! listeners present at the room-service and joins again any it forgot.

mod heartbeat;
mod removed;
mod stream;

pub(crate) use stream::run;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{InboxUpdate, RoomEvent, SessionMoved};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::frame::{EventView, encode};
use crate::metrics::GatewayMetrics;
use crate::presence::PresenceWindow;

/// A room event ready to write to browsers: made once per event and shared
/// by every local listener of the room.
#[derive(Debug)]
pub(crate) struct Delivery {
    pub room: Arc<str>,
    pub epoch: Arc<str>,
    /// 0 for ephemeral events (presence, typing).
    pub seq: u64,
    /// For typing: who is typing, so they don't see themselves.
    pub from: Option<Arc<str>>,
    pub frame: Utf8Bytes,
    /// Inbox feeds only: updates may have been missed (the stream was
    /// opened again); the session sends a fresh `rooms` snapshot. No frame.
    pub resync: bool,
    /// A moderator removed this listener from the room (`removed.rs`): the
    /// session drops the room and writes `frame` (a `left` with the reason).
    pub removed: bool,
}

/// One local browser connection, as every feed it listens on sees it:
/// made once per connection and shared by its listeners, so a listener
/// costs a feed two pointers, not a copy of all this.
#[derive(Debug)]
pub(crate) struct Recipient {
    pub member_id: Arc<str>,
    /// The person behind the member: what joins carry, and whose inbox
    /// updates this connection gets.
    pub user_id: Arc<str>,
    /// The connection, as room-services know it (`Member::connection`).
    pub connection: Arc<str>,
    pub queue: mpsc::Sender<Arc<Delivery>>,
    /// Notified when a feed dropped the connection for being too slow.
    pub too_slow: Notify,
    /// Notified when its session was resumed on another connection.
    pub moved: Notify,
}

/// One local browser connection in the room, under the name it joined with
/// (empty on an inbox feed, whose listeners are not members).
#[derive(Debug, Clone)]
pub(crate) struct Listener {
    pub recipient: Arc<Recipient>,
    pub username: Arc<str>,
}

impl std::ops::Deref for Listener {
    type Target = Recipient;

    fn deref(&self) -> &Recipient {
        &self.recipient
    }
}

#[derive(Debug)]
pub(crate) struct Feed {
    /// Signs the file URLs in the messages it delivers.
    signer: crate::files::urls::Signer,
    room: Arc<str>,
    /// An inbox room's feed: no members, updates per user, resync on reopen.
    inbox: bool,
    listeners: Mutex<HashMap<u64, Listener>>,
    /// The last (epoch, seq) this gateway has seen for the room.
    position: Mutex<(Arc<str>, u64)>,
    ready: watch::Sender<bool>,
    stop: CancellationToken,
}

impl Feed {
    pub(crate) fn new(room: &str, signer: crate::files::urls::Signer) -> Arc<Self> {
        Arc::new(Self {
            signer,
            room: Arc::from(room),
            inbox: chat_proto::people::is_inbox(room),
            listeners: Mutex::new(HashMap::new()),
            position: Mutex::new((Arc::from(""), 0)),
            ready: watch::channel(false).0,
            stop: CancellationToken::new(),
        })
    }

    fn listeners(&self) -> MutexGuard<'_, HashMap<u64, Listener>> {
        self.listeners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn add(&self, conn: u64, listener: Listener) {
        self.listeners().insert(conn, listener);
    }

    /// Removes a listener; true when none are left.
    pub(crate) fn remove(&self, conn: u64) -> bool {
        let mut listeners = self.listeners();
        listeners.remove(&conn);
        listeners.is_empty()
    }

    /// The room's name, shared.
    pub(crate) fn room(&self) -> &Arc<str> {
        &self.room
    }

    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }

    /// Waits until the upstream stream is open (or `limit` passes).
    pub(crate) async fn wait_ready(&self, limit: Duration) -> bool {
        let mut ready = self.ready.subscribe();
        matches!(tokio::time::timeout(limit, ready.wait_for(|r| *r)).await, Ok(Ok(_)))
    }

    /// Takes the stream's starting point as the feed's position, when the feed
    /// has none yet: a stream that breaks before its first event then resumes
    /// from there. Only the stream moves the position, never a join: a join's
    /// snapshot can be ahead of events still on their way to other listeners.
    fn start_at(&self, start: Option<(String, u64)>) {
        let mut position = self.position.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((epoch, seq)) = start
            && position.0.is_empty()
        {
            *position = (Arc::from(epoch.as_str()), seq);
        }
    }

    /// Whether `member_id` still has a connection in this room here.
    fn has_member(&self, member_id: &str) -> bool {
        self.listeners().values().any(|l| &*l.member_id == member_id)
    }

    /// Drops the listeners whose sessions moved to another connection and
    /// tells their sessions to close.
    fn moved(&self, moved: &[SessionMoved]) {
        self.listeners().retain(|conn, listener| {
            let gone = moved.iter().any(|m| *m.member_id == *listener.member_id && *m.connection == *listener.connection);
            if gone {
                tracing::info!(room = %self.room, conn, member = %listener.member_id, "session resumed on another connection; closing this one");
                listener.moved.notify_one();
            }
            !gone
        });
    }

    /// Queues one event for every local listener; returns how many got it.
    fn deliver(&self, event: &RoomEvent, metrics: &GatewayMetrics) -> usize {
        if let Some(Kind::Inbox(update)) = &event.kind {
            return self.deliver_update(update, metrics);
        }
        let Some(view) = EventView::of(event, &self.signer) else {
            return 0;
        };
        let epoch = {
            let mut position = self.position.lock().unwrap_or_else(PoisonError::into_inner);
            if event.seq > 0 {
                if *position.0 == *event.epoch && event.seq <= position.1 {
                    return 0; // seen already (a replay overlapping what we had)
                }
                *position = (Arc::from(event.epoch.as_str()), event.seq);
            }
            Arc::clone(&position.0)
        };
        let from = match &event.kind {
            Some(Kind::Typing(t)) => Some(Arc::from(t.member_id.as_str())),
            _ => None,
        };
        self.fan_out(
            Delivery {
                room: Arc::clone(&self.room),
                epoch,
                seq: event.seq,
                from,
                frame: encode(&view),
                resync: false,
                removed: false,
            },
            metrics,
        )
    }

    /// Queues an inbox update for the listeners of the user it names only.
    fn deliver_update(&self, update: &InboxUpdate, metrics: &GatewayMetrics) -> usize {
        let Some(frame) = crate::inbox::update(update) else {
            return 0;
        };
        let delivery = Delivery {
            room: Arc::clone(&self.room),
            epoch: self.epoch(),
            seq: 0,
            from: None,
            frame,
            resync: false,
            removed: false,
        };
        self.fan_out_to(delivery, |listener| *listener.user_id == *update.user_id, metrics)
    }

    /// Tells every listener of an inbox feed that updates may have been missed.
    fn resync(&self, metrics: &GatewayMetrics) -> usize {
        let delivery = Delivery {
            room: Arc::clone(&self.room),
            epoch: self.epoch(),
            seq: 0,
            from: None,
            frame: Utf8Bytes::default(),
            resync: true,
            removed: false,
        };
        self.fan_out_to(delivery, |_| true, metrics)
    }

    /// Queues a presence frame for every local listener.
    fn deliver_presence(&self, window: &mut PresenceWindow, metrics: &GatewayMetrics) -> usize {
        let Some(frame) = window.take(&self.room) else {
            return 0;
        };
        let epoch = Arc::clone(&self.position.lock().unwrap_or_else(PoisonError::into_inner).0);
        self.fan_out(
            Delivery { room: Arc::clone(&self.room), epoch, seq: 0, from: None, frame, resync: false, removed: false },
            metrics,
        )
    }

    fn fan_out(&self, delivery: Delivery, metrics: &GatewayMetrics) -> usize {
        self.fan_out_to(delivery, |_| true, metrics)
    }

    /// Queues `delivery` for the listeners `wanted` picks; a listener whose
    /// queue is full is dropped and its session closed (4008).
    fn fan_out_to(&self, delivery: Delivery, wanted: impl Fn(&Listener) -> bool, metrics: &GatewayMetrics) -> usize {
        let delivery = Arc::new(delivery);
        let mut delivered = 0;
        self.listeners().retain(|conn, listener| {
            if !wanted(listener) {
                return true;
            }
            match listener.queue.try_send(Arc::clone(&delivery)) {
                Ok(()) => {
                    delivered += 1;
                    true
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(room = %self.room, conn, "browser too slow: queue full, disconnecting it (4008)");
                    listener.too_slow.notify_one();
                    metrics.slow_consumers.increment(1);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        delivered
    }

    fn members(&self) -> Vec<Listener> {
        self.listeners().values().cloned().collect()
    }

    fn epoch(&self) -> Arc<str> {
        Arc::clone(&self.position.lock().unwrap_or_else(PoisonError::into_inner).0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_proto::v1::UserRoom;

    fn listener(user_id: &str, queue: mpsc::Sender<Arc<Delivery>>) -> Listener {
        let recipient = Recipient {
            member_id: Arc::from(user_id),
            user_id: Arc::from(user_id),
            connection: Arc::from(user_id),
            queue,
            too_slow: Notify::new(),
            moved: Notify::new(),
        };
        Listener { recipient: Arc::new(recipient), username: Arc::from(user_id) }
    }

    #[test]
    fn an_inbox_update_goes_only_to_the_listeners_of_its_user_and_a_resync_to_all() {
        let feed = Feed::new("inbox.3", crate::files::urls::Signer::new(b"test"));
        let metrics = GatewayMetrics::new("gw-test");
        let (ada, mut to_ada) = mpsc::channel(4);
        let (bob, mut to_bob) = mpsc::channel(4);
        let (bob_phone, mut to_bob_phone) = mpsc::channel(4);
        feed.add(1, listener("ada", ada));
        feed.add(2, listener("bob", bob));
        feed.add(3, listener("bob", bob_phone));
        let update = InboxUpdate {
            user_id: "bob".into(),
            room: Some(Box::new(UserRoom { room: "general".into(), ..UserRoom::default() })),
            reason: "read".into(),
        };
        let event =
            RoomEvent { room: "inbox.3".into(), kind: Some(Kind::Inbox(Box::new(update))), ..RoomEvent::default() };
        assert_eq!(feed.deliver(&event, &metrics), 2, "both of bob's connections");
        assert!(to_ada.try_recv().is_err(), "not ada's");
        for queue in [&mut to_bob, &mut to_bob_phone] {
            let delivery = queue.try_recv().expect("bob's update");
            assert!(delivery.frame.as_str().starts_with(r#"{"type":"inbox","reason":"read""#), "{}", delivery.frame);
        }
        assert_eq!(feed.resync(&metrics), 3);
        assert!(to_ada.try_recv().expect("a resync").resync);
    }
}
