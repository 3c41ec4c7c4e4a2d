//! The rooms this gateway has local browsers in, each with its [`Feed`].
//!
//! A session attaches to a room before it joins (so the room's stream is
//! open and nothing published after the join is missed) and detaches when it
//! leaves or disconnects. The first listener of a room starts its feed; the
//! last one stops it, which ends the upstream stream. Inbox rooms
//! (`inbox.rs`) have feeds here too, one per inbox shard with local users:
//! each session listens on its user's from start to end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chat_proto::RoomName;
use chat_proto::people::is_inbox;

use tracing::Instrument;

use crate::feed::{self, Feed, Listener};
use crate::limits::READY_WAIT;
use crate::metrics::GatewayMetrics;
use crate::upstream::RoomServices;

#[derive(Debug)]
pub(crate) struct Hub {
    feeds: Mutex<HashMap<String, Arc<Feed>>>,
    services: Arc<RoomServices>,
    gateway: Arc<str>,
    heartbeat_every: Duration,
    metrics: Arc<GatewayMetrics>,
    /// Signs the file URLs of the messages this gateway shows.
    signer: crate::files::urls::Signer,
}

impl Hub {
    pub(crate) fn new(
        services: Arc<RoomServices>,
        gateway: &str,
        heartbeat_every: Duration,
        metrics: Arc<GatewayMetrics>,
        signer: crate::files::urls::Signer,
    ) -> Self {
        Self {
            feeds: Mutex::new(HashMap::new()),
            services,
            gateway: Arc::from(gateway),
            heartbeat_every,
            metrics,
            signer,
        }
    }

    pub(crate) fn signer(&self) -> &crate::files::urls::Signer {
        &self.signer
    }

    pub(crate) fn services(&self) -> &Arc<RoomServices> {
        &self.services
    }

    /// Adds a listener to the room and waits for the room's stream; false
    /// (listener removed again) when no room-service could be reached.
    pub(crate) async fn attach(&self, room: &RoomName, conn: u64, listener: Listener) -> bool {
        let feed = self.add(room, conn, listener);
        let ready = feed.wait_ready(READY_WAIT).await;
        if !ready {
            self.detach(room, conn);
        }
        ready
    }

    /// Adds a listener to the room, starting its feed if it is the first,
    /// without waiting for the stream: the feed, to wait on
    /// ([`Feed::wait_ready`]). How a session follows its user's inbox room
    /// from the moment it starts; [`Self::detach`] ends it.
    pub(crate) fn add(&self, room: &str, conn: u64, listener: Listener) -> Arc<Feed> {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        let feed = feeds.entry(room.to_string()).or_insert_with(|| {
            // `chat_gateway_rooms` counts rooms, not the inbox feeds.
            if !is_inbox(room) {
                self.metrics.rooms.increment(1.0);
            }
            let feed = Feed::new(room, self.signer.clone());
            let run = feed::run(
                Arc::clone(&feed),
                Arc::clone(&self.services),
                Arc::clone(&self.gateway),
                self.heartbeat_every,
                Arc::clone(&self.metrics),
            );
            // A room's stream logs under its own span, not the joining
            // connection's, since it outlives that connection.
            tokio::spawn(run.instrument(tracing::debug_span!(parent: None, "feed", %room)));
            feed
        });
        feed.add(conn, listener);
        Arc::clone(feed)
    }

    pub(crate) fn detach(&self, room: &str, conn: u64) {
        let mut feeds = self.feeds.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(feed) = feeds.get(room)
            && feed.remove(conn)
        {
            feed.stop();
            feeds.remove(room);
            if !is_inbox(room) {
                self.metrics.rooms.decrement(1.0);
            }
        }
    }
}
