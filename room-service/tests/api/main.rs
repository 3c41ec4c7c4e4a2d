//! The room-service's integration tests, in one binary: the room-service
//! and its brokers with real parts (a `redis-server` each test starts, the
//! binaries as people run them).
//!
//! - [`broker_contract`]: the promises of the `Broker` trait, checked on
//!   the Redis broker and on the in-process one alike.
//! - [`directory_contract`]: the promises of the `Directory` trait (people's
//!   state), on Redis, a Redis Cluster and in process alike.
//! - [`instances`]: several room-services on one host; startup errors.
//! - [`health_probe`]: compose's health check.
//! - [`serving`]: health and reflection; [`retention`]: rooms expiring.
//! - [`sending`]: what one Send or SendBatch may carry.
//! - [`spans`]: each call's log lines carry its room and caller.
//! - [`people`]: direct conversations, users' rooms, read markers,
//!   mentions and inbox updates over gRPC (Redis, embedded, with a store).
//! - [`store`]: the PostgreSQL store, on a scratch PostgreSQL each test starts.
//! - [`store_changes`]: edits, deletes and reactions in the store, applied
//!   to their messages in any order, and what reads and search give then;
//!   [`store_changes_writers`]: the same with two writers at once, with
//!   STORE_SYNC's confirmation, and with retention.
//! - [`store_people`]: people in the store (profiles, direct conversations,
//!   users' rooms, markers, mentions).
//! - [`archive`]: the archiver, History by cursor and Search with a store.
//! - [`store_sync`]: `STORE_SYNC=1`, acknowledged once PostgreSQL committed.
//! - [`store_retention`]: `HISTORY_RETENTION_DAYS` on a running room-service.
//! - [`crash`]: a room-service killed and PostgreSQL stopped mid-burst lose
//!   nothing acknowledged ([`process`]: the binary as a process to kill).
//! - [`attachments`]: Attach, posting with Send, GetAttachment and every
//!   refusal over gRPC (Redis, embedded, with a store after a flush);
//!   [`attachments_contract`]: the `Records` promises and the sweep on
//!   Redis, a Redis Cluster and in process; [`attachments_store`]: the
//!   records written through to PostgreSQL, what survives a Redis flush,
//!   and a sweep that keeps every blob a posted attachment uses.
//! - [`moderation`]: roles, mutes, kicks, bans and the audit log over
//!   gRPC (Redis and embedded).
//! - [`shell`]: the binary started as the bench starts it takes nothing of
//!   the shell's configuration.

mod support;

mod archive;
mod attachments;
mod attachments_contract;
mod attachments_store;
mod broker_contract;
mod crash;
mod directory_contract;
mod health_probe;
mod instances;
mod moderation;
mod people;
mod process;
mod retention;
mod sending;
mod serving;
mod shell;
mod spans;
mod store;
mod store_changes;
mod store_changes_writers;
mod store_people;
mod store_retention;
mod store_sync;
