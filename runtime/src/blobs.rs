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

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};

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

impl From<object_store::Error> for BlobError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { path, .. } => BlobError::NotFound(path),
            e => BlobError::Store(e.to_string()),
        }
    }
}

/// Where uploads stream to before they are complete.
const UPLOADS: &str = "uploads";
/// Where complete files live, under their SHA-256.
const BLOBS: &str = "blobs";
/// Parts of a multipart upload in flight at once per upload.
const PARTS_IN_FLIGHT: usize = 2;
/// A part's size on S3: its smallest (but the last part's), so an upload
/// holds at most ~10 MiB there.
const S3_PART_BYTES: usize = 5 * 1024 * 1024;
/// A part's size on a local folder, where parts are plain writes with no
/// minimum: an upload holds at most ~512 KiB, so memory does not follow
/// `MAX_UPLOADS` × 10 MiB on the default store (measured: 50 uploads of
/// 20 MiB at once peaked at ~600 MiB with 5 MiB parts).
const LOCAL_PART_BYTES: usize = 256 * 1024;

/// The object store, as the chat uses it.
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Bytes an upload buffers before writing them as one part.
    part_bytes: usize,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlobStore({})", self.store)
    }
}

impl BlobStore {
    /// Opens the store `args` name (creating FILES_DIR if missing).
    pub fn open(args: &BlobArgs) -> anyhow::Result<Self> {
        let part_bytes = if args.s3_bucket.is_some() { S3_PART_BYTES } else { LOCAL_PART_BYTES };
        let store: Arc<dyn ObjectStore> = match &args.s3_bucket {
            Some(bucket) => {
                let mut s3 = AmazonS3Builder::new().with_bucket_name(bucket).with_region(&args.s3_region);
                if let Some(endpoint) = &args.s3_endpoint {
                    // An S3-compatible server (MinIO, s3s-fs...) answers on a
                    // path, not a virtual host, and often on plain http.
                    s3 = s3
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                if let Some(key) = &args.s3_access_key_id {
                    s3 = s3.with_access_key_id(key);
                }
                if let Some(secret) = &args.s3_secret_access_key {
                    s3 = s3.with_secret_access_key(secret);
                }
                Arc::new(s3.build().map_err(|e| anyhow::anyhow!("S3_BUCKET {bucket}: {e}"))?)
            }
            None => {
                let dir = args.files_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("chat-files"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| anyhow::anyhow!("FILES_DIR {}: cannot create it: {e}", dir.display()))?;
                let local = LocalFileSystem::new_with_prefix(&dir)
                    .map_err(|e| anyhow::anyhow!("FILES_DIR {}: {e}", dir.display()))?;
                // Cleans the folders an emptied upload leaves.
                Arc::new(local.with_automatic_cleanup(true))
            }
        };
        Ok(BlobStore { store, part_bytes })
    }

    fn blob_path(blob: &str) -> Path {
        Path::from(format!("{BLOBS}/{blob}"))
    }

    /// Starts an upload: bytes written to it stream to `uploads/<random>`
    /// while they are hashed; [`Upload::finish`] moves them to their blob.
    pub async fn begin(&self) -> Result<Upload, BlobError> {
        let temp = Path::from(format!("{UPLOADS}/{:032x}", rand::random::<u128>()));
        let multipart = self.store.put_multipart(&temp).await?;
        Ok(Upload {
            store: self.clone(),
            temp,
            writer: WriteMultipart::new_with_chunk_size(multipart, self.part_bytes),
            hasher: Some(Sha256::new()),
            size: 0,
        })
    }

    /// Stores `bytes` (a small file made here: a thumbnail, a stripped
    /// image) as a blob and returns its name; if it exists, nothing is written.
    pub async fn put(&self, bytes: Bytes) -> Result<String, BlobError> {
        let blob = blob_name(&bytes);
        self.put_named(&blob, bytes).await?;
        Ok(blob)
    }

    /// [`BlobStore::put`] with the name worked out already by
    /// [`blob_name`] (on a thread where hashing megabytes may take its time).
    pub async fn put_named(&self, blob: &str, bytes: Bytes) -> Result<(), BlobError> {
        let path = Self::blob_path(blob);
        if !self.exists(&path).await? {
            self.store.put(&path, PutPayload::from_bytes(bytes)).await?;
        }
        Ok(())
    }

    async fn exists(&self, path: &Path) -> Result<bool, BlobError> {
        match self.store.head(path).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The size of blob `blob`, in bytes.
    pub async fn size(&self, blob: &str) -> Result<u64, BlobError> {
        Ok(self.store.head(&Self::blob_path(blob)).await?.size)
    }

    /// Blob `blob`'s bytes in `range` (all of them when `None`), as they
    /// arrive from the store: never the whole file in memory.
    pub async fn read(
        &self,
        blob: &str,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes, BlobError>>, BlobError> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..Default::default() };
        let got = self.store.get_opts(&Self::blob_path(blob), options).await?;
        Ok(got.into_stream().map_err(BlobError::from).boxed())
    }

    /// Blob `blob`'s bytes, whole: for the image worker, which needs them
    /// all to strip and decode (bounded by the upload limit and the workers).
    pub async fn read_all(&self, blob: &str) -> Result<Bytes, BlobError> {
        Ok(self.store.get(&Self::blob_path(blob)).await?.bytes().await?)
    }

    /// Deletes blob `blob` (a SHA-256 in hex); deleting a missing blob is
    /// not an error.
    pub async fn delete(&self, blob: &str) -> Result<(), BlobError> {
        match self.store.delete(&Self::blob_path(blob)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes what uploads older than `age` left in `uploads/` (a process
    /// that died mid-upload); returns how many objects went.
    pub async fn sweep_uploads(&self, age: Duration) -> Result<usize, BlobError> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        let cutoff = now - age.as_secs() as i64;
        let stale: Vec<Path> = self
            .store
            .list(Some(&Path::from(UPLOADS)))
            .try_filter(|meta| std::future::ready(meta.last_modified.timestamp() <= cutoff))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        let mut deleted = 0;
        for path in stale {
            match self.store.delete(&path).await {
                Ok(()) => deleted += 1,
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(deleted)
    }
}

/// An upload on its way into the store: bytes are hashed and counted as
/// they pass, and written in parts (at most [`PARTS_IN_FLIGHT`] buffered).
pub struct Upload {
    store: BlobStore,
    temp: Path,
    writer: WriteMultipart,
    /// `None` once the upload is to be staged: its bytes never become a
    /// blob as they are, so hashing them would be work for nothing.
    hasher: Option<Sha256>,
    size: u64,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Upload({}, {} bytes)", self.temp, self.size)
    }
}

impl Upload {
    /// Appends `chunk`, waiting while the store is behind.
    pub async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        self.writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&chunk);
        }
        self.size += chunk.len() as u64;
        self.writer.put(chunk);
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Stops hashing: this upload will end in [`Upload::finish_staged`]
    /// (or `abort`); [`Upload::finish`] then refuses.
    pub fn stop_hashing(&mut self) {
        self.hasher = None;
    }

    /// Completes the upload: its bytes become blob `<sha256>` (kept as it
    /// is when it exists already) and the temp object goes. Returns the blob.
    pub async fn finish(self) -> Result<String, BlobError> {
        let Upload { store, temp, writer, hasher, .. } = self;
        let Some(hasher) = hasher else {
            let _ = writer.abort().await;
            let _ = store.store.delete(&temp).await;
            return Err(BlobError::Store("an upload that stopped hashing cannot become a blob".to_owned()));
        };
        writer.finish().await?;
        let blob = hex(&hasher.finalize());
        let path = BlobStore::blob_path(&blob);
        let moved = if store.exists(&path).await? {
            Ok(())
        } else {
            // Two uploads of the same bytes racing here both write the
            // same content: the later rename overwrites it with itself.
            store.store.rename(&temp, &path).await
        };
        let _ = store.store.delete(&temp).await;
        moved?;
        Ok(blob)
    }

    /// Completes the upload but keeps its bytes as this upload's own
    /// object, not a blob: for a file that is stored only once it has been
    /// worked on (an image, stored stripped). Nothing else can name or
    /// share it; [`Staged::discard`] deletes it, and `sweep_uploads` does
    /// if the process dies first.
    pub async fn finish_staged(self) -> Result<Staged, BlobError> {
        let Upload { store, temp, writer, .. } = self;
        writer.finish().await?;
        Ok(Staged { store, path: temp })
    }

    /// Gives the upload up: nothing of it stays in the store.
    pub async fn abort(self) {
        let _ = self.writer.abort().await;
        let _ = self.store.store.delete(&self.temp).await;
    }
}

/// A complete upload kept under its own name in `uploads/`.
#[derive(Debug)]
pub struct Staged {
    store: BlobStore,
    path: Path,
}

impl Staged {
    /// Its bytes, whole (bounded by the upload limit).
    pub async fn read_all(&self) -> Result<Bytes, BlobError> {
        Ok(self.store.store.get(&self.path).await?.bytes().await?)
    }

    /// Deletes it (a missing one is no error).
    pub async fn discard(self) -> Result<(), BlobError> {
        match self.store.store.delete(&self.path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The blob `bytes` are stored as: their SHA-256 in lowercase hex.
pub fn blob_name(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(dir: &std::path::Path) -> BlobStore {
        BlobStore::open(&BlobArgs { files_dir: Some(dir.to_owned()), ..Default::default() }).expect("open")
    }

    async fn read_all(store: &BlobStore, blob: &str, range: Option<Range<u64>>) -> Vec<u8> {
        let chunks: Vec<Bytes> = store.read(blob, range).await.expect("read").try_collect().await.expect("chunks");
        chunks.concat()
    }

    #[tokio::test]
    async fn an_upload_becomes_its_sha256_once_and_reads_back_in_ranges() {
        let dir = std::env::temp_dir().join(format!("blobs-test-{:x}", rand::random::<u64>()));
        let store = local(&dir);
        let data: Vec<u8> = (0..(6 * 1024 * 1024 + 7)).map(|i| (i % 251) as u8).collect();
        let mut upload = store.begin().await.expect("begin");
        for chunk in data.chunks(64 * 1024) {
            upload.write(Bytes::copy_from_slice(chunk)).await.expect("write");
        }
        assert_eq!(upload.size(), data.len() as u64);
        let blob = upload.finish().await.expect("finish");
        assert_eq!(blob, hex(&Sha256::digest(&data)));
        assert_eq!(store.size(&blob).await.expect("size"), data.len() as u64);
        assert_eq!(read_all(&store, &blob, None).await, data);
        assert_eq!(read_all(&store, &blob, Some(10..20)).await, &data[10..20]);

        // The same bytes again: the same blob, and no temp object left.
        let mut again = store.begin().await.expect("begin");
        again.write(Bytes::from(data.clone())).await.expect("write");
        assert_eq!(again.finish().await.expect("finish"), blob);
        assert_eq!(store.sweep_uploads(Duration::ZERO).await.expect("sweep"), 0, "no upload left behind");

        store.delete(&blob).await.expect("delete");
        store.delete(&blob).await.expect("deleting twice is fine");
        assert!(matches!(store.size(&blob).await, Err(BlobError::NotFound(_))));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn an_aborted_or_abandoned_upload_leaves_nothing_after_the_sweep() {
        let dir = std::env::temp_dir().join(format!("blobs-test-{:x}", rand::random::<u64>()));
        let store = local(&dir);
        let mut aborted = store.begin().await.expect("begin");
        aborted.write(Bytes::from_static(b"half")).await.expect("write");
        aborted.abort().await;
        // A crashed upload: a temp object nobody finishes.
        store.store.put(&Path::from("uploads/crashed"), PutPayload::from_static(b"x")).await.expect("put");
        assert_eq!(store.sweep_uploads(Duration::from_secs(3600)).await.expect("sweep"), 0, "too young");
        assert_eq!(store.sweep_uploads(Duration::ZERO).await.expect("sweep"), 1);
        let blob = store.put(Bytes::from_static(b"thumb")).await.expect("put");
        assert_eq!(read_all(&store, &blob, None).await, b"thumb");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_staged_upload_is_no_blob_and_goes_when_discarded() {
        let dir = std::env::temp_dir().join(format!("blobs-test-{:x}", rand::random::<u64>()));
        let store = local(&dir);
        let mut upload = store.begin().await.expect("begin");
        upload.stop_hashing();
        upload.write(Bytes::from_static(b"raw image bytes")).await.expect("write");
        let staged = upload.finish_staged().await.expect("staged");
        assert_eq!(staged.read_all().await.expect("read"), &b"raw image bytes"[..]);
        let as_blob = hex(&Sha256::digest(b"raw image bytes"));
        assert!(matches!(store.size(&as_blob).await, Err(BlobError::NotFound(_))), "not stored as a blob");
        staged.discard().await.expect("discard");
        assert_eq!(store.sweep_uploads(Duration::ZERO).await.expect("sweep"), 0, "nothing left in uploads/");
        let _ = std::fs::remove_dir_all(dir);
    }
}
