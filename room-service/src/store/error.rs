//! What can go wrong with a store call: input out of its bounds (the
//! caller's mistake, said in words a person can act on), or PostgreSQL not
//! answering (retry later).

use std::time::Duration;

use super::bounds::{
    MAX_APPEND, MAX_DIRECT_MEMBERS, MAX_FORGET_BATCH, MAX_PAGE, MAX_PROFILES, MAX_RANGE, MAX_REACTED, MAX_ROOM_ADDS,
    MAX_SEARCH_PAGE,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a page of {0} messages was asked for: a page holds 1 to {MAX_PAGE}")]
    PageLimit(u32),
    #[error("a range of {0} messages was asked for: a range holds 1 to {MAX_RANGE}")]
    RangeLimit(u32),
    #[error("a search page of {0} hits was asked for: a search page holds 1 to {MAX_SEARCH_PAGE}")]
    SearchLimit(u32),
    /// Too short, too long, or without a word ([`chat_proto::query`]).
    #[error("{0}")]
    Query(chat_proto::names::Invalid),
    #[error("{0} messages were given to append at once: at most {MAX_APPEND} per call")]
    AppendTooMany(usize),
    #[error("a retention batch of {0} rows was asked for: 1 to {MAX_FORGET_BATCH}")]
    ForgetBatch(u32),
    #[error("{0} users' profiles were asked for at once: at most {MAX_PROFILES} per call")]
    ProfilesTooMany(usize),
    #[error("reactions of {0} messages were asked for at once: at most {MAX_REACTED} per call")]
    ReactedTooMany(usize),
    #[error("{0} rooms were given to add to users' rooms at once: at most {MAX_ROOM_ADDS} per call")]
    RoomAddsTooMany(usize),
    #[error("a direct conversation of {0} people was given: it has 2 to {MAX_DIRECT_MEMBERS}, the opener included")]
    DirectMembers(usize),
    #[error("sequence number {0} is out of range: 1 to 2^63-1 (PostgreSQL's bigint)")]
    SeqOutOfRange(u64),
    #[error("not a PostgreSQL URL ({0}): give DATABASE_URL as postgres://user:password@host:port/database")]
    Url(String),
    #[error("PostgreSQL did not answer within {0:?} while connecting and migrating")]
    ConnectTimeout(Duration),
    #[error("the store's schema could not be brought up to date: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("PostgreSQL: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Whether the caller asked for something out of bounds (answer it with
    /// a refusal), rather than PostgreSQL failing (unavailable: retry).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::PageLimit(_)
                | Self::RangeLimit(_)
                | Self::SearchLimit(_)
                | Self::Query(_)
                | Self::AppendTooMany(_)
                | Self::ForgetBatch(_)
                | Self::SeqOutOfRange(_)
                | Self::ProfilesTooMany(_)
                | Self::RoomAddsTooMany(_)
                | Self::ReactedTooMany(_)
                | Self::DirectMembers(_)
        )
    }
}
