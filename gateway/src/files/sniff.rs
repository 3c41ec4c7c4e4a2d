//! What an uploaded file is, from its first bytes (magic numbers), never
//! from its name or the browser's `Content-Type` — those are only checked
//! for a lie: a file that claims to be an image and is not is refused.

use image::ImageFormat;

/// How much of an upload's start is kept in memory to sniff and to read
/// an image's dimensions from.
pub(crate) const HEAD_BYTES: usize = 256 * 1024;

/// What the bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sniffed {
    /// The MIME type served, e.g. `image/png`, `application/pdf`.
    pub content_type: String,
    /// `Some` for the images the chat decodes and thumbnails.
    pub image: Option<ImageFormat>,
}

pub(crate) fn sniff(head: &[u8]) -> Sniffed {
    let content_type = infer::get(head).map_or("application/octet-stream", |kind| kind.mime_type()).to_owned();
    let image = match content_type.as_str() {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    };
    Sniffed { content_type, image }
}

/// The image type a browser's `Content-Type` or a name's extension claims.
pub(crate) fn claimed_image(content_type: Option<&str>, name: &str) -> Option<String> {
    if let Some(claim) = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
        && claim.starts_with("image/")
    {
        return Some(claim);
    }
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    let claim = match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        _ => return None,
    };
    Some(claim.to_owned())
}

/// Whether the file's claim (if any) matches its bytes: an image claim on
/// bytes that are no image the chat decodes is a 415 with this message.
pub(crate) fn check_claim(claim: Option<&str>, sniffed: &Sniffed) -> Result<(), String> {
    match claim {
        Some(claim) if sniffed.image.is_none() => {
            let what = if sniffed.content_type == "application/octet-stream" {
                "not a known type".to_owned()
            } else {
                sniffed.content_type.clone()
            };
            Err(format!("the file says {claim} but its bytes are {what}: send the real image, or rename it"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_HEAD: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn the_bytes_decide_and_a_lying_claim_is_refused() {
        assert_eq!(sniff(PNG_HEAD).image, Some(ImageFormat::Png));
        assert_eq!(sniff(b"%PDF-1.7\n").content_type, "application/pdf");
        let html = sniff(b"<!DOCTYPE html><html><script>alert(1)</script>");
        assert_eq!(html.image, None);
        let claim = claimed_image(Some("image/png"), "cat.png");
        assert_eq!(claim.as_deref(), Some("image/png"));
        let why = check_claim(claim.as_deref(), &html).expect_err("an HTML PNG");
        assert!(why.contains("says image/png"), "{why}");
        assert_eq!(claimed_image(None, "CAT.JPG").as_deref(), Some("image/jpeg"));
        assert_eq!(claimed_image(Some("application/octet-stream"), "notes.txt"), None);
        assert!(check_claim(None, &html).is_ok(), "no claim: a download");
        assert!(check_claim(Some("image/jpeg"), &sniff(PNG_HEAD)).is_ok(), "an image is an image");
    }
}
