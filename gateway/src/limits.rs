//! Every bound and fixed tunable of the gateway, in one place: what each
//! limits and what happens at it. The ones an operator sets (connections,
//! connections per address, send rates, ping and grace periods) are flags in [`crate::config`]; the
//! ones shared with the room-service across the wire live in
//! [`chat_proto::limits`] and [`chat_proto::names`].

use std::time::Duration;

// --- A browser's connection ----------------------------------------------

/// Connections waiting to be accepted: a crowd arriving at once (a lecture
/// starting) must not overflow the queue, or the kernel drops their SYNs and
/// each retries a second later. The kernel caps it at `net.core.somaxconn`.
pub const ACCEPT_BACKLOG: u32 = 4096;
/// How long a new TCP connection may take to send its request headers; then
/// it is closed (a port scanner, a slowloris, a browser that died mid-connect).
pub const REQUEST_WAIT: Duration = Duration::from_secs(5);
/// The largest frame a browser may send; a larger one closes the connection
/// with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Where the socket itself stops reading a frame (1009 too): past
/// [`MAX_FRAME_BYTES`], so the session sees the frame and names the limit.
pub const SOCKET_FRAME_BYTES: usize = MAX_FRAME_BYTES * 2;
/// What the socket reads at a time. Chat frames are small; a larger one is
/// read into a buffer of its own size, for that frame only.
pub const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Bytes of frames gathered before they are written to the socket.
pub const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// Frames waiting to be written to one browser; a browser this far behind
/// is closed with 4008 (slow consumer) and its member detached.
pub const QUEUE_FRAMES: usize = 1024;
/// Events written per flush at most.
pub const WRITE_BATCH: usize = 64;
/// How long a write may make no progress before the connection is dropped:
/// the browser is not reading (its buffers are full), and holding the
/// socket would hold its memory too.
pub const WRITE_STALL: Duration = Duration::from_secs(10);
/// How long a closing session waits for the browser's Close.
pub const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Whether a frame of `len` bytes is within what a browser may send.
pub fn frame_fits(len: usize) -> bool {
    len <= MAX_FRAME_BYTES
}

// --- What one connection may do -------------------------------------------

/// Rooms one connection may be in at once; a join past it is refused
/// (`too_many_rooms`).
pub const MAX_ROOMS: usize = 32;
/// Typing frames closer together than this (per connection and room, the
/// clock starting over on a send) are dropped without an error.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);
/// Joins at once on a fresh connection: a page rejoining all its rooms
/// after a reconnect (at most [`MAX_ROOMS`]) must fit.
pub const JOIN_BURST: u32 = 40;
/// Joins per second after the burst; past it `rate_limited`.
pub const JOIN_RATE: u32 = 1;
/// History sent with `joined`.
pub const JOIN_HISTORY: u32 = 50;
/// `history` and `search` frames at once on a fresh connection: a page
/// opening a room and scrolling back a few screens fits.
pub const READ_BURST: u32 = 20;
/// `history` and `search` frames per second after the burst (one bucket
/// for both, per connection); past it `rate_limited` with `retry_after_ms`.
/// Ten pages a second outpaces any reader, and bounds what a script can make
/// the store read (a search reads far more than a send writes).
pub const READ_RATE: u32 = 10;
/// Messages in a `history` answer when the frame names no `limit` (at most
/// [`chat_proto::limits::MAX_HISTORY_PAGE`]).
pub const HISTORY_PAGE: u32 = 50;
/// Hits in a `search_results` answer when the frame names no `limit` (at
/// most [`chat_proto::limits::MAX_SEARCH_PAGE`]).
pub const SEARCH_PAGE: u32 = 20;
/// The longest epoch a resuming join may name (room epochs are 12
/// characters); longer is `bad_json`.
pub const MAX_EPOCH_BYTES: usize = 64;
/// `send` frames stored in one call at most: the room-service's bound.
pub use chat_proto::limits::SEND_BATCH;
/// How often the send buckets of users who stopped sending are forgotten
/// (with tokens, a user's connections share one, `rate.rs`): the table
/// holds the users who sent within about this long.
pub const USER_BUCKET_SWEEP: Duration = Duration::from_secs(30);

// --- Presence frames -------------------------------------------------------

/// At most one presence frame per room this often.
pub const PRESENCE_EVERY: Duration = Duration::from_millis(200);
/// Members named per presence frame, for joins and for leaves each (the
/// frame counts the rest).
pub const LISTED_MAX: usize = 32;

// --- Room-services ---------------------------------------------------------

/// Unary calls that take longer than this fail (and may move to the next
/// room-service).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a room-service that failed is skipped.
pub const COOL_DOWN: Duration = Duration::from_secs(3);
/// What a busy room-service that named no wait is given before asking again.
pub const BUSY_RETRY: Duration = Duration::from_millis(250);
/// The largest reply taken from a room-service: a resuming join brings up
/// to `HISTORY_LEN` messages of up to 4 KiB each (tonic's default, 4 MiB,
/// is a thousand of them).
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;
/// How long a join waits for its room's stream to open.
pub const READY_WAIT: Duration = Duration::from_secs(5);
/// Member ids per heartbeat call (the room-service takes up to 10 000).
pub const HEARTBEAT_CHUNK: usize = 1000;
