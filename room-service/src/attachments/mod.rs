//! Attachments: files a gateway stored and recorded here (`Attach`), posted
//! with a message (`Send` with `attachment_ids`), and swept when never posted.
//!
//! - [`records`]: the [`Records`] seam each broker implements (Redis and
//!   Redis Cluster in `broker::attachments`, memory in
//!   `broker::memory_attachments`): an attachment's record, who posted it,
//!   the unposted ones by upload time, and which attachments use a blob.
//! - [`claim`]: what a send does with its ids: claims each for the message
//!   (same room, same user, not posted by another message) and gives back
//!   the metadata the `ChatMessage` carries from then on, so Redis history,
//!   pub/sub, resume and the archive all hold it like the text.
//! - [`sweep`]: the task that deletes attachments nobody posted within
//!   `UPLOAD_TTL_SECS`, and their blobs when no other attachment uses them
//!   (through the [`Blobs`] seam, which `chat_runtime::blobs::BlobStore`
//!   implements).
//!   A refused Attach's blobs are candidates the sweep deletes the same way.
//! - [`write_through`]: [`AttachmentRecords`], the broker's records with
//!   the store (`DATABASE_URL`) behind them, which the service and the
//!   sweep both use: PostgreSQL keeps every record, answers when Redis was
//!   flushed, and decides whether a blob is still used.
//!
//! The gRPC handlers (Attach, GetAttachment) are in `service::attachments`.

pub(crate) mod claim;
pub mod records;
pub mod sweep;
pub mod write_through;

pub use records::{Claim, Poster, Records};
pub use sweep::{Blobs, Sweep, Swept};
pub use write_through::AttachmentRecords;
