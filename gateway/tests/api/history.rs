//! The `history` and `search` frames through a real topology: a
//! room-service on its own `redis-server` archiving into a scratch
//! PostgreSQL (`DATABASE_URL`), a gateway, and WebSocket clients. A room of
//! 10 000 messages scrolls back from the newest to the first — pages from
//! Redis, then from the store — while new messages keep coming; search
//! finds words in any script with highlights a page can slice by; and
//! every bad cursor, limit or query gets its own error and leaves the
//! connection working.

use std::time::Duration;

use chat_testkit::PostgresServer;
use room_service::store::Store;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{Client, Topology, archived_up_to, messages};

/// Messages each room keeps in Redis: far fewer than the big room holds,
/// so its older pages come from PostgreSQL.
const HISTORY_LEN: usize = 200;

/// A room-service archiving into `postgres` and keeping [`HISTORY_LEN`]
/// messages per room in Redis, and one gateway.
async fn with_store(postgres: &PostgresServer) -> Topology {
    let url = postgres.url();
    Topology::start_with(1, 1, move |config| {
        config.database_url = Some(url);
        config.history_len = HISTORY_LEN;
    })
    .await
}

/// Sends `request` (a `history` or `search` frame) and returns the answer
/// for its room: the reply, or an `error` other than `rate_limited` — a
/// refusal for the rate is waited out as it says, as the page does.
async fn ask(client: &mut Client, request: &Value) -> Value {
    let reply = if request["type"] == "search" { "search_results" } else { "history" };
    loop {
        client.send(request.clone()).await;
        let answer =
            client.next_where(|f| (f["type"] == reply || f["type"] == "error") && f["room"] == request["room"]).await;
        if answer["code"] != "rate_limited" {
            return answer;
        }
        let wait = answer["retry_after_ms"].as_u64().expect("a rate refusal says how long to wait");
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
}

/// Sends `texts` to `room` in chunks sent together (the gateway stores
/// each chunk in a few batches) and returns their echoes, in seq order.
async fn send_all(client: &mut Client, room: &str, texts: impl IntoIterator<Item = String>) -> Vec<Value> {
    let texts: Vec<String> = texts.into_iter().collect();
    let mut echoes = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(500) {
        let frames = chunk
            .iter()
            .map(|text| Message::Text(json!({"type": "send", "room": room, "text": text}).to_string().into()))
            .collect();
        client.send_together(frames).await;
        echoes.extend(messages(client, room, chunk.len()).await);
    }
    echoes
}

/// Waits until the store holds `room` up to `last`: the archiver caught up.
async fn archived(postgres: &PostgresServer, room: &str, last: u64) {
    let store = Store::connect(&postgres.url()).await.expect("the test's own store connection");
    archived_up_to(&store, room, last).await;
}

fn seq(message: &Value) -> u64 {
    message["seq"].as_u64().unwrap_or_else(|| panic!("a message has a seq: {message}"))
}

/// The connection still sends and receives in `room`: the seq of its
/// message (others' messages may come first).
async fn still_works(client: &mut Client, room: &str, case: &str) -> u64 {
    let text = format!("still here after {case}");
    client.say(room, &text).await;
    let echo = client.next_where(|f| f["type"] == "error" || (f["type"] == "message" && f["text"] == text)).await;
    assert_eq!(echo["type"], "message", "after {case}: {echo}");
    seq(&echo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_of_10000_scrolls_back_to_its_first_message_while_new_ones_arrive() {
    let postgres = PostgresServer::start().await;
    let topology = with_store(&postgres).await;
    let mut writer = topology.client(0).await;
    writer.join("big", "ada").await;
    let echoes = send_all(&mut writer, "big", (1..=10_000).map(|i| format!("old {i}"))).await;
    let first = seq(&echoes[0]);
    assert!(echoes.iter().enumerate().all(|(i, e)| seq(e) == first + i as u64), "one writer's messages in order");
    let last_old = seq(echoes.last().expect("sent"));
    archived(&postgres, "big", last_old).await;

    let mut reader = topology.client(0).await;
    let joined = reader.join("big", "bob").await;
    assert_eq!(joined["last_seq"], last_old);

    // New messages keep coming while the reader scrolls back.
    let (stop, stopped) = oneshot::channel::<()>();
    let talker = tokio::spawn(async move {
        let (mut stopped, mut sent) = (stopped, 0u32);
        let mut every = tokio::time::interval(Duration::from_millis(5));
        loop {
            tokio::select! {
                _ = &mut stopped => return sent,
                _ = every.tick() => {
                    writer.say("big", &format!("new {sent}")).await;
                    messages(&mut writer, "big", 1).await;
                    sent += 1;
                }
            }
        }
    });

    let (mut scrolled, mut before, mut top, mut pages) = (Vec::<Value>::new(), 0, None, 0);
    loop {
        let page =
            ask(&mut reader, &json!({"type": "history", "room": "big", "before_seq": before, "limit": 100})).await;
        assert_eq!(page["type"], "history", "page {pages}: {page}");
        assert_eq!((&page["before_seq"], &page["epoch"]), (&json!(before), &joined["epoch"]), "page {pages}");
        let batch = page["messages"].as_array().expect("messages").clone();
        let seqs: Vec<u64> = batch.iter().map(seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "page {pages} is consecutive, oldest first: {seqs:?}");
        let newest = *seqs.last().expect("a page before the first holds messages");
        match top {
            None => top = Some(newest),
            Some(_) => assert_eq!(newest + 1, before, "page {pages} ends right below its cursor"),
        }
        pages += 1;
        scrolled.splice(0..0, batch);
        if page["reached_first"] == true {
            assert_eq!(page["next_before_seq"], 0, "no cursor past the first message");
            break;
        }
        before = page["next_before_seq"].as_u64().expect("a cursor");
        assert_eq!(before, seqs[0], "the cursor is the page's oldest seq");
        assert!(pages <= 200, "scrolling does not end");
    }
    stop.send(()).expect("the talker runs");
    let sent_meanwhile = talker.await.expect("the talker finished");

    let top = top.expect("at least one page");
    assert!(sent_meanwhile > 0, "messages arrived during the scroll");
    assert!(top >= last_old, "the newest page held everything sent before it");
    let seqs: Vec<u64> = scrolled.iter().map(seq).collect();
    assert_eq!(seqs, (first..=top).collect::<Vec<_>>(), "every seq exactly once, in order");
    assert_eq!(first, 1, "the scroll reached the room's first message");
    assert_eq!(pages as u64, top.div_ceil(100), "full pages of 100");
    for (message, echo) in scrolled.iter().zip(&echoes) {
        assert_eq!(message, echo, "a message from history is the message frame that was delivered");
    }
    still_works(&mut reader, "big", "the scroll").await;
}

/// The `[start, end]` UTF-16 ranges of `text` as JavaScript's `slice` reads them.
fn sliced(text: &str, highlights: &Value) -> Vec<String> {
    let units: Vec<u16> = text.encode_utf16().collect();
    let ranges = highlights.as_array().expect("highlights");
    ranges
        .iter()
        .map(|r| {
            let (start, end) = (r[0].as_u64().expect("start") as usize, r[1].as_u64().expect("end") as usize);
            String::from_utf16(&units[start..end]).expect("a highlight cuts no character in two")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_words_in_any_script_with_highlights_in_utf16_and_pages_once() {
    let postgres = PostgresServer::start().await;
    let topology = with_store(&postgres).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    ada.join("other", "ada").await;
    let said = ["🎉 привет мир", "hello world", "👋🏽 Καλημέρα κόσμε, café"].map(String::from);
    let mut sent = send_all(&mut ada, "general", said.clone()).await;
    sent.extend(send_all(&mut ada, "general", (0..30).map(|i| format!("needle {i}"))).await);
    let elsewhere = send_all(&mut ada, "other", ["привет мир from another room".to_owned()]).await;
    archived(&postgres, "general", seq(sent.last().expect("sent"))).await;
    archived(&postgres, "other", seq(&elsewhere[0])).await;

    // Cyrillic after an emoji: 4 bytes but 2 UTF-16 units before the word.
    let found = ask(&mut ada, &json!({"type": "search", "room": "general", "query": "привет мир"})).await;
    assert_eq!(found["type"], "search_results", "{found}");
    assert_eq!(
        (&found["query"], &found["before_seq"], &found["next_before_seq"]),
        (&json!("привет мир"), &json!(0), &json!(0))
    );
    let hits = found["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 1, "one message in this room says it (the other room's is not found): {found}");
    assert_eq!(hits[0]["message"], sent[0], "the hit is the message frame as delivered");
    assert_eq!(hits[0]["highlights"], json!([[3, 9], [10, 13]]));
    assert_eq!(sliced(said[0].as_str(), &hits[0]["highlights"]), ["привет", "мир"]);

    // Greek, in another case, after a 4-byte emoji and its 4-byte skin tone.
    let found = ask(&mut ada, &json!({"type": "search", "room": "general", "query": "καλημέρα CAFÉ"})).await;
    let hits = found["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), 1, "{found}");
    assert_eq!(sliced(said[2].as_str(), &hits[0]["highlights"]), ["Καλημέρα", "café"]);

    // The other room finds its own message only.
    let there = ask(&mut ada, &json!({"type": "search", "room": "other", "query": "привет"})).await;
    let hits = there["hits"].as_array().expect("hits");
    assert_eq!(hits.iter().map(|h| h["message"]["room"].clone()).collect::<Vec<_>>(), [json!("other")]);

    // 30 hits in pages of 7: newest first, each once.
    let (mut seqs, mut before, mut pages) = (Vec::new(), 0, 0);
    loop {
        let page = ask(
            &mut ada,
            &json!({"type": "search", "room": "general", "query": "needle", "before_seq": before, "limit": 7}),
        )
        .await;
        assert_eq!(page["type"], "search_results", "{page}");
        assert_eq!(page["before_seq"], before);
        let hits = page["hits"].as_array().expect("hits");
        assert!(hits.len() <= 7);
        seqs.extend(hits.iter().map(|h| seq(&h["message"])));
        pages += 1;
        before = page["next_before_seq"].as_u64().expect("a cursor");
        if before == 0 {
            break;
        }
        assert!(pages < 10, "paging does not end");
    }
    let mut expected: Vec<u64> = sent[3..].iter().map(seq).collect();
    expected.reverse();
    assert_eq!(seqs, expected, "every needle once, newest first");
    assert_eq!(pages, 5);

    // A cursor past the room's last seq + 1 is no cursor; last + 1 is the newest.
    let last = seq(sent.last().expect("sent"));
    let past =
        ask(&mut ada, &json!({"type": "search", "room": "general", "query": "needle", "before_seq": last + 2})).await;
    assert_eq!((&past["code"], &past["room"]), (&json!("bad_cursor"), &json!("general")), "{past}");
    let newest = ask(
        &mut ada,
        &json!({"type": "search", "room": "general", "query": "needle", "before_seq": last + 1, "limit": 1}),
    )
    .await;
    assert_eq!(newest["hits"][0]["message"]["seq"], last, "{newest}");

    // Search is refused in a room this connection has not joined, though
    // the Search call itself checks no membership.
    let mut bob = topology.client(0).await;
    bob.join("other", "bob").await;
    let refused = ask(&mut bob, &json!({"type": "search", "room": "general", "query": "привет"})).await;
    assert_eq!((&refused["code"], &refused["room"]), (&json!("not_joined"), &json!("general")), "{refused}");
    let refused = ask(&mut bob, &json!({"type": "history", "room": "general"})).await;
    assert_eq!(refused["code"], "not_joined", "{refused}");
    still_works(&mut bob, "other", "not_joined").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_cursors_limits_and_queries_get_their_own_errors_and_the_connection_goes_on() {
    // Without DATABASE_URL: history from Redis, and no search.
    let topology = Topology::start(1, 1).await;
    let mut ada = topology.client(0).await;
    ada.join("general", "ada").await;
    let sent = send_all(&mut ada, "general", (1..=5).map(|i| format!("message {i}"))).await;
    let mut last = seq(&sent[4]);

    let long = "a".repeat(257);
    let cases = [
        ("history: a string cursor", json!({"type": "history", "room": "general", "before_seq": "3"}), "bad_cursor"),
        ("history: a negative cursor", json!({"type": "history", "room": "general", "before_seq": -1}), "bad_cursor"),
        (
            // Its `before_seq` is set to the last seq + 2 when it is sent.
            "history: a cursor past last + 1",
            json!({"type": "history", "room": "general"}),
            "bad_cursor",
        ),
        ("history: limit 0", json!({"type": "history", "room": "general", "limit": 0}), "bad_limit"),
        ("history: limit 101", json!({"type": "history", "room": "general", "limit": 101}), "bad_limit"),
        ("history: a string limit", json!({"type": "history", "room": "general", "limit": "10"}), "bad_limit"),
        ("search: limit 51", json!({"type": "search", "room": "general", "query": "hi", "limit": 51}), "bad_limit"),
        ("search: limit 0", json!({"type": "search", "room": "general", "query": "hi", "limit": 0}), "bad_limit"),
        (
            "search: a string cursor",
            json!({"type": "search", "room": "general", "query": "hi", "before_seq": "x"}),
            "bad_cursor",
        ),
        (
            "search: a negative cursor",
            json!({"type": "search", "room": "general", "query": "hi", "before_seq": -7}),
            "bad_cursor",
        ),
        ("search: an empty query", json!({"type": "search", "room": "general", "query": ""}), "bad_query"),
        ("search: a 257-byte query", json!({"type": "search", "room": "general", "query": long}), "bad_query"),
        ("search: only punctuation", json!({"type": "search", "room": "general", "query": "?!… -- \"\""}), "bad_query"),
        ("search: no store", json!({"type": "search", "room": "general", "query": "message"}), "search_unavailable"),
    ];
    for (case, mut request, code) in cases {
        if case.contains("past last") {
            request["before_seq"] = json!(last + 2);
        }
        let answer = ask(&mut ada, &request).await;
        assert_eq!((&answer["type"], &answer["code"]), (&json!("error"), &json!(code)), "{case}: {answer}");
        assert_eq!(answer["room"], "general", "{case}: the error names the room");
        assert!(!answer["message"].as_str().unwrap_or_default().is_empty(), "{case}: says what was wrong");
        last = still_works(&mut ada, "general", case).await;
    }

    // The good neighbours of the bad ones are answered: the newest page by
    // last + 1, the bounds of limit, and history as far back as Redis holds.
    for (before_seq, limit) in [(last + 1, 1), (0, 100), (3, 1)] {
        let page =
            ask(&mut ada, &json!({"type": "history", "room": "general", "before_seq": before_seq, "limit": limit}))
                .await;
        assert_eq!(page["type"], "history", "before_seq {before_seq}, limit {limit}: {page}");
    }
    let all = ask(&mut ada, &json!({"type": "history", "room": "general"})).await;
    assert_eq!(all["reached_first"], true);
    assert_eq!(all["messages"][0], sent[0], "history starts at the first message");
}
