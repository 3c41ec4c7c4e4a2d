//! Bounds both ends of the gateway ⇄ room-service wire must agree on.

/// `send` frames one `SendBatch` call carries at most. The gateway gathers
/// no more than this into one call; the room-service refuses a larger batch
/// with INVALID_ARGUMENT, storing none of it.
pub const SEND_BATCH: usize = 64;
