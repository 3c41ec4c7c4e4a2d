//! People's state in Redis: the [`Directory`] of the [`RedisBroker`], on one
//! Redis or a Redis Cluster.
//!
//! All of a user's keys share the `{u:<user id>}` hash tag, so they sit on
//! one cluster slot and every per-user step is atomic there too (a Lua
//! script, or MULTI/EXEC). A direct conversation's record shares its room's
//! `{<room>}` tag.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `chat:{u:<id>}:profile` | string | the user's name: having one is what makes a user exist |
//! | `chat:{u:<id>}:read` | hash | room → read seq: the user's rooms and their markers |
//! | `chat:{u:<id>}:joined` | hash | room → when it became theirs (ms) |
//! | `chat:{u:<id>}:mentions:<room>` | sorted set | seqs (scored by seq) of messages above the marker that mention the user; the newest [`MAX_MENTIONS_PER_ROOM`] |
//! | `chat:{<room>}:direct` | hash | user id → name: a direct conversation's members |
//!
//! None of them has a TTL: they live as long as the user does (a room's own
//! keys, by contrast, are forgotten when nobody uses the room). Redis may
//! still lose them (a flush, a failover before replication): `user_rooms`
//! and `direct` then answer `None`, and a room-service with a store loads
//! them back from PostgreSQL.
//!
//! A user id may hold any printable character, braces included: each of one
//! user's keys still hashes alike (its tag ends at the same place in all of
//! them), and room names (no `}` or `:`) keep two users' keys apart.
//!
//! Calls about many users (`profiles`, `add_rooms`) are one pipeline on one
//! Redis. On a cluster, redis-rs routes a pipeline by its first key and
//! refuses one whose keys span slots (`CrossSlot`), so there they are one
//! pipeline per user, sent concurrently over the cluster's multiplexed
//! connections.

use std::collections::HashMap;
use std::sync::LazyLock;

use chat_proto::v1::Person;
use futures_util::future::try_join_all;
use redis::{Cmd, FromRedisValue, Pipeline, Script, Value};

use super::redis::RedisBroker;
use super::{BrokerError, BrokerResult};
use crate::people::{Directory, RoomAdd, UserRoomState};

/// Mentions kept per user and room; past it the oldest are dropped, so a
/// user who never reads costs a bounded amount (the count shown stops there).
pub(crate) const MAX_MENTIONS_PER_ROOM: usize = 1000;

static READ_MARKER: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("read_marker.lua")));
static MENTION: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("mention.lua")));
static DIRECT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("direct.lua")));

/// The names of one user's keys.
struct UserKeys {
    prefix: String,
    profile: String,
    read: String,
    joined: String,
}

impl UserKeys {
    fn of(user_id: &str) -> Self {
        let prefix = format!("chat:{{u:{user_id}}}");
        Self {
            profile: format!("{prefix}:profile"),
            read: format!("{prefix}:read"),
            joined: format!("{prefix}:joined"),
            prefix,
        }
    }

    fn mentions(&self, room: &str) -> String {
        format!("{}:mentions:{room}", self.prefix)
    }
}

fn direct_key(room: &str) -> String {
    format!("chat:{{{room}}}:direct")
}

/// Reads one reply, saying which when it is not what was stored.
fn parse<T: FromRedisValue>(value: Value, what: &str) -> BrokerResult<T> {
    redis::from_redis_value(value).map_err(|e| BrokerError::Corrupt(format!("{what}: {e}")))
}

/// A seq (or time) as the hashes hold it.
fn number<T: std::str::FromStr>(text: &str, what: &str) -> BrokerResult<T> {
    text.parse().map_err(|_| BrokerError::Corrupt(format!("{what} {text:?} is not a number")))
}

fn seqs(members: &[String], above: u64) -> BrokerResult<Vec<u64>> {
    let mut seqs = Vec::with_capacity(members.len());
    for member in members {
        let seq: u64 = number(member, "a mention seq")?;
        if seq > above {
            seqs.push(seq);
        }
    }
    seqs.sort_unstable();
    Ok(seqs)
}

impl RedisBroker {
    /// Runs `commands`, each tagged with the user whose keys it touches, and
    /// answers their replies in order: one pipeline on one Redis, one per
    /// user on a cluster (see the module doc). With `atomic`, each pipeline
    /// is a MULTI/EXEC, so each user's commands apply together.
    async fn per_user(&self, commands: Vec<(&str, Cmd)>, atomic: bool) -> BrokerResult<Vec<Value>> {
        let new_pipeline = || {
            let mut pipeline = Pipeline::new();
            if atomic {
                pipeline.atomic();
            }
            pipeline
        };
        let mut conn = self.conn();
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        if !conn.is_cluster() {
            let mut pipeline = new_pipeline();
            for (_, command) in commands {
                pipeline.add_command(command);
            }
            return Ok(pipeline.query_async(&mut conn).await?);
        }
        let count = commands.len();
        let mut groups: HashMap<&str, (Vec<usize>, Pipeline)> = HashMap::new();
        for (index, (user, command)) in commands.into_iter().enumerate() {
            let (indices, pipeline) = groups.entry(user).or_insert_with(|| (Vec::new(), new_pipeline()));
            indices.push(index);
            pipeline.add_command(command);
        }
        let sent = groups.into_values().map(|(indices, pipeline)| {
            let mut conn = conn.clone();
            async move {
                let replies: Vec<Value> = pipeline.query_async(&mut conn).await?;
                Ok::<_, BrokerError>((indices, replies))
            }
        });
        let mut replies = vec![Value::Nil; count];
        for (indices, answered) in try_join_all(sent).await? {
            for (index, reply) in indices.into_iter().zip(answered) {
                replies[index] = reply;
            }
        }
        Ok(replies)
    }
}

impl Directory for RedisBroker {
    async fn put_profile(&self, user_id: &str, name: &str) -> BrokerResult<()> {
        let () = Cmd::set(UserKeys::of(user_id).profile, name).query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn profiles(&self, user_ids: &[String]) -> BrokerResult<Vec<Option<String>>> {
        let commands = user_ids.iter().map(|user| (user.as_str(), Cmd::get(UserKeys::of(user).profile))).collect();
        self.per_user(commands, false).await?.into_iter().map(|reply| parse(reply, "a profile")).collect()
    }

    async fn put_direct(&self, room: &str, members: &[Person]) -> BrokerResult<bool> {
        let mut call = DIRECT.key(direct_key(room));
        for person in members {
            call.arg(&person.user_id).arg(&person.name);
        }
        let created: i64 = call.invoke_async(&mut self.conn()).await?;
        Ok(created == 1)
    }

    async fn direct(&self, room: &str) -> BrokerResult<Option<Vec<Person>>> {
        let record: HashMap<String, String> = Cmd::hgetall(direct_key(room)).query_async(&mut self.conn()).await?;
        if record.is_empty() {
            return Ok(None);
        }
        let mut members: Vec<Person> = record.into_iter().map(|(user_id, name)| Person { user_id, name }).collect();
        members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        Ok(Some(members))
    }

    async fn add_rooms(&self, adds: &[RoomAdd]) -> BrokerResult<Vec<bool>> {
        // `joined` first: a room is the user's once `read` has it, so it
        // never shows up without the time it became theirs.
        let mut commands = Vec::with_capacity(adds.len() * 2);
        for add in adds {
            let keys = UserKeys::of(&add.user_id);
            commands.push((add.user_id.as_str(), Cmd::hset_nx(keys.joined, &add.room, add.joined_at_ms)));
            commands.push((add.user_id.as_str(), Cmd::hset_nx(keys.read, &add.room, add.read_seq)));
        }
        let replies = self.per_user(commands, true).await?;
        replies.into_iter().skip(1).step_by(2).map(|reply| parse::<bool>(reply, "HSETNX")).collect()
    }

    async fn remove_room(&self, user_id: &str, room: &str) -> BrokerResult<bool> {
        let keys = UserKeys::of(user_id);
        let mentions = keys.mentions(room);
        let commands = vec![
            (user_id, Cmd::hdel(keys.read, room)),
            (user_id, Cmd::hdel(keys.joined, room)),
            (user_id, Cmd::del(mentions)),
        ];
        let removed = self.per_user(commands, true).await?.into_iter().next().unwrap_or(Value::Nil);
        Ok(parse::<i64>(removed, "HDEL")? > 0)
    }

    async fn user_rooms(&self, user_id: &str) -> BrokerResult<Option<Vec<UserRoomState>>> {
        let keys = UserKeys::of(user_id);
        let mut both = Pipeline::new();
        both.hgetall(&keys.read).hgetall(&keys.joined);
        let (read, joined): (HashMap<String, String>, HashMap<String, String>) =
            both.query_async(&mut self.conn()).await?;
        if read.is_empty() && joined.is_empty() {
            return Ok(None);
        }
        let mut rooms = Vec::with_capacity(read.len());
        let mut mentions = Pipeline::new();
        for (room, marker) in read {
            let read_seq: u64 = number(&marker, "a read seq")?;
            let joined_at_ms = joined.get(&room).map(|at| number(at, "a joined time")).transpose()?.unwrap_or(0);
            mentions.zrangebyscore(keys.mentions(&room), format!("({read_seq}"), "+inf");
            rooms.push(UserRoomState { room, read_seq, joined_at_ms, mentions: Vec::new() });
        }
        if !rooms.is_empty() {
            let found: Vec<Vec<String>> = mentions.query_async(&mut self.conn()).await?;
            for (state, found) in rooms.iter_mut().zip(found) {
                state.mentions = seqs(&found, state.read_seq)?;
            }
        }
        rooms.sort_by(|a, b| a.room.cmp(&b.room));
        Ok(Some(rooms))
    }

    async fn user_room(&self, user_id: &str, room: &str) -> BrokerResult<Option<UserRoomState>> {
        let keys = UserKeys::of(user_id);
        let mut all = Pipeline::new();
        all.hget(&keys.read, room).hget(&keys.joined, room).zrange(keys.mentions(room), 0, -1);
        let (marker, joined, found): (Option<String>, Option<String>, Vec<String>) =
            all.query_async(&mut self.conn()).await?;
        let Some(marker) = marker else { return Ok(None) };
        let read_seq = number(&marker, "a read seq")?;
        Ok(Some(UserRoomState {
            room: room.to_owned(),
            read_seq,
            joined_at_ms: joined.map(|at| number(&at, "a joined time")).transpose()?.unwrap_or(0),
            mentions: seqs(&found, read_seq)?,
        }))
    }

    async fn mark_read(&self, user_id: &str, room: &str, seq: u64) -> BrokerResult<Option<UserRoomState>> {
        let keys = UserKeys::of(user_id);
        let reply: Option<(String, String, Vec<String>)> = READ_MARKER
            .key(&keys.read)
            .key(&keys.joined)
            .key(keys.mentions(room))
            .arg(room)
            .arg(seq)
            .invoke_async(&mut self.conn())
            .await?;
        let Some((marker, joined, found)) = reply else { return Ok(None) };
        let read_seq = number(&marker, "a read seq")?;
        Ok(Some(UserRoomState {
            room: room.to_owned(),
            read_seq,
            joined_at_ms: number(&joined, "a joined time")?,
            mentions: seqs(&found, read_seq)?,
        }))
    }

    async fn add_mention(&self, user_id: &str, room: &str, seq: u64) -> BrokerResult<()> {
        let keys = UserKeys::of(user_id);
        let _added: i64 = MENTION
            .key(&keys.read)
            .key(keys.mentions(room))
            .arg(room)
            .arg(seq)
            .arg(MAX_MENTIONS_PER_ROOM)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }
}
