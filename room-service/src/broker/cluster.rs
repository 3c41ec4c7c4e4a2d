//! The Redis broker on a Redis Cluster: what differs from one Redis.
//!
//! - **Connections**: the redis crate's cluster client, one multiplexed
//!   connection per node, each command routed to the master owning its
//!   slot and re-routed on `MOVED`/`ASK`. Every key and the channel of a room
//!   share the `{room}` hash tag, so the append script and every read touch
//!   one slot.
//! - **Events**: sharded pub/sub. The script `SPUBLISH`es on the room's
//!   channel; only the shard owning the room's slot carries it, so pub/sub
//!   traffic grows with shards instead of being copied to every node.
//! - **Room registry**: one global `chat:rooms` set would be a key in another
//!   slot than the room's (the script would fail with `CROSSSLOT`). Instead
//!   each slot has its own registry set, `chat:rooms:{<tag>}`, where `<tag>`
//!   is a short string chosen to hash to that slot: the script adds the room
//!   to the registry in its own slot. `ListRooms` reads the registries of
//!   every slot range of every master ([`room_names`]).
//! - **Resubscription**: the crate subscribes again by itself after a node
//!   reconnects or the slot map changes, but only to channels it still
//!   tracks. When a slot moves (failover, resharding) the node that lost it
//!   sends `SUNSUBSCRIBE` for its channels and the crate forgets them; the
//!   push handler here notices that for a room this process still reads,
//!   and a task subscribes it again on the slot's new master — checked with
//!   `ROLE`, because right after a failover the crate's slot map may still
//!   name the demoted master, which as a replica accepts `SSUBSCRIBE`
//!   silently and then delivers nothing ([`subscribe_on_owner`]).
//!
//! Events published between losing a subscription and taking it again are
//! not lost: they are in the room's history. Once subscribed again, the
//! room's last stored event is handed to its readers, so streams see the
//! jump in sequence numbers and fill the gap from history at once, even
//! when no later event comes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::streams::StreamRangeReply;
use redis::{ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{Mutex as AsyncMutex, Notify};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::connection::Connection;
use super::keys::{Keys, room_of_channel};
use super::{BrokerResult, Fanout, envelope};

/// The number of hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;
/// Registry sets read per round trip while listing rooms.
const REGISTRY_BATCH: usize = 1024;
/// How long a failed resubscription waits before the next try.
const RESUBSCRIBE_RETRY: Duration = Duration::from_millis(500);
/// How often, and how far apart, a resubscription checks that the slot map
/// names a master before giving up until the next retry.
const OWNER_CHECKS: usize = 20;
const OWNER_CHECK_PAUSE: Duration = Duration::from_millis(50);

/// Connects the command and the pub/sub connections to the cluster at
/// `seeds`; `deliver` receives every event push. The returned guard stops
/// the resubscription task when the broker is dropped.
pub(crate) async fn connect(
    seeds: &[String],
    password: Option<&str>,
    fanout: &Arc<Fanout>,
    subscribing: &Arc<AsyncMutex<()>>,
    deliver: impl Fn(&Fanout, PushInfo) + Send + Sync + 'static,
) -> BrokerResult<(Connection, Connection, DropGuard)> {
    let builder = || {
        let mut builder = ClusterClientBuilder::new(seeds.to_vec())
            .use_protocol(ProtocolVersion::RESP3)
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(5))
            // A failover takes the cluster a few seconds (node timeout plus an
            // election): keep retrying a command's slot that long.
            .retries(12)
            .max_retry_wait(1000);
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            builder = builder.password(password);
        }
        builder
    };
    let commands = builder().build()?.get_async_connection().await?;

    let lost = Arc::new(Lost::default());
    let router = Arc::clone(fanout);
    let noticed = Arc::clone(&lost);
    let pubsub = builder()
        .push_sender(move |push: PushInfo| {
            if push.kind == PushKind::SUnsubscribe {
                noticed.unsubscribed(&router, &push.data);
            }
            deliver(&router, push);
            Ok::<(), std::convert::Infallible>(())
        })
        .build()?
        .get_async_connection()
        .await?;

    let stop = CancellationToken::new();
    tokio::spawn(resubscribe(
        Connection::Cluster(pubsub.clone()),
        Arc::clone(fanout),
        Arc::clone(subscribing),
        lost,
        stop.clone(),
    ));
    Ok((Connection::Cluster(commands), Connection::Cluster(pubsub), stop.drop_guard()))
}

/// Rooms whose subscription the cluster dropped while this process still
/// reads them. Bounded by the number of rooms this process is subscribed to.
#[derive(Debug, Default)]
struct Lost {
    rooms: Mutex<HashSet<String>>,
    wake: Notify,
}

impl Lost {
    /// A `SUNSUBSCRIBE` arrived: ours (the room is idle and gone from the
    /// fanout) or the server's (its slot moved) — only the latter needs a
    /// new subscription.
    fn unsubscribed(&self, fanout: &Fanout, data: &[Value]) {
        let Some(Value::BulkString(channel)) = data.first() else { return };
        let Some(room) = room_of_channel(channel) else { return };
        if fanout.is_live(room) {
            tracing::warn!(room, "Redis Cluster moved the room's slot; subscribing again on its new owner");
            self.rooms.lock().unwrap_or_else(PoisonError::into_inner).insert(room.to_owned());
            self.wake.notify_one();
        }
    }

    fn take(&self) -> Vec<String> {
        self.rooms.lock().unwrap_or_else(PoisonError::into_inner).drain().collect()
    }
}

/// Subscribes lost rooms again until it succeeds or the room goes idle.
async fn resubscribe(
    pubsub: Connection,
    fanout: Arc<Fanout>,
    subscribing: Arc<AsyncMutex<()>>,
    lost: Arc<Lost>,
    stop: CancellationToken,
) {
    loop {
        if stop.run_until_cancelled(lost.wake.notified()).await.is_none() {
            return;
        }
        let mut failed = false;
        {
            let _order = subscribing.lock().await;
            for room in lost.take() {
                if !fanout.is_live(&room) {
                    continue;
                }
                match subscribe_on_owner(&pubsub, &fanout, &room).await {
                    Ok(()) => tracing::info!(room, "subscribed again on the slot's master"),
                    Err(error) => {
                        tracing::warn!(room, %error, "could not subscribe again yet; retrying");
                        lost.rooms.lock().unwrap_or_else(PoisonError::into_inner).insert(room);
                        failed = true;
                    }
                }
            }
        }
        if failed {
            if stop.run_until_cancelled(tokio::time::sleep(RESUBSCRIBE_RETRY)).await.is_none() {
                return;
            }
            lost.wake.notify_one();
        }
    }
}

/// Subscribes `room` again on the master that owns its slot now, then hands
/// the room's last stored event to its readers.
///
/// The crate routes `SSUBSCRIBE` by its slot map, and right after a failover
/// that map may still name the old master: the refresh a `MOVED` triggers
/// asks whichever node it reaches first, which may not have heard of the
/// failover yet. A replica accepts `SSUBSCRIBE` for its master's slots
/// without a `MOVED`, so the subscription would sit on the demoted master and
/// no event would come. Hence: before and after subscribing, the node the
/// map names as the slot's master must say it is one (`ROLE`); while it does
/// not, a keyed command sent to it gets `MOVED` and the crate refreshes its
/// map again.
///
/// Events published while the room had no subscription are in its history:
/// the last stored event, delivered here, shows readers the jump in sequence
/// numbers at once, so they refill from history even when no later event
/// comes (readers drop it if they already have it).
async fn subscribe_on_owner(pubsub: &Connection, fanout: &Fanout, room: &str) -> BrokerResult<()> {
    let keys = Keys::of(room);
    let Connection::Cluster(conn) = pubsub else {
        return Ok(());
    };
    let master = SingleNodeRoutingInfo::SpecificNode(Route::new(slot(room.as_bytes()), SlotAddr::Master));
    let mut settled = false;
    for _ in 0..OWNER_CHECKS {
        if owner_is_master(conn, &master).await? {
            settled = true;
            break;
        }
        // The demoted master answers MOVED: the crate refreshes its slot map.
        let mut probe = redis::cmd("EXISTS");
        probe.arg(&keys.seq);
        let _ = conn.clone().route_command(probe, RoutingInfo::SingleNode(master.clone())).await?;
        tokio::time::sleep(OWNER_CHECK_PAUSE).await;
    }
    if !settled {
        return Err(stale_map(room));
    }
    pubsub.clone().subscribe(&keys.channel).await?;
    if !owner_is_master(conn, &master).await? {
        return Err(stale_map(room));
    }
    let last: StreamRangeReply = redis::cmd("XREVRANGE")
        .arg(&keys.log)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut conn.clone())
        .await?;
    if let Some(Value::BulkString(payload)) = last.ids.first().and_then(|entry| entry.map.get("e")) {
        fanout.deliver(room, Arc::new(envelope::decode(room, payload)?));
    }
    Ok(())
}

/// Whether the node `route` reaches says it is a master.
async fn owner_is_master(conn: &ClusterConnection, route: &SingleNodeRoutingInfo) -> BrokerResult<bool> {
    let role = conn.clone().route_command(redis::cmd("ROLE"), RoutingInfo::SingleNode(route.clone())).await?;
    Ok(
        matches!(role, Value::Array(parts) if matches!(parts.first(), Some(Value::BulkString(kind)) if kind == b"master")),
    )
}

fn stale_map(room: &str) -> super::BrokerError {
    super::BrokerError::Redis(redis::RedisError::from((
        redis::ErrorKind::Io,
        "the cluster has not settled on the room's new master yet",
        room.to_owned(),
    )))
}

/// The registry set in the same slot as `room`'s keys.
pub(crate) fn registry_key(room: &str) -> String {
    registry_key_of_slot(slot(room.as_bytes()))
}

fn registry_key_of_slot(slot: u16) -> String {
    format!("chat:rooms:{{{}}}", tags()[usize::from(slot)])
}

/// For every slot, the shortest base-36 string that hashes to it. Every
/// room-service computes the same table, so they agree on registry keys.
fn tags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        let mut tags: Vec<Option<String>> = vec![None; usize::from(SLOTS)];
        let mut missing = tags.len();
        let mut n: u64 = 0;
        while missing > 0 {
            let tag = base36(n);
            let entry = &mut tags[usize::from(slot(tag.as_bytes()))];
            if entry.is_none() {
                *entry = Some(tag);
                missing -= 1;
            }
            n += 1;
        }
        tags.into_iter().flatten().collect()
    })
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// The cluster slot of a room's keys: CRC16 (XMODEM) of the name, mod 16384
/// (room names have no braces, so the whole name is the hash tag).
pub(crate) fn slot(tag: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in tag {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
        }
    }
    crc % SLOTS
}

/// Up to about `limit` room names from the registries of every slot, read
/// per master from the slot ranges `CLUSTER SLOTS` reports.
pub(crate) async fn room_names(conn: &ClusterConnection, limit: usize) -> BrokerResult<Vec<String>> {
    let mut conn = conn.clone();
    let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(&mut conn).await?;
    let mut names = Vec::new();
    for range in &ranges {
        let (Value::Array(parts) | Value::Set(parts)) = range else { continue };
        let (Some(Value::Int(start)), Some(Value::Int(end))) = (parts.first(), parts.get(1)) else { continue };
        let (Ok(start), Ok(end)) = (u16::try_from(*start), u16::try_from(*end)) else { continue };
        let slots: Vec<u16> = (start..=end.min(SLOTS - 1)).collect();
        for batch in slots.chunks(REGISTRY_BATCH) {
            let mut pipe = redis::pipe();
            for &slot in batch {
                pipe.cmd("SMEMBERS").arg(registry_key_of_slot(slot));
            }
            // Every slot of the batch is on the master owning the first one.
            let route = SingleNodeRoutingInfo::SpecificNode(Route::new(batch[0], SlotAddr::Master));
            let sets = conn.route_pipeline(pipe, 0, batch.len(), route).await?;
            for set in sets {
                let members: Vec<String> = redis::from_redis_value(set)
                    .map_err(|e| super::BrokerError::Corrupt(format!("room registry: {e}")))?;
                names.extend(members);
            }
            if names.len() >= limit {
                return Ok(names);
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // CLUSTER KEYSLOT answers these on any Redis Cluster.
        for (key, expected) in [("foo", 12182), ("123456789", 12739), ("general", 9981), ("", 0)] {
            assert_eq!(slot(key.as_bytes()), expected, "slot of {key:?}");
        }
    }

    #[test]
    fn every_slot_has_a_registry_key_in_that_slot() {
        let tags = tags();
        assert_eq!(tags.len(), usize::from(SLOTS));
        for (expected, tag) in tags.iter().enumerate() {
            assert_eq!(usize::from(slot(tag.as_bytes())), expected, "tag {tag:?}");
            assert!(tag.len() <= 4, "tags stay short: {tag:?}");
        }
        for room in ["general", "dev.ops", "a", "team-42"] {
            let key = registry_key(room);
            let tag = key.trim_start_matches("chat:rooms:{").trim_end_matches('}');
            assert_eq!(slot(tag.as_bytes()), slot(room.as_bytes()), "registry of {room}");
        }
    }
}
