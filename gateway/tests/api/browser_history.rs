//! Scroll-back and search in a real browser (issue 16): headless Chromium
//! (support/browser.rs) against a room-service that archives into a
//! scratch PostgreSQL and keeps only [`HISTORY_LEN`] messages per room in
//! Redis, so the older pages the page scrolls back to come from the store.
//!
//! A protocol client fills a room with [`SEEDED`] messages; once the store
//! holds them all, a tab joins and scrolls to the top until the room's first
//! message and its marker show: every seq appears once, in order, and the
//! message at the top of the view stays there while each page goes in
//! above it. Then a search finds the one old message with a rare word, its
//! hit shows the word in a `<mark>`, and choosing it shows the message,
//! marked: in the tab that scrolled back, where it is; in a fresh tab, in a
//! block of its own around it, left for the newest messages with "Jump to
//! latest".

use chat_testkit::PostgresServer;
use room_service::store::Store;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::support::browser::{Driver, Tab};
use crate::support::{Client, Topology, archived_up_to};

/// Messages each room-service keeps per room in Redis; older ones are only in the store.
const HISTORY_LEN: usize = 100;
/// Messages in the room.
const SEEDED: u64 = 500;
/// The one old message with the word searched for, and the word.
const NEEDLE_SEQ: u64 = 37;
const NEEDLE: &str = "xylophone";
const ROOM: &str = "archive";
/// How far the message at the top of the view may move while a page goes in above it.
const PLACE_PX: f64 = 3.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_scrolls_back_to_the_first_message_and_jumps_to_a_search_hit() {
    let postgres = PostgresServer::start().await;
    let url = postgres.url();
    let topology = Topology::start_with(1, 1, move |config| {
        config.database_url = Some(url);
        config.history_len = HISTORY_LEN;
    })
    .await;
    // The seeding client stays in the room: a room is archived while a
    // gateway reads it.
    let mut seeder = topology.client(0).await;
    seed(&mut seeder).await;
    let store = Store::connect(&postgres.url()).await.expect("the test's own store connection");
    archived_up_to(&store, ROOM, SEEDED).await;
    let mut driver = Driver::start().await;

    // Scroll-back: to the first message, each page going in above the reader.
    let reader = Tab::open(&mut driver, "reader", topology.gateway_addr(0)).await;
    reader.join("reader", ROOM).await;
    until_oldest_shown(&reader, SEEDED - 49).await;
    let mut pages = 0;
    loop {
        let before = scroll_to_top(&reader).await;
        let oldest = before["oldest"].as_u64().expect("a message is shown");
        if oldest == 1 {
            break;
        }
        pages += 1;
        assert!(pages <= SEEDED / 50 + 2, "still not at the first message after {pages} pages");
        until_oldest_shown(&reader, oldest - 1).await;
        let after = place_of(&reader, before["top_seq"].as_u64().expect("a top message")).await;
        let moved = (after - before["top_px"].as_f64().expect("its place")).abs();
        assert!(
            moved <= PLACE_PX,
            "message {} moved {moved}px while the page before {oldest} went in above it",
            before["top_seq"]
        );
    }
    assert!(pages >= (SEEDED - 50) / 50, "the history came in pages, not at once: {pages}");
    let marker = reader
        .until(
            "the first-message marker",
            "const m = document.querySelector('#messages .notice.first'); \
             const first = document.querySelector('#messages .message-list').firstElementChild; \
             return {ok: m !== null && m === first, seen: first?.textContent}",
            vec![],
        )
        .await;
    assert_eq!(marker["ok"], true);
    let marker_text = reader.js("return document.querySelector('#messages .notice.first').textContent").await;
    assert_eq!(marker_text, json!(format!("This is the first message of #{ROOM}")));
    let seqs = shown_seqs(&reader).await;
    assert_eq!(seqs, (1..=SEEDED).collect::<Vec<_>>(), "every seq once, in order");

    // Search: the hit shows the word in a <mark>; choosing it shows the
    // message where it is, marked and focused.
    search(&reader, NEEDLE).await;
    reader.click(&format!("#search-results li.hit[data-seq='{NEEDLE_SEQ}'] button")).await;
    until_found(&reader, NEEDLE_SEQ).await;
    assert_eq!(shown_seqs(&reader).await.len() as u64, SEEDED, "a jump to a shown message loads nothing");
    let focused = reader.js("return document.activeElement?.dataset?.seq ?? null").await;
    assert_eq!(focused, json!(NEEDLE_SEQ.to_string()), "focus goes to the message");
    // Escape closes the search, focus back on its button.
    reader.type_keys(&fantoccini::key::Key::Escape).await;
    reader
        .until(
            "the search closed",
            "return {ok: document.querySelector('#search-panel').hidden \
                     && document.activeElement?.id === 'search-toggle', \
                     seen: document.activeElement?.id}",
            vec![],
        )
        .await;

    // A fresh tab holds only the newest messages: the hit comes in a block
    // of its own, and "Jump to latest" goes back to the newest messages.
    let fresh = Tab::open(&mut driver, "fresh", topology.gateway_addr(0)).await;
    fresh.join("fresh", ROOM).await;
    until_oldest_shown(&fresh, SEEDED - 49).await;
    search(&fresh, NEEDLE).await;
    fresh.click(&format!("#search-results li.hit[data-seq='{NEEDLE_SEQ}'] button")).await;
    until_found(&fresh, NEEDLE_SEQ).await;
    let shown = shown_seqs(&fresh).await;
    assert!(
        !shown.contains(&SEEDED) && shown.windows(2).all(|w| w[1] == w[0] + 1),
        "the block around the hit is contiguous and holds no newest message: {shown:?}"
    );
    let bar = fresh.js("return document.querySelector('#context-bar').hidden").await;
    assert_eq!(bar, json!(false), "the block says it is not the newest messages");
    fresh.click("#latest-btn").await;
    fresh
        .until(
            "the newest messages again",
            "const s = [...document.querySelectorAll('#messages .msg[data-seq]')].map(m => Number(m.dataset.seq)); \
             return {ok: s.includes(arguments[0]) && document.querySelector('#context-bar').hidden, \
                     seen: [s[0], s.at(-1)]}",
            vec![json!(SEEDED)],
        )
        .await;

    reader.close().await;
    fresh.close().await;
    driver.stop().await;
    seeder.close().await;
}

/// Joins the room and sends [`SEEDED`] messages, in batches, reading
/// their echoes so the connection's queue never fills.
async fn seed(client: &mut Client) {
    client.join(ROOM, "seeder").await;
    let text = |seq: u64| {
        if seq == NEEDLE_SEQ {
            format!("message number {seq} mentions a {NEEDLE}")
        } else {
            format!("message number {seq}")
        }
    };
    for batch in (1..=SEEDED).collect::<Vec<_>>().chunks(100) {
        let frames = batch
            .iter()
            .map(|&seq| {
                let frame =
                    json!({"type": "send", "room": ROOM, "text": text(seq), "client_id": format!("seed-{seq}")});
                Message::Text(frame.to_string().into())
            })
            .collect();
        client.send_together(frames).await;
        let last = *batch.last().expect("a batch");
        client.next_where(|f| f["type"] == "message" && f["seq"] == last).await;
    }
}

/// Seqs of the messages in the list on screen, top to bottom.
async fn shown_seqs(tab: &Tab) -> Vec<u64> {
    let v = tab
        .js("return [...document.querySelectorAll('#messages .msg[data-seq]')].map(m => Number(m.dataset.seq))")
        .await;
    serde_json::from_value(v).expect("a list of seqs")
}

/// Waits until the oldest message shown is `seq` or older.
async fn until_oldest_shown(tab: &Tab, seq: u64) {
    tab.until(
        &format!("message {seq} or older shown"),
        "const m = document.querySelector('#messages .msg[data-seq]'); \
         const s = m ? Number(m.dataset.seq) : null; \
         return {ok: s !== null && s <= arguments[0], seen: s}",
        vec![json!(seq)],
    )
    .await;
}

/// Scrolls the messages to the top, as a reader would: `{oldest, top_seq,
/// top_px}`, the oldest message shown and the one at the top of the view
/// with its distance from the view's top, measured before any page comes.
async fn scroll_to_top(tab: &Tab) -> Value {
    tab.js("const box = document.querySelector('#messages'); \
         box.scrollTop = 0; \
         const view = box.getBoundingClientRect(); \
         const msgs = [...box.querySelectorAll('.msg[data-seq]')]; \
         const top = msgs.find(m => m.getBoundingClientRect().bottom > view.top); \
         return {oldest: Number(msgs[0].dataset.seq), top_seq: Number(top.dataset.seq), \
                 top_px: top.getBoundingClientRect().top - view.top}")
        .await
}

/// Where message `seq` is, from the top of the messages' view.
async fn place_of(tab: &Tab, seq: u64) -> f64 {
    let v = tab
        .js_args(
            "const box = document.querySelector('#messages'); \
             const m = box.querySelector(`.msg[data-seq='${arguments[0]}']`); \
             return m.getBoundingClientRect().top - box.getBoundingClientRect().top",
            vec![json!(seq)],
        )
        .await;
    v.as_f64().expect("a distance")
}

/// Opens the search panel, searches for `word`, and waits for its hit with
/// the word in a <mark>.
async fn search(tab: &Tab, word: &str) {
    tab.click("#search-toggle").await;
    let focused = tab.js("return document.activeElement?.id").await;
    assert_eq!(focused, json!("search-input"), "{}: opening the search focuses its box", tab.label);
    let label = tab.js("return document.querySelector('label[for=search-input]').textContent").await;
    assert_eq!(label, json!(format!("Search #{ROOM}")));
    tab.fill("#search-input", word).await;
    tab.click("#search-btn").await;
    tab.until(
        &format!("a hit for `{word}` with the word marked"),
        "const hits = [...document.querySelectorAll('#search-results li.hit')]; \
         const hit = hits.find(h => h.dataset.seq === String(arguments[1])); \
         const marks = hit ? [...hit.querySelectorAll('mark')].map(m => m.textContent.toLowerCase()) : []; \
         return {ok: marks.includes(arguments[0]), \
                 seen: [document.querySelector('#search-status').textContent, hits.map(h => h.dataset.seq), marks]}",
        vec![json!(word), json!(NEEDLE_SEQ)],
    )
    .await;
}

/// Waits until message `seq` is shown, marked as found, inside the view.
async fn until_found(tab: &Tab, seq: u64) {
    tab.until(
        &format!("message {seq} shown and marked"),
        "const box = document.querySelector('#messages'); \
         const m = box.querySelector(`.msg.found[data-seq='${arguments[0]}']`); \
         if (!m) return {ok: false, seen: document.querySelector('#messages .msg.found')?.dataset.seq ?? null}; \
         const r = m.getBoundingClientRect(), v = box.getBoundingClientRect(); \
         return {ok: r.top >= v.top && r.bottom <= v.bottom, seen: [r.top, r.bottom, v.top, v.bottom]}",
        vec![json!(seq)],
    )
    .await;
}
