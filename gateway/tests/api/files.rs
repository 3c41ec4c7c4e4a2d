//! Attachments over real HTTP on a real topology (redis-server, a
//! room-service, gateways on port 0): hostile uploads refused with what was
//! wrong and nothing kept; signed URLs; the blob store on a real
//! S3-compatible server (`s3s-fs`). Tests marked "needs the room-service's
//! Attach/GetAttachment" go through the room-service's attachment records.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use chat_runtime::blobs::{BlobArgs, BlobStore};
use chat_testkit::S3Server;
use chat_testkit::s3_server::{ACCESS_KEY, BUCKET, SECRET_KEY};
use futures_util::TryStreamExt;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::Topology;

const SECRET: &str = "files-test-secret";
const LIMIT: u64 = 1024 * 1024;

fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-test-{what}-{}-{:x}", std::process::id(), rand::random::<u64>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// One gateway (or two) sharing `files_dir` and one FILES_SECRET, with a
/// 1 MiB upload limit.
async fn topology(gateways: usize, files_dir: &Path) -> Topology {
    let dir = files_dir.to_owned();
    Topology::start_configured(
        1,
        gateways,
        |_| {},
        move |gw| {
            gw.blobs.files_dir = Some(dir);
            gw.files_secret = Some(SECRET.into());
            gw.max_upload_bytes = LIMIT;
        },
    )
    .await
}

/// Files under `dir` (recursively): what the store holds.
fn stored(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { todo.push(path) } else { found.push(path) }
        }
    }
    found
}

/// A raw HTTP/1.1 request (so a test can lie in its headers or stream a
/// chunked body); the status and the body of the answer.
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    // The gateway may answer (and close) before the body is all sent.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn upload_path(room: &str, name: &str, session: &str) -> String {
    let name: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect();
    format!("/upload?room={room}&name={name}&session={session}")
}

async fn post(addr: SocketAddr, path: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A PNG whose header claims `width` x `height` (with a valid CRC), then
/// a few bytes of nothing: an image bomb's opening.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(&ihdr);
    png.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    png.extend_from_slice(&[0; 64]);
    png
}

/// A JPEG whose EXIF (APP1) names where it was taken.
fn jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
    use img_parts::ImageEXIF;
    let mut plain = Vec::new();
    image::RgbImage::from_pixel(width, height, image::Rgb([120, 40, 200]))
        .write_to(&mut std::io::Cursor::new(&mut plain), image::ImageFormat::Jpeg)
        .expect("jpeg");
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(Bytes::from(plain)).expect("parse");
    jpeg.set_exif(Some(Bytes::from_static(b"MM\0*\0\0\0\x08GPS-SECRET 48.8584N 2.2945E")));
    jpeg.encoder().bytes().to_vec()
}

/// A phone photo stored sideways: its pixels are `width` x `height`, its
/// EXIF says "turn 90° clockwise" (orientation 6) and where it was taken.
fn jpeg_sideways(width: u32, height: u32) -> Vec<u8> {
    use img_parts::ImageEXIF;
    let mut plain = Vec::new();
    image::RgbImage::from_pixel(width, height, image::Rgb([20, 140, 90]))
        .write_to(&mut std::io::Cursor::new(&mut plain), image::ImageFormat::Jpeg)
        .expect("jpeg");
    let mut jpeg = img_parts::jpeg::Jpeg::from_bytes(Bytes::from(plain)).expect("parse");
    // A big-endian TIFF, one directory entry: 0x0112 Orientation, SHORT, 1, value 6.
    let mut exif = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0".to_vec();
    exif.extend_from_slice(b"GPS-SECRET 48.8584N 2.2945E");
    jpeg.set_exif(Some(Bytes::from(exif)));
    jpeg.encoder().bytes().to_vec()
}

/// The orientation a file's EXIF gives, as its number (1: as stored).
fn exif_orientation(bytes: &[u8]) -> u8 {
    use image::ImageDecoder;
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().expect("format");
    reader.into_decoder().expect("decoder").orientation().expect("orientation").to_exif()
}

/// What is sent (what, path, Content-Type, body) and the status and code expected.
type Case = (&'static str, String, &'static str, Vec<u8>, u16, &'static str);

#[tokio::test]
async fn hostile_uploads_are_refused_with_why_and_nothing_is_kept() {
    let dir = temp_dir("files-hostile");
    let topology = topology(1, &dir).await;
    let gw = topology.gateway_addr(0);
    let mut client = topology.client(0).await;
    client.join("lobby", "ann").await;
    let session = client.session();

    let cases: Vec<Case> = vec![
        ("no session", "/upload?room=lobby&name=a.txt".into(), "text/plain", b"hi".to_vec(), 400, "bad_request"),
        (
            "a path as name",
            upload_path("lobby", "../etc/passwd", &session),
            "text/plain",
            b"x".to_vec(),
            400,
            "bad_request",
        ),
        (
            "a control char",
            upload_path("lobby", "bad\u{7}.txt", &session),
            "text/plain",
            b"x".to_vec(),
            400,
            "bad_request",
        ),
        (
            "a bidi override",
            upload_path("lobby", "invoice\u{202E}fdp.exe", &session),
            "text/plain",
            b"x".to_vec(),
            400,
            "bad_request",
        ),
        (
            "a bad room",
            upload_path("no%20such%20room!", "a.txt", &session),
            "text/plain",
            b"x".to_vec(),
            400,
            "bad_request",
        ),
        (
            "an HTML PNG",
            upload_path("lobby", "cat.png", &session),
            "image/png",
            b"<!DOCTYPE html><html><script>alert(1)</script></html>".to_vec(),
            415,
            "not_an_image",
        ),
        (
            "an HTML 'image' by type only",
            upload_path("lobby", "cat", &session),
            "image/jpeg",
            b"<html><body>hi</body></html>".to_vec(),
            415,
            "not_an_image",
        ),
        (
            "a 100000 x 100000 PNG",
            upload_path("lobby", "bomb.png", &session),
            "image/png",
            png_claiming(100_000, 100_000),
            422,
            "bad_image",
        ),
        (
            "over the limit",
            upload_path("lobby", "big.bin", &session),
            "application/octet-stream",
            vec![7; LIMIT as usize + 1],
            413,
            "too_big",
        ),
    ];
    for (case, path, content_type, body, status, code) in cases {
        let (got, answer) = post(gw, &path, content_type, body).await;
        assert_eq!(got, status, "{case}: {answer}");
        assert_eq!(answer["code"], code, "{case}: {answer}");
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()), "{case}: says why: {answer}");
    }
    let (_, html) = post(gw, &upload_path("lobby", "cat.png", &session), "image/png", b"<html></html>".to_vec()).await;
    assert!(html["message"].as_str().unwrap_or("").contains("says image/png"), "{html}");

    // A Content-Length over the limit: refused before the body is read.
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {gw}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        upload_path("lobby", "huge.bin", &session),
        100 * LIMIT
    );
    let (status, body) = raw(gw, &head, b"").await;
    assert_eq!(status, 413, "a declared length over the limit: {body}");

    // No length at all (chunked): cut off the moment it passes the limit.
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {gw}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        upload_path("lobby", "sneaky.bin", &session)
    );
    let chunk = vec![b'z'; 64 * 1024];
    let mut body = Vec::new();
    for _ in 0..(2 * LIMIT as usize / chunk.len()) {
        body.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        body.extend_from_slice(&chunk);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let (status, answer) = raw(gw, &head, &body).await;
    assert_eq!(status, 413, "a chunked body over the limit: {answer}");
    assert!(answer.contains("too_big"), "{answer}");

    // Nothing of any of them stays: no blob, no half upload.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stored(&dir), Vec::<PathBuf>::new(), "refused uploads left files behind");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_upload_flood_is_rate_limited_per_user() {
    let dir = temp_dir("files-flood");
    let topology = topology(1, &dir).await;
    let gw = topology.gateway_addr(0);
    let mut client = topology.client(0).await;
    client.join("lobby", "ann").await;
    let path = upload_path("lobby", "a.txt", &client.session());
    let mut limited = None;
    for i in 0..30 {
        // Refused at the "bad name" check would not count; these are
        // well-formed uploads (what happens after the limit check is the
        // room-service's business).
        let response = reqwest::Client::new()
            .post(format!("http://{gw}{path}"))
            .body(format!("note {i}"))
            .send()
            .await
            .expect("upload");
        if response.status().as_u16() == 429 {
            limited = Some((i, response.headers().get("retry-after").cloned()));
            break;
        }
    }
    let (at, retry_after) = limited.expect("30 uploads at once are never rate-limited");
    assert_eq!(at, 10, "the burst is 10 uploads");
    assert!(retry_after.is_some(), "a 429 says when to come back");

    // Another session is not slowed by this one.
    let mut other = topology.client(0).await;
    other.join("lobby", "bob").await;
    let response = reqwest::Client::new()
        .post(format!("http://{gw}{}", upload_path("lobby", "b.txt", &other.session())))
        .body("hello")
        .send()
        .await
        .expect("upload");
    assert_ne!(response.status().as_u16(), 429, "someone else's flood limits only them");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn file_urls_must_be_signed_by_the_chat_and_unexpired() {
    let dir = temp_dir("files-urls");
    let topology = topology(1, &dir).await;
    let gw = topology.gateway_addr(0);
    let id = "at-0123456789abcdef0123456789abcdef";
    let get = |path: String| async move {
        let response = reqwest::get(format!("http://{gw}{path}")).await.expect("get");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    };
    for (case, path, status) in [
        ("unsigned", format!("/files/{id}"), 403),
        ("a made-up signature", format!("/files/{id}?exp=99999999999&sig=AAAA"), 403),
        ("expired (signature checked first: forged too)", format!("/files/{id}?exp=1&sig=AAAA"), 403),
        ("not an id", "/files/..%2F..%2Fetc%2Fpasswd?exp=1&sig=x".to_owned(), 404),
    ] {
        let (got, body) = get(path).await;
        assert_eq!(got, status, "{case}: {body}");
    }
    // A genuinely signed URL that has expired: 410.
    let exp = 3600u64;
    let sig = {
        use base64::Engine;
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(format!("{id}/file/{exp}").as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    };
    let (got, body) = get(format!("/files/{id}?exp={exp}&sig={sig}")).await;
    assert_eq!(got, 410, "an expired link: {body}");
    assert!(body.contains("expired"), "{body}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Needs the room-service's Attach and GetAttachment (branch h-files-rs):
/// an upload on one gateway comes back byte-for-byte from another, the
/// EXIF stripped, with a thumbnail of the right size, ranges and ETag.
async fn upload_and_download_across_gateways(files_dir: Option<&Path>, s3: Option<&S3Server>) {
    let dir = files_dir.map(Path::to_owned);
    let s3 = s3.map(|s| s.endpoint());
    let topology = Topology::start_configured(
        1,
        2,
        |_| {},
        move |gw| {
            gw.blobs.files_dir = dir;
            if let Some(endpoint) = s3 {
                gw.blobs.s3_bucket = Some(BUCKET.into());
                gw.blobs.s3_endpoint = Some(endpoint);
                gw.blobs.s3_access_key_id = Some(ACCESS_KEY.into());
                gw.blobs.s3_secret_access_key = Some(SECRET_KEY.into());
            }
            gw.files_secret = Some(SECRET.into());
        },
    )
    .await;
    let (gw0, gw1) = (topology.gateway_addr(0), topology.gateway_addr(1));
    let mut ann = topology.client(0).await;
    ann.join("lobby", "ann").await;
    let mut carl = topology.client(1).await;
    carl.join("lobby", "carl").await;

    // A PDF-ish download: served back exactly, as an attachment.
    let doc: Vec<u8> = b"%PDF-1.7\n".iter().copied().chain((0..300_000u32).map(|i| (i % 253) as u8)).collect();
    let (status, pdf) =
        post(gw0, &upload_path("lobby", "report 2026.pdf", &ann.session()), "application/pdf", doc.clone()).await;
    assert_eq!(status, 201, "{pdf}");
    assert_eq!(pdf["type"], "application/pdf");
    assert_eq!(pdf["size"], doc.len() as u64);
    assert!(pdf.get("thumb").is_none(), "{pdf}");
    let url = pdf["url"].as_str().expect("url");
    let response = reqwest::get(format!("http://{gw1}{url}")).await.expect("download");
    assert_eq!(response.status().as_u16(), 200);
    let h = response.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["content-disposition"], "attachment; filename*=UTF-8''report%202026.pdf");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "sandbox; default-src 'none'");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "private, max-age=31536000, immutable");
    assert_eq!(h["accept-ranges"], "bytes");
    let etag = h["etag"].clone();
    assert_eq!(response.bytes().await.expect("bytes").to_vec(), doc, "byte-for-byte on the other gateway");
    let client = reqwest::Client::new();
    let ranged = client.get(format!("http://{gw1}{url}")).header("range", "bytes=100-199").send().await.expect("range");
    assert_eq!(ranged.status().as_u16(), 206);
    assert_eq!(ranged.headers()["content-range"], format!("bytes 100-199/{}", doc.len()).as_str());
    assert_eq!(ranged.bytes().await.expect("bytes").to_vec(), &doc[100..200]);
    let past =
        client.get(format!("http://{gw1}{url}")).header("range", "bytes=999999999-").send().await.expect("range");
    assert_eq!(past.status().as_u16(), 416);
    let cached = client.get(format!("http://{gw1}{url}")).header("if-none-match", etag).send().await.expect("etag");
    assert_eq!(cached.status().as_u16(), 304);

    // A photo with GPS in its EXIF: served without it, with a thumbnail.
    let photo = jpeg_with_gps(1200, 800);
    let (status, img) = post(gw0, &upload_path("lobby", "beach.jpg", &ann.session()), "image/jpeg", photo).await;
    assert_eq!(status, 201, "{img}");
    assert_eq!((img["width"].as_u64(), img["height"].as_u64()), (Some(1200), Some(800)));
    assert_eq!((img["thumb"]["width"].as_u64(), img["thumb"]["height"].as_u64()), (Some(400), Some(267)));
    let served = reqwest::get(format!("http://{gw1}{}", img["url"].as_str().expect("url"))).await.expect("get");
    assert_eq!(served.headers()["content-disposition"], "inline; filename*=UTF-8''beach.jpg");
    let served = served.bytes().await.expect("bytes");
    assert!(!served.windows(10).any(|w| w == b"GPS-SECRET"), "the EXIF GPS is still in the served JPEG");
    assert_eq!(image::load_from_memory(&served).expect("a JPEG").width(), 1200);
    let thumb =
        reqwest::get(format!("http://{gw1}{}", img["thumb"]["url"].as_str().expect("url"))).await.expect("thumb");
    assert_eq!(thumb.headers()["content-type"], "image/jpeg");
    let thumb = image::load_from_memory(&thumb.bytes().await.expect("bytes")).expect("thumb decodes");
    assert_eq!((thumb.width(), thumb.height()), (400, 267));

    // A phone photo held upright but stored sideways: measured and
    // thumbnailed upright; the served file keeps only its orientation.
    let (status, turned) =
        post(gw0, &upload_path("lobby", "portrait.jpg", &ann.session()), "image/jpeg", jpeg_sideways(1200, 800)).await;
    assert_eq!(status, 201, "{turned}");
    assert_eq!((turned["width"].as_u64(), turned["height"].as_u64()), (Some(800), Some(1200)), "{turned}");
    assert_eq!((turned["thumb"]["width"].as_u64(), turned["thumb"]["height"].as_u64()), (Some(267), Some(400)));
    let served = reqwest::get(format!("http://{gw1}{}", turned["url"].as_str().expect("url"))).await.expect("get");
    let served = served.bytes().await.expect("bytes");
    assert!(!served.windows(10).any(|w| w == b"GPS-SECRET"), "the EXIF GPS is still in the served JPEG");
    assert_eq!(exif_orientation(&served), 6, "the served photo still says how to turn it");
    let thumb =
        reqwest::get(format!("http://{gw1}{}", turned["thumb"]["url"].as_str().expect("url"))).await.expect("thumb");
    let thumb = thumb.bytes().await.expect("bytes");
    assert_eq!(exif_orientation(&thumb), 1, "the thumbnail is turned already");
    assert_eq!(image::load_from_memory(&thumb).expect("thumb").width(), 267);
    assert_eq!(ann.welcome()["limits"]["max_upload_bytes"], 25 * 1024 * 1024, "welcome tells the page the limit");

    // Posted: the message frame on the other gateway carries both, with
    // signed URLs that serve the same bytes there.
    let ids = [pdf["id"].clone(), img["id"].clone()];
    ann.send(serde_json::json!({"type": "send", "room": "lobby", "text": "", "attachments": ids})).await;
    let message = carl.next_of("message").await;
    let shown = message["attachments"].as_array().expect("attachments in the message frame").clone();
    assert_eq!(shown.len(), 2, "{message}");
    assert_eq!(shown[0]["id"], pdf["id"]);
    assert_eq!(shown[0]["name"], "report 2026.pdf");
    assert_eq!(shown[1]["thumb"]["width"], 400, "{message}");
    let again = reqwest::get(format!("http://{gw1}{}", shown[0]["url"].as_str().expect("url"))).await.expect("get");
    assert_eq!(again.bytes().await.expect("bytes").to_vec(), doc, "from the message frame's URL, byte-for-byte");

    // Sends that name attachments wrongly: each an error frame.
    let eleven: Vec<String> = (0..11).map(|i| format!("at-{i:032x}")).collect();
    ann.join("side", "ann").await;
    let (status, elsewhere) =
        post(gw0, &upload_path("side", "other.txt", &ann.session()), "text/plain", b"side".to_vec()).await;
    assert_eq!(status, 201, "{elsewhere}");
    for (case, attachments) in [
        ("11 attachments", serde_json::json!(eleven)),
        ("a malformed id", serde_json::json!(["../../etc/passwd"])),
        ("an id nobody attached", serde_json::json!([format!("at-{:032x}", 7)])),
        ("another room's attachment", serde_json::json!([elsewhere["id"]])),
        ("one posted already", serde_json::json!([pdf["id"]])),
    ] {
        ann.send(serde_json::json!({"type": "send", "room": "lobby", "text": "see", "attachments": attachments})).await;
        let error = ann.next_of("error").await;
        assert_eq!(error["code"], "bad_attachment", "{case}: {error}");
    }

    // A non-member may not upload to the room.
    let bob = topology.client(1).await;
    let (status, refused) =
        post(gw1, &upload_path("lobby", "x.txt", &bob.session()), "text/plain", b"x".to_vec()).await;
    assert_eq!(status, 403, "{refused}");
    assert!(refused["message"].as_str().unwrap_or("").contains("join it first"), "{refused}");
}

#[tokio::test]
async fn from_local_disk_files_come_back_byte_for_byte_on_another_gateway() {
    let dir = temp_dir("files-e2e");
    upload_and_download_across_gateways(Some(&dir), None).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn from_an_s3_server_files_come_back_byte_for_byte_on_another_gateway() {
    let s3 = S3Server::start().await;
    upload_and_download_across_gateways(None, Some(&s3)).await;
    assert!(!stored(&s3.bucket_dir()).is_empty(), "the files went to the S3 server");
}

#[tokio::test]
async fn the_blob_store_streams_ranges_and_sweeps_on_a_real_s3_server() {
    let s3 = S3Server::start().await;
    let store = BlobStore::open(&BlobArgs {
        s3_bucket: Some(BUCKET.into()),
        s3_endpoint: Some(s3.endpoint()),
        s3_region: "us-east-1".into(),
        s3_access_key_id: Some(ACCESS_KEY.into()),
        s3_secret_access_key: Some(SECRET_KEY.into()),
        ..Default::default()
    })
    .expect("open");
    // Over one 5 MiB part: a real multipart upload.
    let data: Vec<u8> = (0..(6 * 1024 * 1024 + 3)).map(|i| (i % 241) as u8).collect();
    let mut upload = store.begin().await.expect("begin");
    for chunk in data.chunks(100 * 1024) {
        upload.write(Bytes::copy_from_slice(chunk)).await.expect("write");
    }
    let blob = upload.finish().await.expect("finish");
    assert!(chat_proto::files::is_blob(&blob), "{blob}");
    assert_eq!(store.size(&blob).await.expect("size"), data.len() as u64);
    let whole: Vec<Bytes> = store.read(&blob, None).await.expect("read").try_collect().await.expect("all");
    assert_eq!(whole.concat(), data);
    let part: Vec<Bytes> = store.read(&blob, Some(5..50)).await.expect("read").try_collect().await.expect("part");
    assert_eq!(part.concat(), &data[5..50]);
    let mut again = store.begin().await.expect("begin");
    again.write(Bytes::from(data.clone())).await.expect("write");
    assert_eq!(again.finish().await.expect("finish"), blob, "the same bytes, the same blob");
    let mut dropped = store.begin().await.expect("begin");
    dropped.write(Bytes::from_static(b"half")).await.expect("write");
    dropped.abort().await;
    assert_eq!(store.sweep_uploads(Duration::ZERO).await.expect("sweep"), 0, "no temp object left");
    store.delete(&blob).await.expect("delete");
    assert!(store.size(&blob).await.is_err(), "deleted");
}
