//! # chat-testkit
//!
//! What the integration tests of every crate share: real parts started and
//! stopped by the tests themselves. [`RedisServer`] is a `redis-server` on a
//! private unix socket, so a Redis already running on the machine is left
//! alone and tests never collide on a port.

mod redis_server;

pub use redis_server::RedisServer;
