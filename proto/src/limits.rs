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
