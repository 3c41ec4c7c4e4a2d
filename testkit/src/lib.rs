//! # chat-testkit
//!
//! What the integration tests of every crate share: real parts started and
//! stopped by the tests themselves. [`RedisServer`] is a `redis-server` on a
//! private unix socket, so a Redis already running on the machine is left
//! alone and tests never collide on a port. [`PostgresServer`] is a scratch
//! PostgreSQL cluster in a temp dir, on a unix socket there, in the same way.

mod postgres_server;
mod redis_server;

pub use postgres_server::PostgresServer;
pub use redis_server::RedisServer;
