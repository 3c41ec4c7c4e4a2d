//! The `chat.v1` gRPC contract (`chat/v1/room.proto`), generated at build time.
//!
//! Gateways use the client (`v1::room_service_client`), room-services the
//! server (`v1::room_service_server`); `FILE_DESCRIPTOR_SET` feeds gRPC server
//! reflection so `grpcurl` can describe the service. [`limits`] holds the
//! bounds both sides of the wire enforce, [`names`] the rules for names and
//! text, [`query`] the rule for search queries.

pub mod v1 {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("chat.v1");
}

/// The encoded `FileDescriptorSet` of every `chat.v1` file, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/chat_v1_descriptor.bin"));

pub mod changes;
pub mod checked;
pub mod codes;
pub mod files;
pub mod limits;
pub mod names;
pub mod people;
pub mod query;

pub use checked::{MemberId, RoomName, Username};
pub use codes::{ErrorCode, LeaveReason};

/// Subscribe response header: the room's epoch when the stream started.
pub const EPOCH_HEADER: &str = "room-epoch";
/// Subscribe response header: the room's last sequence number when the
/// stream started; live events after it follow.
pub const LAST_SEQ_HEADER: &str = "room-last-seq";
/// Metadata on a RESOURCE_EXHAUSTED status: the room-service is busy (not
/// gone) and the caller should try again after this many milliseconds.
pub const RETRY_AFTER_HEADER: &str = "retry-after-ms";
/// Metadata on a refusal (INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND)
/// naming the [`ErrorCode`] a gateway should pass on to the browser, e.g.
/// `bad_direct`, when the gRPC code alone does not say which it is.
pub const ERROR_CODE_HEADER: &str = "chat-error-code";
/// The metadata a `muted` refusal carries the mute's end in (ms since the
/// Unix epoch).
pub const MUTED_UNTIL_HEADER: &str = "chat-muted-until";
