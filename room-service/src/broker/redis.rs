//! The Redis broker: rooms shared by every room-service through one Redis
//! or a Redis Cluster (the key layout is in [`super::keys`], what differs on
//! a cluster in [`super::cluster`]).
//!
//! Writes go through two Lua steps on a multiplexed connection:
//! `message.lua` stores one message (membership check, sender name,
//! sequence, history, publish: one round trip; its answer is read by its
//! tag, see `message_reply`), `presence.lua` applies a
//! batch of joins and leaves, publishes one presence event and reads the
//! room back. When rooms are seeded by the caller (a room-service with a
//! store), both answer `unseeded` for a room with no epoch, and `seed.lua`
//! starts its numbering where the caller says. Events come in on a second,
//! RESP3 connection
//! whose pushes are decoded once and handed to the [`Fanout`]; it subscribes
//! to a room's channel only while some local reader wants the room, and the
//! connection subscribes again by itself after a reconnect.

use std::sync::Arc;
use std::time::Duration;

use chat_proto::v1::{Member, RoomEvent, RoomSummary};
use chat_proto::{MemberId, RoomName};
use prost::Message;
use redis::aio::ConnectionManagerConfig;
use redis::streams::StreamRangeReply;
use redis::{Client, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Script, Value};
use tokio::sync::Mutex as AsyncMutex;
use tokio_util::sync::DropGuard;

use super::connection::Connection;
use super::keys::{Keys, ROOMS_KEY, room_of_channel};
use super::message_reply::{MessageReply, is_unseeded};
use super::{
    Broker, BrokerError, BrokerResult, ChangeOrder, ChangeOutcome, Fanout, MembersPage, Outgoing, Position,
    PresenceChange, PresenceOutcome, Retention, Snapshot, SnapshotSize, Stored, Subscription, cluster, envelope,
    new_epoch, record,
};

/// How long a sent message's id is remembered for dedupe: retries come
/// within seconds; the copy it keeps is one message, so keep it short.
const DEDUPE_TTL_SECS: u64 = 120;

/// The longest wait between two attempts to reach a Redis that went away;
/// the attempts go on for as long as it is away.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct RedisBroker {
    commands: Connection,
    pubsub: Connection,
    /// Serialises SUBSCRIBE/UNSUBSCRIBE so they reach Redis in the order the
    /// fanout decided them.
    subscribing: Arc<AsyncMutex<()>>,
    /// On a cluster: stops the task that subscribes rooms again whose slot moved.
    _resubscriber: Option<DropGuard>,
    fanout: Arc<Fanout>,
    message: Script,
    presence: Script,
    heartbeat: Script,
    seed: Script,
    retention: Retention,
    /// Whether rooms without an epoch are left for the caller to seed
    /// (scripts answer `unseeded`) instead of started at a fresh epoch.
    seeded_by_caller: bool,
}

impl RedisBroker {
    /// Connects both connections; fails when Redis cannot be reached.
    pub async fn connect(url: &str, retention: Retention, fanout: Arc<Fanout>) -> BrokerResult<Self> {
        let info = url.into_connection_info()?;
        let resp3 = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(resp3))?;
        let reconnect = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_max_delay(RECONNECT_MAX_DELAY)
            // Keep trying for as long as Redis is away: a manager that gives up
            // stays dead until its next command, and the pub/sub one may have
            // none to send — its rooms would go silent for good.
            .set_number_of_retries(usize::MAX);
        // The managers below retry for ever; a Redis that is not there at
        // startup is a configuration mistake, said at once.
        let probe = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let _: String = redis::cmd("PING")
            .query_async(&mut client.get_multiplexed_async_connection_with_config(&probe).await?)
            .await?;
        let commands = client.get_connection_manager_with_config(reconnect.clone()).await?;

        let router = Arc::clone(&fanout);
        let pubsub = client
            .get_connection_manager_with_config(reconnect.set_automatic_resubscription().set_push_sender(
                move |push: PushInfo| {
                    route_push(&router, push, &PushKind::Message);
                    Ok::<(), std::convert::Infallible>(())
                },
            ))
            .await?;

        Ok(Self::with_connections(
            Connection::Single(commands),
            Connection::Single(pubsub),
            Arc::new(AsyncMutex::new(())),
            None,
            fanout,
            retention,
        ))
    }

    /// Connects to the Redis Cluster at `seeds` (any of its nodes; the rest
    /// are discovered). `password` applies when the URLs carry none.
    pub async fn connect_cluster(
        seeds: &[String],
        password: Option<&str>,
        retention: Retention,
        fanout: Arc<Fanout>,
    ) -> BrokerResult<Self> {
        let subscribing = Arc::new(AsyncMutex::new(()));
        let (commands, pubsub, resubscriber) =
            cluster::connect(seeds, password, &fanout, &subscribing, |fanout, push| {
                route_push(fanout, push, &PushKind::SMessage);
            })
            .await?;
        Ok(Self::with_connections(commands, pubsub, subscribing, Some(resubscriber), fanout, retention))
    }

    fn with_connections(
        commands: Connection,
        pubsub: Connection,
        subscribing: Arc<AsyncMutex<()>>,
        resubscriber: Option<DropGuard>,
        fanout: Arc<Fanout>,
        retention: Retention,
    ) -> Self {
        Self {
            commands,
            pubsub,
            subscribing,
            _resubscriber: resubscriber,
            fanout,
            message: Script::new(include_str!("message.lua")),
            presence: Script::new(include_str!("presence.lua")),
            heartbeat: Script::new(include_str!("heartbeat.lua")),
            seed: Script::new(include_str!("seed.lua")),
            retention,
            seeded_by_caller: false,
        }
    }

    /// Rooms without an epoch (new, or lost by Redis) are not started here:
    /// writes to them fail with [`BrokerError::Unseeded`] until the caller
    /// [`Broker::seed`]s them — a room-service with a store, which knows
    /// where each room's numbering stands.
    #[must_use]
    pub fn seeded_by_caller(mut self) -> Self {
        self.seeded_by_caller = true;
        self
    }

    /// What the scripts get as "the epoch to use if the room has none":
    /// nothing when rooms are seeded by the caller.
    fn epoch_for_new_rooms(&self) -> String {
        if self.seeded_by_caller { String::new() } else { new_epoch() }
    }

    /// How long a room with no event is kept (`ROOM_TTL_SECS`).
    pub(super) fn room_ttl_secs(&self) -> u64 {
        self.retention.room_ttl.as_secs()
    }

    pub(super) fn conn(&self) -> Connection {
        self.commands.clone()
    }

    /// The set that lists `room`: one for all rooms on one Redis; on a
    /// cluster, one per slot, in the room's own slot.
    fn registry_key(&self, room: &str) -> String {
        if self.commands.is_cluster() { cluster::registry_key(room) } else { ROOMS_KEY.to_owned() }
    }

    pub(super) fn retention(&self) -> Retention {
        self.retention
    }

    pub(super) fn publish_command(&self) -> &'static str {
        self.commands.publish_command()
    }

    /// Events read from the history stream, with their messages' changes
    /// laid over them (`redis_changes`).
    pub(super) async fn read_range(&self, room: &str, cmd: &mut redis::Cmd) -> BrokerResult<Vec<RoomEvent>> {
        let reply: StreamRangeReply = cmd.query_async(&mut self.conn()).await?;
        let mut events = reply
            .ids
            .iter()
            .map(|entry| match entry.map.get("e") {
                Some(Value::BulkString(payload)) => envelope::decode(room, payload),
                _ => Err(BrokerError::Corrupt(format!("history entry {} has no event", entry.id))),
            })
            .collect::<BrokerResult<Vec<_>>>()?;
        self.render(room, &mut events).await?;
        Ok(events)
    }

    /// Runs `presence.lua`: the changes (maybe none), then the read-back.
    async fn presence_step(
        &self,
        room: &str,
        changes: &[PresenceChange],
        size: SnapshotSize,
        after: &str,
        reap_at: Option<i64>,
    ) -> BrokerResult<(Vec<i64>, Snapshot)> {
        let keys = Keys::of(room);
        let mut call = self.presence.prepare_invoke();
        call.key(&keys.members)
            .key(&keys.roster)
            .key(&keys.presence)
            .key(&keys.seq)
            .key(&keys.epoch)
            .key(&keys.log)
            .key(self.registry_key(room))
            .key(&keys.moderation)
            .arg(&keys.channel)
            .arg(self.commands.publish_command())
            .arg(self.epoch_for_new_rooms())
            .arg(room)
            .arg(self.retention.room_ttl.as_secs())
            .arg(size.history)
            .arg(size.members)
            .arg(after)
            .arg(reap_at.map(|at| at.to_string()).unwrap_or_default())
            .arg(changes.len());
        let or_empty = |at: &Option<i64>| at.map(|at| at.to_string()).unwrap_or_default();
        for change in changes {
            match change {
                PresenceChange::Join { member, expires_at_ms, restore } => call
                    .arg("join")
                    .arg(&member.member_id)
                    .arg(record::encode(member))
                    .arg(expires_at_ms)
                    .arg(if *restore { "1" } else { "" })
                    .arg(""),
                PresenceChange::Leave(leave) => call
                    .arg("leave")
                    .arg(&leave.member_id)
                    .arg(&leave.reason)
                    .arg(or_empty(&leave.only_if_expired_at))
                    .arg(leave.connection.as_deref().unwrap_or_default())
                    .arg(or_empty(&leave.detach_until)),
            };
        }
        type Reply =
            (Vec<i64>, String, u64, Vec<Vec<u8>>, Vec<String>, Vec<Option<Vec<u8>>>, u32, String, String, Vec<String>);
        let reply: Vec<Value> = call.invoke_async(&mut self.conn()).await?;
        if is_unseeded(&reply) {
            return Err(BrokerError::Unseeded(room.to_owned()));
        }
        let (applied, epoch, last_seq, history, ids, records, member_count, members_next, owner, moderators): Reply =
            redis::from_redis_value(Value::Array(reply))
                .map_err(|e| BrokerError::Corrupt(format!("presence.lua answered an unreadable reply: {e}")))?;
        let mut history =
            history.iter().map(|payload| envelope::decode(room, payload)).collect::<BrokerResult<Vec<_>>>()?;
        self.render(room, &mut history).await?;
        // A record missing beside its roster entry (never written so) is skipped.
        let members = ids
            .iter()
            .zip(records)
            .filter_map(|(id, stored)| stored.map(|stored| record::decode(id, &stored)))
            .collect::<BrokerResult<_>>()?;
        let snapshot = Snapshot {
            history,
            position: Position { epoch, last_seq },
            members,
            member_count,
            members_next,
            owner,
            moderators,
        };
        Ok((applied, snapshot))
    }
}

/// Runs on the pub/sub connection for every push: decode once, fan out.
/// `message` is the kind events come as (sharded on a cluster).
fn route_push(fanout: &Fanout, push: PushInfo, message: &PushKind) {
    match push.kind {
        ref kind if kind == message => {
            let [Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice() else {
                tracing::warn!(?push.data, "unexpected pub/sub message shape");
                return;
            };
            let Some(room) = room_of_channel(channel) else {
                return;
            };
            match envelope::decode(room, payload) {
                Ok(event) => {
                    let seq = event.seq;
                    let readers = fanout.deliver(room, Arc::new(event));
                    tracing::debug!(room, seq, readers, "received from Redis");
                }
                Err(error) => tracing::warn!(room, %error, "dropped an unreadable event from Redis"),
            }
        }
        PushKind::Disconnection => {
            tracing::warn!("Redis pub/sub connection lost; reconnecting and subscribing again");
        }
        _ => {}
    }
}

impl Broker for RedisBroker {
    const APPEND_STEP: &'static str = "redis message.lua (store + publish)";

    async fn append_messages(
        &self,
        room: &RoomName,
        sender: Option<&MemberId>,
        messages: Vec<Outgoing>,
    ) -> BrokerResult<Vec<Stored>> {
        let member_id = sender.map_or("", |id| id.as_str());
        let keys = Keys::of(room);
        let mut call = self.message.prepare_invoke();
        call.key(&keys.seq)
            .key(&keys.log)
            .key(&keys.epoch)
            .key(&keys.members)
            .key(&keys.presence)
            .key(&keys.roster)
            .key(self.registry_key(room))
            .key(&keys.moderation);
        for message in &messages {
            // On a cluster every key a script names must be in the room's
            // slot, even an unused one: an unused dedupe key comes as the seq key.
            let dedupe = match message.client_id.as_str() {
                "" => keys.seq.clone(),
                client_id => keys.sent(member_id, client_id),
            };
            call.key(dedupe);
        }
        call.arg(&keys.channel)
            .arg(self.retention.history_len)
            .arg(self.epoch_for_new_rooms())
            .arg(room.as_str())
            .arg(member_id)
            .arg(DEDUPE_TTL_SECS)
            .arg(self.retention.room_ttl.as_secs())
            .arg(self.commands.publish_command());
        for message in &messages {
            call.arg(message.event.encode_to_vec());
        }
        let reply: Vec<Value> = call.invoke_async(&mut self.conn()).await?;
        let (payloads, repeats) = match MessageReply::decode(reply)? {
            MessageReply::Stored { payloads, repeats } => (payloads, repeats),
            MessageReply::NotMember => return Err(BrokerError::NotMember(member_id.to_owned())),
            MessageReply::Muted { until_ms } => return Err(BrokerError::Muted { until_ms }),
            MessageReply::Unseeded => return Err(BrokerError::Unseeded(room.to_string())),
        };
        if payloads.len() != messages.len() {
            return Err(BrokerError::Corrupt(format!(
                "message.lua stored {} of {} messages",
                payloads.len(),
                messages.len()
            )));
        }
        let stored = payloads
            .iter()
            .zip(repeats)
            .map(|(payload, repeat)| Ok(Stored { event: envelope::decode(room, payload)?, repeat }))
            .collect::<BrokerResult<Vec<_>>>()?;
        tracing::debug!(%room, messages = stored.len(), seq = stored.last().map(|s| s.event.seq), "published to Redis");
        Ok(stored)
    }

    async fn apply_presence(
        &self,
        room: &RoomName,
        changes: &[PresenceChange],
        size: SnapshotSize,
    ) -> BrokerResult<PresenceOutcome> {
        let (flags, snapshot) =
            self.presence_step(room, changes, size, "", Some(chat_runtime::clock::now_ms())).await?;
        // 1: changed; 0: changed nothing; -1: a banned user's join, refused.
        let applied = flags.iter().map(|&flag| flag == 1).collect();
        let banned = flags.iter().map(|&flag| flag == -1).collect();
        Ok(PresenceOutcome { applied, banned, snapshot })
    }

    async fn change_message(
        &self,
        room: &RoomName,
        actor: &MemberId,
        order: ChangeOrder,
    ) -> BrokerResult<ChangeOutcome> {
        self.change_step(room, actor, order).await
    }

    async fn message(&self, room: &RoomName, seq: u64) -> BrokerResult<Option<RoomEvent>> {
        self.message_at(room, seq).await
    }

    async fn reacted(&self, room: &RoomName, user_id: &str, reactions: &[(u64, String)]) -> BrokerResult<Vec<bool>> {
        self.reacted_by(room, user_id, reactions).await
    }

    async fn publish_ephemeral(&self, room: &RoomName, event: RoomEvent) -> BrokerResult<()> {
        let channel = Keys::of(room).channel;
        let _: i64 = redis::cmd(self.commands.publish_command())
            .arg(channel)
            .arg(envelope::encode_ephemeral(&event))
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn subscribe(&self, room: &RoomName) -> BrokerResult<Subscription> {
        let _order = self.subscribing.lock().await;
        let (subscription, needs_bus) = self.fanout.tap(room);
        if needs_bus {
            self.pubsub.clone().subscribe(&Keys::of(room).channel).await?;
            self.fanout.mark_live(room);
            tracing::debug!(%room, "subscribed to the room's Redis channel");
        }
        Ok(subscription)
    }

    async fn recent(&self, room: &RoomName, limit: usize) -> BrokerResult<(Vec<RoomEvent>, Position)> {
        let keys = Keys::of(room);
        let mut events = self
            .read_range(room, redis::cmd("XREVRANGE").arg(&keys.log).arg("+").arg("-").arg("COUNT").arg(limit))
            .await?;
        events.reverse();
        let position = match events.last() {
            // The position must match the history read, not a later write.
            Some(last) => Position { epoch: last.epoch.clone(), last_seq: last.seq },
            None => self.position(room).await?,
        };
        Ok((events, position))
    }

    async fn after(&self, room: &RoomName, after_seq: u64, limit: usize) -> BrokerResult<Vec<RoomEvent>> {
        let keys = Keys::of(room);
        self.read_range(
            room,
            redis::cmd("XRANGE").arg(&keys.log).arg(format!("({after_seq}-1")).arg("+").arg("COUNT").arg(limit),
        )
        .await
    }

    async fn position(&self, room: &RoomName) -> BrokerResult<Position> {
        let keys = Keys::of(room);
        let (epoch, last_seq): (Option<String>, Option<u64>) =
            redis::cmd("MGET").arg(&keys.epoch).arg(&keys.seq).query_async(&mut self.conn()).await?;
        Ok(Position { epoch: epoch.unwrap_or_default(), last_seq: last_seq.unwrap_or(0) })
    }

    async fn seed(&self, room: &RoomName, epoch: &str, last_seq: u64) -> BrokerResult<bool> {
        let keys = Keys::of(room);
        let mut call = self.seed.prepare_invoke();
        call.key(&keys.epoch).key(&keys.seq).arg(epoch).arg(last_seq).arg(self.retention.room_ttl.as_secs());
        let seeded: i64 = call.invoke_async(&mut self.conn()).await?;
        Ok(seeded == 1)
    }

    async fn member(&self, room: &RoomName, member_id: &MemberId) -> BrokerResult<Option<Member>> {
        let member_id = member_id.as_str();
        let stored: Option<Vec<u8>> =
            redis::cmd("HGET").arg(Keys::of(room).members).arg(member_id).query_async(&mut self.conn()).await?;
        stored.map(|stored| record::decode(member_id, &stored)).transpose()
    }

    async fn members_page(&self, room: &RoomName, after: &str, limit: usize) -> BrokerResult<MembersPage> {
        let size = SnapshotSize { history: 0, members: limit };
        let (_, snapshot) = self.presence_step(room, &[], size, after, None).await?;
        Ok(MembersPage { members: snapshot.members, member_count: snapshot.member_count, next: snapshot.members_next })
    }

    async fn expired(&self, room: &RoomName, now_ms: i64, limit: usize) -> BrokerResult<Vec<String>> {
        Ok(redis::cmd("ZRANGE")
            .arg(Keys::of(room).presence)
            .arg("-inf")
            .arg(now_ms)
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn())
            .await?)
    }

    async fn heartbeat(&self, room: &RoomName, member_ids: &[String], expires_at_ms: i64) -> BrokerResult<Vec<String>> {
        if member_ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = self.heartbeat.prepare_invoke();
        call.key(Keys::of(room).presence).arg(expires_at_ms);
        for id in member_ids {
            call.arg(id);
        }
        Ok(call.invoke_async(&mut self.conn()).await?)
    }

    async fn rooms(&self, limit: usize) -> BrokerResult<Vec<RoomSummary>> {
        let mut names = match &self.commands {
            Connection::Cluster(conn) => cluster::room_names(conn, limit).await?,
            Connection::Single(_) => self.registered(limit).await?,
        };
        names.sort();
        names.dedup();
        names.truncate(limit);
        let counts = self.counts(&names).await?;
        let (mut live, mut forgotten) = (Vec::new(), Vec::new());
        for (name, (member_count, last_seq)) in names.into_iter().zip(counts) {
            match last_seq {
                Some(last_seq) => live.push(RoomSummary { name, member_count, last_seq }),
                // Its keys expired (room TTL): drop it from the index too.
                None if member_count == 0 => forgotten.push(name),
                None => live.push(RoomSummary { name, member_count, last_seq: 0 }),
            }
        }
        if self.commands.is_cluster() {
            for name in &forgotten {
                let _: i64 =
                    redis::cmd("SREM").arg(self.registry_key(name)).arg(name).query_async(&mut self.conn()).await?;
            }
        } else if !forgotten.is_empty() {
            let _: i64 = redis::cmd("SREM").arg(ROOMS_KEY).arg(&forgotten).query_async(&mut self.conn()).await?;
        }
        Ok(live)
    }

    async fn drop_idle_subscriptions(&self) {
        let _order = self.subscribing.lock().await;
        for room in self.fanout.remove_idle() {
            match self.pubsub.clone().unsubscribe(&Keys::of(&room).channel).await {
                Ok(()) => tracing::debug!(%room, "unsubscribed from the room's Redis channel"),
                Err(error) => tracing::warn!(%room, %error, "could not unsubscribe"),
            }
        }
    }

    fn subscribed_rooms(&self) -> Vec<RoomName> {
        self.fanout.live_rooms().into_iter().filter_map(|room| RoomName::try_from(room).ok()).collect()
    }

    async fn ping(&self) -> BrokerResult<()> {
        // Both connections: the pub/sub one carries every room's events.
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        let _: String = redis::cmd("PING").query_async(&mut self.pubsub.clone()).await?;
        Ok(())
    }
}

impl RedisBroker {
    /// Up to about `limit` names from the one Redis's room registry.
    async fn registered(&self, limit: usize) -> BrokerResult<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        let mut cursor = 0u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SSCAN")
                .arg(ROOMS_KEY)
                .arg(cursor)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut self.conn())
                .await?;
            names.extend(batch);
            cursor = next;
            if cursor == 0 || names.len() >= limit {
                return Ok(names);
            }
        }
    }

    /// Each room's member count and last sequence number.
    async fn counts(&self, names: &[String]) -> BrokerResult<Vec<(u32, Option<u64>)>> {
        let count = |pipe: &mut redis::Pipeline, name: &str| {
            let keys = Keys::of(name);
            pipe.cmd("HLEN").arg(&keys.members);
            pipe.cmd("GET").arg(&keys.seq);
        };
        let flat: Vec<Value> = if names.is_empty() {
            Vec::new()
        } else if self.commands.is_cluster() {
            // A cluster pipeline must stay in one slot: one per room, all in flight.
            let calls = names.iter().map(|name| {
                let mut pipe = redis::pipe();
                count(&mut pipe, name);
                let mut conn = self.conn();
                async move { pipe.query_async::<Vec<Value>>(&mut conn).await }
            });
            futures_util::future::try_join_all(calls).await?.into_iter().flatten().collect()
        } else {
            let mut pipe = redis::pipe();
            for name in names {
                count(&mut pipe, name);
            }
            pipe.query_async(&mut self.conn()).await?
        };
        Ok(flat
            .chunks(2)
            .map(|pair| {
                let count = redis::from_redis_value_ref(&pair[0]).unwrap_or(0);
                let seq = pair.get(1).and_then(|v| redis::from_redis_value_ref(v).ok()).flatten();
                (count, seq)
            })
            .collect())
    }
}
