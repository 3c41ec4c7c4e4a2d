//! Attachments in a real browser (issue 18): headless Chromium
//! (support/browser.rs) on a real topology of two gateways sharing one
//! files folder and one URL-signing key, as a deployment does.
//!
//! ada (gateway 1) pastes a screenshot — a `ClipboardEvent('paste')`
//! carrying a `DataTransfer` with a PNG `File`, what a browser makes of
//! Ctrl+V after a screenshot — into the message box: it uploads with the
//! page's progress bar, waits as a chip, and goes with the next send with no
//! text. bob (gateway 2) sees the thumbnail loaded (from gateway 2, by its
//! signed URL) at the size the frame gave before it loaded; a click opens
//! the full image in the lightbox, and Escape closes it. A "PNG" that is
//! HTML is refused, and the page says why in words. A text file comes as a
//! chip with its name, type and size that downloads it.
//!
//! Every wait polls the page up to [`DEADLINE`](crate::support::browser::DEADLINE);
//! no sleep is an assertion.

use std::path::PathBuf;

use fantoccini::key::Key;
use serde_json::json;

use crate::support::Topology;
use crate::support::browser::{Driver, Tab};

const SECRET: &str = "browser-files-test-secret-0123456789abcdef";

/// Pastes `arguments[0]` files into the message box: each `[name, type,
/// kind]`, where kind `canvas:<w>x<h>` is a PNG the page draws (real PNG
/// bytes, with colour so it compresses like a screenshot) and `text:<s>`
/// is the bytes of `<s>`. Returns at once; the paste happens when the PNGs
/// are encoded, and sets `window.__pasted`.
const PASTE: &str = r#"
    window.__pasted = false;
    const make = ([name, type, kind]) => {
      if (kind.startsWith('text:')) return Promise.resolve(new File([kind.slice(5)], name, {type}));
      const [w, h] = kind.slice(7).split('x').map(Number);
      const c = document.createElement('canvas');
      c.width = w; c.height = h;
      const g = c.getContext('2d');
      const grad = g.createLinearGradient(0, 0, w, h);
      grad.addColorStop(0, '#4f46e5'); grad.addColorStop(1, '#f59e0b');
      g.fillStyle = grad; g.fillRect(0, 0, w, h);
      g.fillStyle = '#fff'; g.font = '48px sans-serif'; g.fillText('screenshot', 40, 100);
      return new Promise((ok) => c.toBlob((b) => ok(new File([b], name, {type})), 'image/png'));
    };
    Promise.all(arguments[0].map(make)).then((files) => {
      const dt = new DataTransfer();
      for (const f of files) dt.items.add(f);
      const ev = new ClipboardEvent('paste', {clipboardData: dt, bubbles: true, cancelable: true});
      document.querySelector('#composer').dispatchEvent(ev);
      window.__pasted = ev.defaultPrevented;
    });
    return true;
"#;

/// Waits until `ok` (JavaScript over `u`, the composer's uploads as
/// `[name, state, error]`) holds in `tab`; returns `{seen: u}`.
async fn until_uploads(tab: &Tab, what: &str, ok: &str) -> serde_json::Value {
    let script = format!(
        "const u = [...document.querySelectorAll('#uploads li.upload')].map(li => \
           [li.querySelector('.upload-name').textContent, li.dataset.state, \
            li.querySelector('.upload-error')?.textContent ?? '']); \
         return {{ok: {ok}, seen: u}}"
    );
    tab.until(what, &script, vec![]).await
}

/// A folder for the gateways' files, removed when the test ends.
struct FilesDir(PathBuf);

impl FilesDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos();
        let dir = std::env::temp_dir().join(format!("chat-browser-files-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the files folder");
        Self(dir)
    }
}

impl Drop for FilesDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_screenshot_shows_as_a_thumbnail_on_another_gateway_and_opens_full_size() {
    let files = FilesDir::new();
    let dir = files.0.clone();
    let topology = Topology::start_configured(
        1,
        2,
        |_| {},
        move |gw| {
            gw.files_secret = Some(SECRET.into());
            gw.blobs.files_dir = Some(dir);
        },
    )
    .await;
    let mut driver = Driver::start().await;
    let ada = Tab::open(&mut driver, "ada@gw1", topology.gateway_addr(0)).await;
    ada.join("ada", "general").await;
    let bob = Tab::open(&mut driver, "bob@gw2", topology.gateway_addr(1)).await;
    bob.join("bob", "general").await;
    ada.until_members(&["ada", "bob"]).await;

    // A "PNG" that is HTML: refused by the gateway, and the page says why; no retry offered.
    ada.js_args(PASTE, vec![json!([["fake.png", "image/png", "text:<html><script>alert(1)</script></html>"]])]).await;
    let failed = until_uploads(&ada, "the fake PNG refused", "u.length === 1 && u[0][1] === 'failed'").await;
    assert_eq!(
        failed["seen"][0][2],
        json!("fake.png says it is an image, but its contents are not one."),
        "the page says why the upload failed"
    );
    let retry = ada.js("return document.querySelector('#uploads .upload-retry') !== null").await;
    assert_eq!(retry, json!(false), "trying the same bytes again cannot help: no Retry");
    ada.click("#uploads li.upload .upload-remove").await;
    until_uploads(&ada, "the refused file removed", "u.length === 0").await;

    // The screenshot: pasted, uploaded, waiting as a chip, then sent with no text.
    ada.js_args(PASTE, vec![json!([["screenshot.png", "image/png", "canvas:640x480"]])]).await;
    until_uploads(&ada, "the screenshot uploaded", "u.length === 1 && u[0][1] === 'done'").await;
    assert_eq!(ada.js("return window.__pasted").await, json!(true), "the page took the paste (preventDefault)");
    ada.click("#send-btn").await;
    until_uploads(&ada, "the chip gone with the send", "u.length === 0").await;

    // bob, on the other gateway: the thumbnail, sized by the frame, loaded from gateway 2.
    let thumb = "const a = document.querySelector('#messages .msg[data-id] .attachments a.thumb'); \
                 const i = a?.querySelector('img'); \
                 return {ok: i != null && i.complete && i.naturalWidth > 0, \
                         seen: i ? [i.src, i.complete, i.naturalWidth] : null, \
                         size: i ? [i.getAttribute('width'), i.getAttribute('height'), i.naturalWidth, i.naturalHeight] : null, \
                         src: i?.src, href: a?.href, author: a?.closest('.msg').querySelector('.author').textContent, \
                         text: a?.closest('.msg').querySelector('.text').textContent}";
    let seen = bob.until("the screenshot's thumbnail, loaded", thumb, vec![]).await;
    assert_eq!(
        seen["size"],
        json!(["400", "300", 400, 300]),
        "a 640×480 screenshot's thumbnail is 400×300, set before it loads"
    );
    assert_eq!(seen["author"], json!("ada"));
    assert_eq!(seen["text"], json!(""), "a message of a file only");
    let gw2 = format!("http://{}/files/at-", topology.gateway_addr(1));
    for url in [&seen["src"], &seen["href"]] {
        let url = url.as_str().expect("a URL");
        assert!(url.starts_with(&gw2), "bob's page loads files from its own gateway by signed URL: {url}");
        assert!(url.contains("exp=") && url.contains("sig="), "the URL is signed: {url}");
    }
    // ada's tab shows it too, as her own message.
    ada.until(
        "ada's own message with its thumbnail",
        "const i = document.querySelector('#messages .msg.own[data-id] .attachments a.thumb img'); \
         return {ok: i != null && i.complete && i.naturalWidth > 0, seen: i?.src}",
        vec![],
    )
    .await;

    // A click opens the full image in the lightbox; Escape closes it.
    bob.click("#messages .msg[data-id] .attachments a.thumb").await;
    let open = bob
        .until(
            "the lightbox with the full image",
            "const d = document.querySelector('#lightbox'); const i = d.querySelector('.lightbox-img'); \
             return {ok: d.open && i.complete && i.naturalWidth > 0, seen: [d.open, i.src, i.naturalWidth], \
                     size: [i.naturalWidth, i.naturalHeight], name: d.querySelector('.lightbox-name').textContent}",
            vec![],
        )
        .await;
    assert_eq!(open["size"], json!([640, 480]), "the lightbox shows the file itself, not its thumbnail");
    assert_eq!(open["name"], json!("screenshot.png"));
    let focused = bob.client.active_element().await.expect("the focused element");
    focused.send_keys(&Key::Escape).await.expect("press Escape");
    bob.until(
        "the lightbox closed by Escape",
        "const d = document.querySelector('#lightbox'); return {ok: !d.open, seen: d.open}",
        vec![],
    )
    .await;
    // A click anywhere closes it too.
    bob.click("#messages .msg[data-id] .attachments a.thumb").await;
    bob.until("the lightbox open again", "return {ok: document.querySelector('#lightbox').open, seen: false}", vec![])
        .await;
    bob.click("#lightbox .lightbox-img").await;
    bob.until(
        "the lightbox closed by a click",
        "const d = document.querySelector('#lightbox'); return {ok: !d.open, seen: d.open}",
        vec![],
    )
    .await;

    // A file that is not an image: a chip with its name, type and size that downloads it (the
    // gateway knows no type from text bytes: the name's extension says what it is).
    ada.js_args(PASTE, vec![json!([["notes.txt", "text/plain", "text:remember the milk\n"]])]).await;
    until_uploads(&ada, "the notes uploaded", "u.length === 1 && u[0][1] === 'done'").await;
    ada.say("and the notes").await;
    let chip = bob
        .until(
            "the notes as a file chip",
            "const c = document.querySelector('#messages .msg[data-id] .attachments a.file-chip'); \
             return {ok: c != null, seen: null, download: c?.getAttribute('download'), href: c?.href, \
                     name: c?.querySelector('.file-name').textContent, meta: c?.querySelector('.file-meta').textContent, \
                     text: c?.closest('.msg').querySelector('.text').textContent}",
            vec![],
        )
        .await;
    assert_eq!(
        [&chip["download"], &chip["name"], &chip["meta"], &chip["text"]],
        [&json!("notes.txt"), &json!("notes.txt"), &json!("TXT · 18 bytes"), &json!("and the notes")],
        "a chip with the name, type and size, under the message's text"
    );
    assert!(chip["href"].as_str().is_some_and(|h| h.starts_with(&gw2)), "the chip links to the signed URL: {chip}");

    ada.close().await;
    bob.close().await;
    driver.stop().await;
}
