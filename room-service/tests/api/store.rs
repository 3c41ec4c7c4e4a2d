//! The durable store on a real PostgreSQL (a scratch cluster each test
//! starts): idempotent appends, keyset scrollback to a room's first
//! message, search in any language, retention in batches, migrations that
//! run again, and a store that lives through PostgreSQL restarting.

use std::time::{Duration, Instant};

use chat_testkit::PostgresServer;
use room_service::store::bounds::{MAX_PAGE, MAX_QUERY_BYTES, MAX_RANGE, MAX_SEARCH_PAGE};
use room_service::store::{Numbering, Store, StoreError, StoredMessage};

/// A fresh PostgreSQL and a store connected to it.
async fn store() -> (PostgresServer, Store) {
    let postgres = PostgresServer::start().await;
    let store = Store::connect(&postgres.url()).await.expect("connect to the scratch PostgreSQL");
    (postgres, store)
}

/// Message `seq` of `room`, sent at `ts_ms`, saying `text`.
fn message(room: &str, seq: u64, ts_ms: i64, text: &str) -> StoredMessage {
    StoredMessage {
        room: room.into(),
        seq,
        epoch: "ep0ch".into(),
        ts_ms,
        member_id: format!("member-{}", seq % 3),
        username: format!("user{}", seq % 3),
        text: text.into(),
        client_id: format!("client-{seq}"),
        attachments: Vec::new(),
        ..StoredMessage::default()
    }
}

/// Messages `seqs` of `room`, each saying "message <seq>" at ts_ms = seq.
fn numbered(room: &str, seqs: impl IntoIterator<Item = u64>) -> Vec<StoredMessage> {
    seqs.into_iter().map(|seq| message(room, seq, seq as i64, &format!("message {seq}"))).collect()
}

async fn count(store: &Store, room: &str) -> usize {
    let mut total = 0;
    let mut before = None;
    loop {
        let page = store.before(room, before, MAX_PAGE).await.expect("a page");
        total += page.messages.len();
        match page.next_before {
            Some(seq) => before = Some(seq),
            None => return total,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_batch_appended_twice_is_stored_once() {
    let (_postgres, store) = store().await;
    let batch = numbered("general", 1..=50);

    assert_eq!(store.append(&batch).await.expect("append"), 50);
    assert_eq!(store.append(&batch).await.expect("append again"), 0, "nothing was new the second time");
    // Overlapping: 41..=60 holds ten new ones.
    assert_eq!(store.append(&numbered("general", 41..=60)).await.expect("append overlap"), 10);

    assert_eq!(count(&store, "general").await, 60);
    let newest = store.before("general", None, 1).await.expect("newest");
    assert_eq!(newest.messages, numbered("general", [60]), "stored with every field as given");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_water_follows_appends() {
    let (_postgres, store) = store().await;
    assert_eq!(store.high_water("general").await.expect("high water"), None, "an empty room has none");

    store.append(&numbered("general", 1..=5)).await.expect("append");
    assert_eq!(store.high_water("general").await.expect("high water"), Some(5));
    // Out of order, and another room's messages in the same batch.
    let mut batch = numbered("general", [8, 6]);
    batch.extend(numbered("random", 1..=100));
    store.append(&batch).await.expect("append");
    assert_eq!(store.high_water("general").await.expect("high water"), Some(8));
    assert_eq!(store.high_water("random").await.expect("high water"), Some(100));
    assert_eq!(store.high_water("dev").await.expect("high water"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_page_back_to_the_first_each_once_in_order() {
    let (_postgres, store) = store().await;
    for first in (1..=10_000).step_by(1000) {
        store.append(&numbered("general", first..first + 1000)).await.expect("append");
    }

    let mut seen: Vec<u64> = Vec::new();
    let mut before = None;
    let mut next_new = 10_001;
    let mut pages = 0;
    loop {
        let page = store.before("general", before, MAX_PAGE).await.expect("a page");
        pages += 1;
        let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "page {pages} is oldest first and whole: {seqs:?}");
        assert_eq!(page.next_before, if page.reached_first() { None } else { seqs.first().copied() });
        seen.splice(0..0, seqs);
        // People keep talking while someone scrolls back.
        store.append(&numbered("general", next_new..next_new + 7)).await.expect("append while paging");
        next_new += 7;
        match page.next_before {
            Some(seq) => before = Some(seq),
            None => break,
        }
        assert!(pages < 200, "paging does not end");
    }

    assert_eq!(pages, 100, "10,000 messages are 100 full pages, the last one saying it reached the first");
    assert_eq!(seen, (1..=10_000).collect::<Vec<u64>>(), "every message exactly once, in order");
    let first = store.before("general", Some(1), MAX_PAGE).await.expect("before the first");
    assert!(first.messages.is_empty() && first.reached_first());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_words_in_any_language_and_only_in_its_room() {
    let (_postgres, store) = store().await;
    store
        .append(&[
            message("general", 1, 1, "Let's meet at the café tomorrow"),
            message("general", 2, 2, "Καλημέρα σε όλους, τι κάνετε;"),
            message("general", 3, 3, "Привет всем! Как дела?"),
            message("general", 4, 4, "nothing to see here"),
            message("random", 1, 1, "Καλημέρα from another room, and a café"),
        ])
        .await
        .expect("append");

    for (query, seq, word) in [
        ("café", 1, "café"),
        ("CAFÉ", 1, "café"),
        ("καλημέρα", 2, "Καλημέρα"),
        ("ΚΆΝΕΤΕ", 2, "κάνετε"),
        ("привет", 3, "Привет"),
        ("дела", 3, "дела"),
    ] {
        let page = store.search("general", query, None, MAX_SEARCH_PAGE).await.expect("search");
        let found: Vec<(u64, Vec<&str>)> = page.hits.iter().map(|h| (h.message.seq, h.highlighted_words())).collect();
        assert_eq!(found, [(seq, vec![word])], "searching general for {query:?}");
        assert_eq!(page.next_before, None);
    }
    let elsewhere = store.search("general", "another room", None, MAX_SEARCH_PAGE).await.expect("search");
    assert!(elsewhere.hits.is_empty(), "another room's words are not found: {elsewhere:?}");
    let there = store.search("random", "καλημέρα café", None, MAX_SEARCH_PAGE).await.expect("search");
    let there: Vec<(u64, Vec<&str>)> = there.hits.iter().map(|h| (h.message.seq, h.highlighted_words())).collect();
    assert_eq!(there, [(1, vec!["Καλημέρα", "café"])], "every word of the query is highlighted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pages_newest_first_without_repeats() {
    let (_postgres, store) = store().await;
    let batch: Vec<StoredMessage> = (1..=300)
        .map(|seq| {
            let text = if seq % 3 == 0 { format!("the needle number {seq}") } else { format!("hay {seq}") };
            message("general", seq, seq as i64, &text)
        })
        .collect();
    store.append(&batch).await.expect("append");

    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.search("general", "needle", before, 40).await.expect("search");
        assert!(page.hits.len() <= 40);
        seen.extend(page.hits.iter().map(|h| h.message.seq));
        match page.next_before {
            Some(seq) => before = Some(seq),
            None => break,
        }
    }
    let expected: Vec<u64> = (1..=100).rev().map(|n| n * 3).collect();
    assert_eq!(seen, expected, "every hit once, newest first, over three pages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_with_sql_in_it_is_just_a_query() {
    let (_postgres, store) = store().await;
    store
        .append(&[
            message("general", 1, 1, "who would DROP TABLE messages? not us"),
            message("general", 2, 2, "it's a table of messages"),
        ])
        .await
        .expect("append");

    let page = store.search("general", "'; DROP TABLE messages; --", None, 10).await.expect("search");
    let seqs: Vec<u64> = page.hits.iter().map(|h| h.message.seq).collect();
    assert_eq!(seqs, [1], "the words drop, table and messages, all in message 1 only");
    assert_eq!(page.hits[0].highlighted_words(), ["DROP", "TABLE", "messages"]);
    for query in ["\\'); DELETE FROM messages; --", "$1 OR 1=1", "\" -'' or"] {
        store.search("general", query, None, 10).await.unwrap_or_else(|e| panic!("searching {query:?}: {e}"));
    }
    assert_eq!(count(&store, "general").await, 2, "the table and its rows are all there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_bounds_requests_say_what_was_wrong() {
    let (_postgres, store) = store().await;
    let long = "a".repeat(MAX_QUERY_BYTES + 1);

    let checks: [(&str, Result<(), StoreError>, &str); 8] = [
        ("page of 0", store.before("general", None, 0).await.map(drop), "a page of 0 messages"),
        ("page of 101", store.before("general", None, MAX_PAGE + 1).await.map(drop), "1 to 100"),
        ("search page of 0", store.search("general", "hi", None, 0).await.map(drop), "1 to 50"),
        ("search page of 51", store.search("general", "hi", None, 51).await.map(drop), "51 hits"),
        ("empty query", store.search("general", "", None, 10).await.map(drop), "0 bytes"),
        ("long query", store.search("general", &long, None, 10).await.map(drop), "257 bytes"),
        ("no words", store.search("general", "'; --", None, 10).await.map(drop), "no letters or digits"),
        ("big batch", store.append(&numbered("general", 1..=1001)).await.map(drop), "1001 messages"),
    ];
    for (case, result, says) in checks {
        let error = result.expect_err(case);
        assert!(error.is_bad_input(), "{case}: {error:?} is the caller's mistake");
        assert!(error.to_string().contains(says), "{case}: {error} should say {says:?}");
    }
    assert!(matches!(store.forget_before(0, 0).await, Err(StoreError::ForgetBatch(0))));
    assert!(matches!(store.append(&numbered("general", [0])).await, Err(StoreError::SeqOutOfRange(0))));
    assert_eq!(count(&store, "general").await, 0, "nothing was stored by a refused append");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_forgets_only_older_messages_in_batches_keeping_each_room_s_newest() {
    let (_postgres, store) = store().await;
    // 250 old messages over two rooms, then 30 recent ones.
    let mut batch: Vec<StoredMessage> =
        (1..=150).map(|seq| message("general", seq, 1_000 + seq as i64, "old")).collect();
    batch.extend((1..=100).map(|seq| message("random", seq, 1_000 + seq as i64, "old")));
    batch.extend((151..=180).map(|seq| message("general", seq, 10_000 + seq as i64, "recent")));
    store.append(&batch).await.expect("append");

    let mut batches = Vec::new();
    loop {
        let deleted = store.forget_before(5_000, 100).await.expect("forget");
        batches.push(deleted);
        if deleted < 100 {
            break;
        }
    }

    assert_eq!(batches, [100, 100, 49], "250 old messages but random's newest, 100 at a time");
    let left = store.before("general", None, MAX_PAGE).await.expect("page");
    assert_eq!(left.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), (151..=180).collect::<Vec<_>>());
    assert!(left.reached_first(), "the oldest kept message is now the first");
    assert_eq!(store.high_water("general").await.expect("high water"), Some(180));
    // A room whose every message is old keeps its newest: its last seq.
    let random = store.before("random", None, MAX_PAGE).await.expect("page");
    assert_eq!(random.messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [100]);
    assert_eq!(store.forget_before(5_000, 100).await.expect("forget"), 0);
    let random = store.numbering("random").await.expect("numbering");
    assert_eq!(random.map(|n| n.last_seq), Some(100), "a room whose rows all went keeps its numbering");
}

/// Where each room's numbering stands (what a room Redis lost is seeded
/// from) follows appends forward only, per room, in the epoch of its newest
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbering_moves_forward_with_appends_only() {
    let (_postgres, store) = store().await;
    assert_eq!(store.numbering("general").await.expect("numbering"), None, "a room never archived has none");
    let mut batch = numbered("general", 1..=40);
    batch.extend(numbered("random", 1..=7));
    store.append(&batch).await.expect("append");
    let at = |last_seq| Some(Numbering { epoch: "ep0ch".into(), last_seq });
    assert_eq!(store.numbering("general").await.expect("numbering"), at(40));
    assert_eq!(store.numbering("random").await.expect("numbering"), at(7));

    // A batch archived late (a second room-service's) does not move it back.
    store.append(&numbered("general", 30..=35)).await.expect("append again");
    assert_eq!(store.numbering("general").await.expect("numbering"), at(40));
    let mut newer = numbered("general", 41..=42);
    newer.iter_mut().for_each(|m| m.epoch = "next".into());
    store.append(&newer).await.expect("append");
    let general = store.numbering("general").await.expect("numbering");
    assert_eq!(general, Some(Numbering { epoch: "next".into(), last_seq: 42 }), "the newest message's epoch");
}

/// What a resume missed, read in ascending ranges above a seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_after_a_seq_come_oldest_first_and_bounded() {
    let (_postgres, store) = store().await;
    store.append(&numbered("general", 1..=1200)).await.expect_err("more than MAX_APPEND at once");
    store.append(&numbered("general", 1..=1000)).await.expect("append");
    store.append(&numbered("general", 1001..=1200)).await.expect("append");
    store.append(&numbered("random", 1..=10)).await.expect("append");

    let seqs = |messages: Vec<StoredMessage>| messages.iter().map(|m| m.seq).collect::<Vec<_>>();
    let range = store.after("general", 250, MAX_RANGE).await.expect("a range");
    assert_eq!(seqs(range), (251..=1200).take(MAX_RANGE as usize).collect::<Vec<_>>());
    assert_eq!(seqs(store.after("general", 1195, 3).await.expect("a range")), [1196, 1197, 1198]);
    assert!(store.after("general", 1200, 10).await.expect("a range").is_empty(), "nothing above the newest");
    for limit in [0, MAX_RANGE + 1] {
        let refused = store.after("general", 0, limit).await.expect_err("out of bounds");
        assert!(matches!(refused, StoreError::RangeLimit(_)) && refused.is_bad_input(), "{limit}: {refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_however_often_the_store_connects() {
    let postgres = PostgresServer::start().await;
    let url = postgres.url();
    // Two room-services starting together on an empty database.
    let (first, second) = tokio::join!(Store::connect(&url), Store::connect(&url));
    let first = first.expect("connect and migrate");
    second.expect("connect alongside, the schema being made");
    first.append(&numbered("general", 1..=3)).await.expect("append");

    // One restarting later finds the schema in place, and the messages.
    let again = Store::connect(&url).await.expect("connect again: nothing to migrate");
    assert_eq!(again.high_water("general").await.expect("high water"), Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_fails_while_postgres_is_down_and_works_when_it_is_back() {
    let (mut postgres, store) = store().await;
    store.append(&numbered("general", 1..=10)).await.expect("append");

    postgres.stop().await;
    let asked = Instant::now();
    let error = store.high_water("general").await.expect_err("no answer while PostgreSQL is down");
    assert!(!error.is_bad_input(), "{error:?} is PostgreSQL's, not the caller's");
    assert!(asked.elapsed() < Duration::from_secs(5), "the error came at once, not after {:?}", asked.elapsed());
    store.append(&numbered("general", 11..=12)).await.expect_err("nothing stored while PostgreSQL is down");

    postgres.restart().await;
    assert_eq!(store.high_water("general").await.expect("answers again"), Some(10), "what was stored is kept");
    assert_eq!(store.append(&numbered("general", 11..=12)).await.expect("stores again"), 2);
    assert_eq!(count(&store, "general").await, 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmed_append_tells_a_copy_from_another_message_under_the_same_seq() {
    let (_postgres, store) = store().await;
    store.append(&numbered("general", 1..=2)).await.expect("append");

    // Seq 2 again as it was (a retry), seq 1 as another message (a room
    // numbered again from 1), seq 3 new.
    let mut again = numbered("general", 1..=3);
    again[0].text = "another message".into();
    let (new, differ) = store.append_confirmed(&again).await.expect("append");
    assert_eq!((new, differ), (1, vec![0]), "only seq 1 holds something else");
    assert_eq!(store.append_confirmed(&numbered("general", 4..=5)).await.expect("append"), (2, vec![]));
}
