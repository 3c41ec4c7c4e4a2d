//! What happens to an image after its bytes are stored: its metadata
//! (EXIF: camera, GPS; XMP; comments) is stripped, its pixels decoded under
//! limits, and a thumbnail of at most [`THUMB_SIDE`] on its long side made.
//!
//! The work is CPU-bound, so it runs on `spawn_blocking` under a semaphore
//! of `IMAGE_WORKERS` permits, with at most [`QUEUE_PER_WORKER`] uploads per
//! worker waiting; beyond that an upload gets 503 `busy` (try again). An
//! upload waits for its worker *before* its image is read into memory
//! ([`ImageWorkers::take`], then [`Worker::run`]), so the images a gateway
//! holds at once are at most one per worker, however many wait.

use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use chat_proto::files::THUMB_SIDE;
use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use img_parts::ImageEXIF;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Uploads that may wait for a worker, per worker. Waiting holds no image
/// in memory (its bytes are in the store), only the upload's request.
pub(crate) const QUEUE_PER_WORKER: usize = 32;

/// Why an image is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadImage {
    #[error("the image is {width} x {height} = {} pixels; at most {max} pixels", *width as u64 * *height as u64)]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("the image cannot be read: {0}")]
    Undecodable(String),
}

/// An image as it is stored, and its thumbnail.
#[derive(Debug)]
pub(crate) struct Processed {
    /// The file without its metadata: what is stored and served.
    pub stripped: Bytes,
    pub width: u32,
    pub height: u32,
    pub thumb: Bytes,
    pub thumb_width: u32,
    pub thumb_height: u32,
}

/// The dimensions `bytes` (the start of a file, or all of it) claim,
/// refused when width × height passes `max_pixels`; nothing is decoded.
pub(crate) fn check_dimensions(bytes: &[u8], format: ImageFormat, max_pixels: u64) -> Result<(u32, u32), BadImage> {
    let (width, height) = ImageReader::with_format(Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| BadImage::Undecodable(e.to_string()))?;
    if width as u64 * height as u64 > max_pixels {
        return Err(BadImage::TooManyPixels { width, height, max: max_pixels });
    }
    Ok((width, height))
}

/// Removes what says where and with what a picture was taken.
fn strip(bytes: Bytes, format: ImageFormat) -> Result<Bytes, BadImage> {
    let bad = |e: img_parts::Error| BadImage::Undecodable(e.to_string());
    Ok(match format {
        ImageFormat::Jpeg => {
            use img_parts::jpeg::{Jpeg, markers};
            let mut jpeg = Jpeg::from_bytes(bytes).map_err(bad)?;
            // APP1: EXIF and XMP; APP13: Photoshop/IPTC; COM: comments.
            jpeg.segments_mut().retain(|s| !matches!(s.marker(), markers::APP1 | markers::APP13 | markers::COM));
            jpeg.encoder().bytes()
        }
        ImageFormat::Png => {
            let mut png = img_parts::png::Png::from_bytes(bytes).map_err(bad)?;
            png.set_exif(None);
            // Text chunks carry XMP and free-form metadata.
            png.chunks_mut().retain(|c| !matches!(&c.kind(), b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf" | b"tIME"));
            png.encoder().bytes()
        }
        ImageFormat::WebP => {
            let mut webp = img_parts::webp::WebP::from_bytes(bytes).map_err(bad)?;
            webp.set_exif(None);
            webp.remove_chunks_by_id(*b"XMP ");
            webp.encoder().bytes()
        }
        // GIF has no EXIF; kept as it is.
        _ => bytes,
    })
}

/// Strips, decodes and thumbnails `bytes` (blocking: run on a worker).
pub(crate) fn process(bytes: Bytes, format: ImageFormat, max_pixels: u64) -> Result<Processed, BadImage> {
    let (width, height) = check_dimensions(&bytes, format, max_pixels)?;
    let stripped = strip(bytes, format)?;
    let mut reader = ImageReader::with_format(Cursor::new(&stripped[..]), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // RGBA16 is the widest buffer a decoder allocates for these formats.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 * 1024 * 1024));
    reader.limits(limits);
    let image = reader.decode().map_err(|e| BadImage::Undecodable(e.to_string()))?;
    let thumb = if width > THUMB_SIDE || height > THUMB_SIDE { image.thumbnail(THUMB_SIDE, THUMB_SIDE) } else { image };
    let (thumb_width, thumb_height) = (thumb.width(), thumb.height());
    let thumb = encode_thumb(&thumb)?;
    Ok(Processed { stripped, width, height, thumb, thumb_width, thumb_height })
}

/// JPEG at quality 80, or PNG when the image has transparency.
fn encode_thumb(thumb: &DynamicImage) -> Result<Bytes, BadImage> {
    let mut out = Vec::new();
    let done = if thumb.color().has_alpha() {
        thumb.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
    } else {
        JpegEncoder::new_with_quality(&mut out, 80).encode_image(&thumb.to_rgb8())
    };
    done.map_err(|e| BadImage::Undecodable(format!("its thumbnail: {e}")))?;
    Ok(Bytes::from(out))
}

/// The bounded pool images wait in and are worked on.
#[derive(Debug)]
pub(crate) struct ImageWorkers {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// The pool is full: 503.
#[derive(Debug)]
pub(crate) struct Busy;

impl ImageWorkers {
    pub(crate) fn new(workers: usize) -> Self {
        let workers = workers.max(1);
        ImageWorkers {
            permits: Arc::new(Semaphore::new(workers)),
            waiting: AtomicUsize::new(0),
            max_waiting: workers * QUEUE_PER_WORKER,
        }
    }

    /// Waits for a free worker; `Err(Busy)` at once when too many uploads
    /// wait already. Read the image only once this answers.
    pub(crate) async fn take(&self) -> Result<Worker, Busy> {
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Busy);
        }
        let permit = Arc::clone(&self.permits).acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        permit.map(|permit| Worker { permit }).map_err(|_| Busy)
    }
}

/// A worker taken for one image: held from before its bytes are read until
/// its thumbnail is made.
#[derive(Debug)]
pub(crate) struct Worker {
    permit: OwnedSemaphorePermit,
}

impl Worker {
    /// Strips, decodes and thumbnails the image, off the async runtime.
    pub(crate) async fn run(self, bytes: Bytes, format: ImageFormat, max_pixels: u64) -> Result<Processed, BadImage> {
        let permit = self.permit;
        let worked = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            process(bytes, format, max_pixels)
        })
        .await;
        worked.unwrap_or_else(|e| Err(BadImage::Undecodable(format!("the image worker failed: {e}"))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, RgbImage, RgbaImage};

    fn png(width: u32, height: u32, alpha: bool) -> Bytes {
        let mut out = Vec::new();
        let encoder = image::codecs::png::PngEncoder::new(&mut out);
        if alpha {
            let img = RgbaImage::from_pixel(width, height, image::Rgba([1, 2, 3, 100]));
            encoder.write_image(&img, width, height, image::ExtendedColorType::Rgba8).expect("png");
        } else {
            let img = RgbImage::from_pixel(width, height, image::Rgb([200, 10, 10]));
            encoder.write_image(&img, width, height, image::ExtendedColorType::Rgb8).expect("png");
        }
        Bytes::from(out)
    }

    #[test]
    fn thumbnails_keep_the_aspect_within_the_side_and_small_images_their_size() {
        let wide = process(png(1000, 500, false), ImageFormat::Png, 40_000_000).expect("wide");
        assert_eq!((wide.width, wide.height, wide.thumb_width, wide.thumb_height), (1000, 500, 400, 200));
        assert_eq!(&wide.thumb[..2], b"\xff\xd8", "opaque: a JPEG thumbnail");
        let tall = process(png(300, 900, true), ImageFormat::Png, 40_000_000).expect("tall");
        assert_eq!((tall.thumb_width, tall.thumb_height), (133, 400));
        assert_eq!(&tall.thumb[..4], b"\x89PNG", "transparent: a PNG thumbnail");
        let small = process(png(40, 30, false), ImageFormat::Png, 40_000_000).expect("small");
        assert_eq!((small.thumb_width, small.thumb_height), (40, 30));
    }

    #[test]
    fn a_header_claiming_too_many_pixels_is_refused_before_decoding() {
        let bytes = png(100, 100, false);
        assert!(matches!(
            check_dimensions(&bytes, ImageFormat::Png, 9_999),
            Err(BadImage::TooManyPixels { width: 100, height: 100, .. })
        ));
        assert!(matches!(
            process(Bytes::from_static(b"\x89PNG\r\n\x1a\ngarbage"), ImageFormat::Png, 100),
            Err(BadImage::Undecodable(_))
        ));
    }
}
