//! The durable record of every room's messages, in PostgreSQL.
//!
//! Redis stays the fast path: it numbers a room's messages, keeps its recent
//! history and publishes them. This store is where they are kept for good:
//! room-services copy stored events into it in batches ([`Store::append`],
//! idempotent by `(room, seq)`, so copying the same events again after a
//! crash or a takeover stores them once), starting above the room's
//! [`Store::high_water`] mark. Stored events are messages and changes of
//! them (edits, deletes, reactions), each a row at its own seq; the append
//! that stores a change also brings its message's row up to date
//! ([`changes`]), so every read gives a message as it now stands.
//! Scrollback past what Redis holds reads pages from it by keyset
//! ([`Store::before`]), a resume reads what it missed ([`Store::after`]),
//! the room-service looks up one message ([`Store::message`]) and which
//! reactions are a user's ([`Store::reacted`]), a room Redis lost is
//! seeded from where its numbering stands ([`Store::numbering`]), search
//! reads its full-text index ([`Store::search`]: messages not deleted, by
//! their current words), and retention deletes old rows a small batch at
//! a time ([`Store::forget_before`]). Beside messages it keeps people
//! ([`people`]): profiles, direct conversations, users' rooms with their
//! read markers, and mentions, written through from the room-service's
//! directory and loaded back into Redis when Redis lost them; and
//! attachments' records ([`attachments`]), written through the same way,
//! which also tell the sweep whether a blob is still used.
//!
//! - [`message`]: a message or change as stored, to and from a `RoomEvent`;
//!   [`row`]: the same as a row of `messages`.
//! - [`bounds`]: the limits of every call, checked before any SQL runs.
//! - [`migrations`]: the schema, embedded from `room-service/migrations/`
//!   and brought up to date at [`Store::connect`].
//! - [`append`], [`confirm`], [`history`], [`numbering`], [`search`],
//!   [`retention`]: the calls, one file each ([`confirm`]: the append
//!   `STORE_SYNC` answers by); [`changes`]: how the append applies a
//!   change to its message.
//!
//! Every query is a runtime `sqlx::query` with bound parameters: nothing a
//! person typed is ever spliced into SQL, and building needs no database.

mod append;
mod attachments;
pub mod bounds;
mod changes;
mod confirm;
mod error;
mod history;
pub mod message;
mod migrations;
mod numbering;
mod people;
mod retention;
mod row;
mod search;

use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

pub use error::StoreError;
pub use history::Page;
pub use message::StoredMessage;
pub use numbering::Numbering;
pub use search::{Hit, SearchPage};

/// Connections one room-service holds. Its work for the store is one
/// archiver writing batches plus people's history pages and searches, each
/// a single indexed statement of a few ms. PostgreSQL does best with about
/// two connections per core it has; more only queue inside it, and several
/// room-services share one server (8 each keeps 8 room-services under the
/// default `max_connections` of 100).
const POOL_SIZE: u32 = 8;
/// How long a call waits for a free connection (or for connecting) before
/// failing. A person waiting for a page would rather see an error than a
/// spinner, and the archiver retries; sqlx's default of 30 s would let a
/// down database hold every caller for half a minute.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);
/// The server-side bound on every statement of the pool. Each call is one
/// index range scan or one batch (at most [`bounds::MAX_APPEND`] rows or
/// [`bounds::MAX_FORGET_BATCH`] deletions): milliseconds when healthy. One
/// taking seconds is a sick database, and holding a connection longer would
/// starve the pool. Migrations run on a connection of their own without it:
/// building an index on a big table may rightly take longer.
const STATEMENT_TIMEOUT: &str = "5s";
/// How long connecting and migrating at startup may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// The store: a bounded pool of connections to one PostgreSQL database.
/// Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
}

impl Store {
    /// Connects to the PostgreSQL at `url` (a `postgres://` URL; a unix
    /// socket dir goes in `?host=/dir`), brings its schema up to date (once,
    /// even when several room-services start together: the migrations hold
    /// a lock), and opens the pool.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Url(e.to_string()))?
            .application_name("room-service");
        tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut conn = PgConnection::connect_with(&options).await?;
            migrations::run(&mut conn).await?;
            conn.close().await?;
            Ok::<_, StoreError>(())
        })
        .await
        .map_err(|_| StoreError::ConnectTimeout(CONNECT_TIMEOUT))??;
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options.options([("statement_timeout", STATEMENT_TIMEOUT)]));
        Ok(Self { pool })
    }

    /// Succeeds while PostgreSQL answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}
