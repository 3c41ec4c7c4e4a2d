//! Bounds both ends of the `chat.v1` wire must agree on, each in one place,
//! so a gateway never builds a call its room-service refuses.

/// The most messages one `SendBatch` call carries.
///
/// The gateway gathers a browser's `send` frames for one room into a batch
/// of at most this many; the room-service refuses a larger batch (or an
/// empty one) with INVALID_ARGUMENT and stores none of it. Raising it means
/// a longer Lua step in Redis per call, during which that Redis serves
/// nothing else.
pub const SEND_BATCH: usize = 64;

/// The most messages one `History` page holds (a browser's `history` frame
/// asks for 1 to this many). Mattermost pages by 60 and allows 200; a page
/// is one index range scan in the store, or one `XRANGE` in Redis.
pub const MAX_HISTORY_PAGE: u32 = 100;

/// The most hits one `Search` page holds (a browser's `search` frame asks
/// for 1 to this many): search reads more per row than a page does
/// (`ts_headline` parses every hit again).
pub const MAX_SEARCH_PAGE: u32 = 50;
