//! Where the bytes of attachments live: one object store for the gateways
//! (which write uploads and serve files) and the room-services (whose sweep
//! deletes what no attachment uses any more).
//!
//! Behind it is the `object_store` crate: a local directory by default
//! (`FILES_DIR`), any S3-compatible store when `S3_BUCKET` is set. Every
//! process of one chat must point at the same place.
//!
//! Layout: a file is stored once under its SHA-256, `blobs/<sha256>`
//! (content-addressed: two uploads of the same bytes share one object);
//! an upload is written to `uploads/<random>` while it streams in and
//! moved to its blob when complete ([`BlobStore::begin`]).

use std::path::PathBuf;

/// Where blobs are kept: the flags and variables both binaries take.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BlobArgs {
    /// Folder for uploaded files (used unless S3_BUCKET is set). Every
    /// gateway and room-service of one chat must share it. Default: a
    /// `chat-files` folder in the system's temp dir.
    #[arg(long, env = "FILES_DIR")]
    pub files_dir: Option<PathBuf>,

    /// An S3 (or S3-compatible) bucket for uploaded files instead of FILES_DIR.
    #[arg(long, env = "S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// The S3 endpoint, for an S3-compatible store (e.g. http://127.0.0.1:9000).
    #[arg(long, env = "S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// The bucket's region.
    #[arg(long, env = "S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Credentials for S3_BUCKET.
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
}

/// Why a blob operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// No such blob.
    #[error("no blob {0}")]
    NotFound(String),
    /// The store could not be reached or refused the operation.
    #[error("file storage: {0}")]
    Store(String),
}

/// The object store, as the chat uses it.
#[derive(Debug, Clone)]
pub struct BlobStore {
    _private: (),
}

impl BlobStore {
    /// Opens the store `args` name (creating FILES_DIR if missing).
    pub fn open(_args: &BlobArgs) -> anyhow::Result<Self> {
        anyhow::bail!("file storage is not built yet")
    }

    /// Deletes blob `blob` (a SHA-256 in hex); deleting a missing blob is
    /// not an error.
    pub async fn delete(&self, _blob: &str) -> Result<(), BlobError> {
        Err(BlobError::Store("not built yet".into()))
    }
}
