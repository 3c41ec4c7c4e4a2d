//! The gateway's integration tests, in one binary: real topologies (a
//! `redis-server` each test starts, room-services and gateways on port 0,
//! real WebSocket and gRPC clients, headless Chromium for the page), one
//! module per concern. `support` builds the topologies; `docs` checks the
//! README and docs/ against the code and the repository.

mod support;

mod bad_input;
mod browser;
mod browser_files;
mod browser_history;
mod browser_lifecycle;
mod browser_people;
mod cache;
mod chaos;
mod cluster;
mod docs;
mod embedded;
mod files;
mod history;
mod hostile_frames;
mod lifecycle;
mod limits;
mod moderation;
mod monitoring;
mod operations;
mod people;
mod recovery;
mod redis_cluster;
mod resume;
mod security;
mod shell;
mod spread;
mod storm;
mod traces;
