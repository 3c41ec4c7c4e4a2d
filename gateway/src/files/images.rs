//! What happens to an image once its bytes are in: its metadata (EXIF:
//! camera, GPS, time; XMP; comments) is stripped, its pixels decoded under
//! limits, and a thumbnail of at most [`THUMB_SIDE`] on its long side made.
//!
//! One piece of EXIF is kept: the orientation a phone records instead of
//! turning the pixels. The served file carries it in an EXIF block of its
//! own (so browsers show the photo upright), the thumbnail is turned, and
//! the width and height are those of the upright picture.
//!
//! The work is CPU-bound: [`process`] runs on the image workers
//! (`super::workers`), never on the async runtime.

use std::io::Cursor;

use bytes::Bytes;
use chat_proto::files::THUMB_SIDE;
use chat_runtime::blobs::blob_name;
use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use img_parts::ImageEXIF;

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
    /// Its blob name, and the thumbnail's: hashed here, on the worker.
    pub blob: String,
    pub thumb_blob: String,
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

/// How the picture is to be turned, from its EXIF (none: as stored).
fn orientation(bytes: &[u8], format: ImageFormat) -> Orientation {
    ImageReader::with_format(Cursor::new(bytes), format)
        .into_decoder()
        .and_then(|mut decoder| decoder.orientation())
        .unwrap_or(Orientation::NoTransforms)
}

/// An EXIF block that says nothing but `orientation`: a big-endian TIFF
/// header and one directory of one entry (tag 0x0112, a SHORT).
fn orientation_exif(orientation: Orientation) -> Bytes {
    let mut tiff = Vec::with_capacity(26);
    tiff.extend_from_slice(b"MM\0\x2a");
    tiff.extend_from_slice(&8u32.to_be_bytes()); // the directory's offset
    tiff.extend_from_slice(&1u16.to_be_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_be_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_be_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_be_bytes()); // one value
    tiff.extend_from_slice(&u16::from(orientation.to_exif()).to_be_bytes());
    tiff.extend_from_slice(&[0, 0]); // the value field's other half
    tiff.extend_from_slice(&0u32.to_be_bytes()); // no next directory
    Bytes::from(tiff)
}

/// Removes what says where, when and with what a picture was taken,
/// keeping only how it is turned (`orientation`).
fn strip(bytes: Bytes, format: ImageFormat, orientation: Orientation) -> Result<Bytes, BadImage> {
    let bad = |e: img_parts::Error| BadImage::Undecodable(e.to_string());
    let exif = (orientation != Orientation::NoTransforms).then(|| orientation_exif(orientation));
    Ok(match format {
        ImageFormat::Jpeg => {
            use img_parts::jpeg::{Jpeg, markers};
            let mut jpeg = Jpeg::from_bytes(bytes).map_err(bad)?;
            // APP1: EXIF and XMP; APP13: Photoshop/IPTC; COM: comments.
            jpeg.segments_mut().retain(|s| !matches!(s.marker(), markers::APP1 | markers::APP13 | markers::COM));
            jpeg.set_exif(exif);
            jpeg.encoder().bytes()
        }
        ImageFormat::Png => {
            let mut png = img_parts::png::Png::from_bytes(bytes).map_err(bad)?;
            // Text chunks carry XMP and free-form metadata.
            png.chunks_mut().retain(|c| !matches!(&c.kind(), b"tEXt" | b"zTXt" | b"iTXt" | b"eXIf" | b"tIME"));
            png.set_exif(exif);
            png.encoder().bytes()
        }
        ImageFormat::WebP => {
            let mut webp = img_parts::webp::WebP::from_bytes(bytes).map_err(bad)?;
            webp.remove_chunks_by_id(*b"XMP ");
            webp.set_exif(exif);
            webp.encoder().bytes()
        }
        // GIF has no EXIF; kept as it is.
        _ => bytes,
    })
}

/// Whether `orientation` swaps width and height.
fn turns_sideways(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// Strips, decodes and thumbnails `bytes` (blocking: run on a worker).
pub(crate) fn process(bytes: Bytes, format: ImageFormat, max_pixels: u64) -> Result<Processed, BadImage> {
    let (width, height) = check_dimensions(&bytes, format, max_pixels)?;
    let orientation = orientation(&bytes, format);
    let stripped = strip(bytes, format, orientation)?;
    let mut reader = ImageReader::with_format(Cursor::new(&stripped[..]), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // RGBA16 is the widest buffer a decoder allocates for these formats.
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(64 * 1024 * 1024));
    reader.limits(limits);
    let image = reader.decode().map_err(|e| BadImage::Undecodable(e.to_string()))?;
    let mut thumb =
        if width > THUMB_SIDE || height > THUMB_SIDE { image.thumbnail(THUMB_SIDE, THUMB_SIDE) } else { image };
    // Turned once small: cheaper than turning the whole picture.
    thumb.apply_orientation(orientation);
    let (thumb_width, thumb_height) = (thumb.width(), thumb.height());
    let thumb = encode_thumb(&thumb)?;
    let (width, height) = if turns_sideways(orientation) { (height, width) } else { (width, height) };
    let (blob, thumb_blob) = (blob_name(&stripped), blob_name(&thumb));
    Ok(Processed { stripped, blob, thumb_blob, width, height, thumb, thumb_width, thumb_height })
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
    fn a_sideways_photo_keeps_only_its_orientation_and_is_measured_upright() {
        use img_parts::jpeg::{Jpeg, JpegSegment, markers};
        let mut jpeg_bytes = Vec::new();
        let img = RgbImage::from_pixel(600, 300, image::Rgb([10, 200, 10]));
        JpegEncoder::new_with_quality(&mut jpeg_bytes, 90).encode_image(&img).expect("jpeg");
        // A camera's EXIF (orientation 6: turn 90° clockwise, plus a
        // "GPS" marker a reader must not get back) and a comment.
        let mut exif = orientation_exif(Orientation::Rotate90).to_vec();
        exif.extend_from_slice(b"GPS 48.8584 N 2.2945 E");
        let mut jpeg = Jpeg::from_bytes(Bytes::from(jpeg_bytes)).expect("parse");
        jpeg.set_exif(Some(Bytes::from(exif)));
        jpeg.segments_mut().insert(1, JpegSegment::new_with_contents(markers::COM, Bytes::from_static(b"secret")));
        let photo = jpeg.encoder().bytes();
        assert_eq!(orientation(&photo, ImageFormat::Jpeg), Orientation::Rotate90);

        let processed = process(photo, ImageFormat::Jpeg, 40_000_000).expect("processed");
        assert_eq!((processed.width, processed.height), (300, 600), "measured upright");
        assert_eq!((processed.thumb_width, processed.thumb_height), (200, 400), "the thumbnail is turned");
        let served = &processed.stripped[..];
        assert!(!served.windows(3).any(|w| w == b"GPS"), "the camera's EXIF is gone");
        assert!(!served.windows(6).any(|w| w == b"secret"), "comments are gone");
        assert_eq!(orientation(served, ImageFormat::Jpeg), Orientation::Rotate90, "the orientation stays");
        let upright = process(png(600, 300, false), ImageFormat::Png, 40_000_000).expect("png");
        assert!(Jpeg::from_bytes(processed.stripped.clone()).is_ok());
        assert_eq!((upright.width, upright.height), (600, 300));
        assert_eq!(img_parts::png::Png::from_bytes(upright.stripped).expect("png").exif(), None, "no EXIF added");
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
