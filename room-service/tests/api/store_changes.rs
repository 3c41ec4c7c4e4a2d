//! Edits, deletes and reactions in the store, on a real PostgreSQL: each
//! is a row at its own seq, applied to its message by the append that
//! stores it, once, in whatever order the rows arrive; reads give messages
//! as they now stand and changes as events; search follows the text.

use chat_proto::v1::message_change::Change;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{Deleted, Edited, MessageChange, Reacted, Reaction, ReplyTo};
use chat_testkit::PostgresServer;
use room_service::store::bounds::{MAX_PAGE, MAX_REACTED, MAX_SEARCH_PAGE};
use room_service::store::{Store, StoredMessage};

pub(crate) const ROOM: &str = "general";

pub(crate) async fn store() -> (PostgresServer, Store) {
    let postgres = PostgresServer::start().await;
    let store = Store::connect(&postgres.url()).await.expect("connect to the scratch PostgreSQL");
    (postgres, store)
}

/// Message `seq` of ROOM from `user`, sent at ts_ms = 1000 × seq.
pub(crate) fn message(seq: u64, user: &str, text: &str) -> StoredMessage {
    StoredMessage {
        room: ROOM.into(),
        seq,
        epoch: "ep0ch".into(),
        ts_ms: seq as i64 * 1000,
        member_id: format!("m-{user}"),
        username: user.into(),
        text: text.into(),
        client_id: format!("c{seq}"),
        user_id: user.into(),
        ..StoredMessage::default()
    }
}

/// `message`, answering `to` with a quote of its text.
pub(crate) fn reply(seq: u64, user: &str, text: &str, to: &StoredMessage) -> StoredMessage {
    let reply_to = ReplyTo {
        seq: to.seq,
        id: format!("ep0ch:{}", to.seq),
        username: to.username.clone(),
        member_id: to.member_id.clone(),
        quote: to.text.clone(),
        deleted: false,
    };
    StoredMessage { reply_to: Some(reply_to), ..message(seq, user, text) }
}

/// Change `seq` of ROOM by `user` to message `target`.
pub(crate) fn change(seq: u64, target: u64, user: &str, change: Change) -> StoredMessage {
    StoredMessage {
        room: ROOM.into(),
        seq,
        epoch: "ep0ch".into(),
        ts_ms: seq as i64 * 1000,
        member_id: format!("m-{user}"),
        username: user.into(),
        user_id: user.into(),
        change: Some(MessageChange {
            target_seq: target,
            target_id: format!("ep0ch:{target}"),
            member_id: format!("m-{user}"),
            username: user.into(),
            user_id: user.into(),
            change: Some(change),
        }),
        ..StoredMessage::default()
    }
}

pub(crate) fn edit(seq: u64, target: u64, user: &str, text: &str) -> StoredMessage {
    change(seq, target, user, Change::Edited(Edited { text: text.into() }))
}

pub(crate) fn delete(seq: u64, target: u64, user: &str, by_moderator: bool) -> StoredMessage {
    change(seq, target, user, Change::Deleted(Deleted { by_moderator, reason: String::new() }))
}

pub(crate) fn react(seq: u64, target: u64, user: &str, emoji: &str, added: bool, count: u32) -> StoredMessage {
    change(seq, target, user, Change::Reacted(Reacted { emoji: emoji.into(), added, count }))
}

pub(crate) async fn current(store: &Store, seq: u64) -> StoredMessage {
    store.message(ROOM, seq).await.expect("read").unwrap_or_else(|| panic!("message {seq} is stored"))
}

pub(crate) fn counts(m: &StoredMessage) -> Vec<(&str, u32)> {
    m.reactions.iter().map(|r| (r.emoji.as_str(), r.count)).collect()
}

pub(crate) fn none() -> Vec<(u64, String)> {
    Vec::new()
}

pub(crate) async fn found(store: &Store, query: &str) -> Vec<u64> {
    let page = store.search(ROOM, query, None, MAX_SEARCH_PAGE).await.expect("search");
    page.hits.iter().map(|h| h.message.seq).collect()
}

/// Appends each batch in turn.
pub(crate) async fn append_all(store: &Store, batches: &[Vec<StoredMessage>]) {
    for batch in batches {
        store.append(batch).await.expect("append");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_a_delete_and_reactions_reach_their_message() {
    let (_postgres, store) = store().await;
    let hello = message(1, "ada", "hello world");
    store.append(&[hello.clone(), reply(2, "bob", "hi ada", &hello)]).await.expect("append");
    store
        .append(&[
            edit(3, 1, "ada", "hello there"),
            react(4, 1, "bob", "👍", true, 1),
            react(5, 1, "ada", "🎉", true, 1),
            react(6, 1, "ada", "👍", true, 2),
        ])
        .await
        .expect("append the changes");

    let edited = current(&store, 1).await;
    assert_eq!((edited.text.as_str(), edited.edited_ms), ("hello there", 3000), "the edit's text and time");
    assert_eq!(counts(&edited), [("👍", 2), ("🎉", 1)], "in the order first added");
    assert_eq!(store.reacted(ROOM, "ada", &[1, 2]).await.expect("reacted"), [(1, "🎉".into()), (1, "👍".into())]);
    assert_eq!(store.reacted(ROOM, "bob", &[1]).await.expect("reacted"), [(1, "👍".into())]);
    assert_eq!(found(&store, "there").await, [1], "found by its new words");
    assert!(found(&store, "world").await.is_empty(), "not by its old ones");

    store.append(&[delete(7, 1, "mod", true)]).await.expect("append the delete");
    let deleted = current(&store, 1).await;
    assert_eq!((deleted.text.as_str(), deleted.deleted_ms, deleted.deleted_by.as_str()), ("", 7000, "mod"));
    let quoted = current(&store, 2).await.reply_to.expect("still a reply");
    assert_eq!((quoted.seq, quoted.quote.as_str(), quoted.deleted), (1, "", true), "the quote is gone");
    assert!(found(&store, "hello").await.is_empty() && found(&store, "there").await.is_empty());
    assert_eq!(found(&store, "ada").await, [2], "the reply's own text is still found");

    // Read back, the edit is an event with its text gone; the rest as stored.
    let events = store.after(ROOM, 0, 100).await.expect("range");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=7).collect::<Vec<_>>(), "every stored event, no gap");
    let Some(Kind::Change(MessageChange { change: Some(Change::Edited(read_edit)), target_seq: 1, .. })) =
        events[2].clone().into_event().kind
    else {
        panic!("seq 3 reads back as the edit: {:?}", events[2]);
    };
    assert_eq!(read_edit.text, "", "an edit of a deleted message has no text left");
    assert_eq!(events[3], react(4, 1, "bob", "👍", true, 1), "a reaction reads back as stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appending_the_same_changes_again_changes_nothing() {
    let (_postgres, store) = store().await;
    let batch = vec![
        message(1, "ada", "first"),
        react(2, 1, "bob", "👍", true, 1),
        edit(3, 1, "ada", "second"),
        react(4, 1, "bob", "👍", false, 0),
        react(5, 1, "cy", "👀", true, 1),
    ];
    assert_eq!(store.append(&batch).await.expect("append"), 5);
    let once = current(&store, 1).await;
    assert_eq!((once.text.as_str(), counts(&once)), ("second", vec![("👀", 1)]));

    assert_eq!(store.append(&batch).await.expect("append again"), 0, "nothing new");
    // Copied again in parts (a catch-up from Redis), a change among them.
    assert_eq!(store.append(&batch[3..]).await.expect("append a part"), 0);
    assert_eq!(current(&store, 1).await, once, "the message as it was");
    assert_eq!(store.reacted(ROOM, "bob", &[1]).await.expect("reacted"), none());
}

/// Reactions changed by several users, stored in every order a late
/// archiver could give: the newest change of each emoji wins, and each
/// user's own reactions are those of their newest change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_stored_out_of_order_end_as_the_newest_says() {
    let (_postgres, store) = store().await;
    let changes = [
        react(2, 1, "ada", "👍", true, 1),
        react(3, 1, "bob", "👍", true, 2),
        react(4, 1, "cy", "🎉", true, 1),
        react(5, 1, "ada", "👍", false, 1),
        react(6, 1, "ada", "👍", true, 2),
        react(7, 1, "cy", "🎉", false, 0),
    ];
    let orders: [&[usize]; 4] = [&[0, 1, 2, 3, 4, 5], &[5, 4, 3, 2, 1, 0], &[3, 0, 5, 1, 4, 2], &[4, 5, 2, 0, 3, 1]];
    for (n, order) in orders.iter().enumerate() {
        let room = format!("room-{n}");
        let mut batches: Vec<Vec<StoredMessage>> =
            order.iter().map(|&i| vec![StoredMessage { room: room.clone(), ..changes[i].clone() }]).collect();
        // The message itself in the middle: changes before it wait for it.
        batches.insert(3, vec![StoredMessage { room: room.clone(), ..message(1, "dee", "react to me") }]);
        append_all(&store, &batches).await;

        let m = store.message(&room, 1).await.expect("read").expect("stored");
        let order_seen: Vec<(&str, u32)> = counts(&m);
        assert_eq!(order_seen, [("👍", 2)], "order {order:?}: 🎉 went back to none");
        for (user, mine) in [("ada", vec![(1, "👍".to_owned())]), ("bob", vec![(1, "👍".into())]), ("cy", vec![])] {
            assert_eq!(store.reacted(&room, user, &[1]).await.expect("reacted"), mine, "order {order:?}, {user}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emoji_taken_away_and_put_back_goes_last() {
    let (_postgres, store) = store().await;
    append_all(
        &store,
        &[
            vec![message(1, "ada", "hi")],
            vec![react(2, 1, "bob", "👍", true, 1), react(3, 1, "bob", "🎉", true, 1)],
            vec![react(5, 1, "bob", "👍", true, 1)],
            vec![react(4, 1, "bob", "👍", false, 0)],
        ],
    )
    .await;
    assert_eq!(counts(&current(&store, 1).await), [("🎉", 1), ("👍", 1)]);
}

/// A delete takes every copy of the text with it, whichever arrives
/// first: the message, its edits, quotes of it in replies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_blanks_quotes_and_edits_in_any_order() {
    let (_postgres, store) = store().await;
    let secret = message(1, "ada", "the secret plan");
    // Stored in an order a late archiver could give: the delete first,
    // then an edit before it, the message, a reply quoting it, an edit
    // after it (refused live, but stored rows are applied as they come).
    append_all(
        &store,
        &[
            vec![delete(4, 1, "ada", false)],
            vec![edit(2, 1, "ada", "the secret plan, revised")],
            vec![secret.clone()],
            vec![reply(3, "bob", "sounds good", &secret)],
            vec![edit(5, 1, "ada", "the secret plan, again")],
        ],
    )
    .await;

    let gone = current(&store, 1).await;
    assert_eq!((gone.text.as_str(), gone.deleted_ms, gone.deleted_by.as_str(), gone.edited_ms), ("", 4000, "", 0));
    let quote = current(&store, 3).await.reply_to.expect("a reply");
    assert_eq!((quote.quote.as_str(), quote.deleted), ("", true));
    for event in store.after(ROOM, 0, 100).await.expect("range") {
        let event = event.into_event();
        assert!(!format!("{event:?}").contains("secret"), "no trace of the text: {event:?}");
    }
    assert!(found(&store, "secret").await.is_empty() && found(&store, "plan").await.is_empty());
    assert_eq!(found(&store, "sounds").await, [3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_deleted_with_files_and_a_reply_keeps_only_its_place() {
    let (_postgres, store) = store().await;
    let first = message(1, "ada", "question");
    let with_files = StoredMessage {
        attachments: vec![chat_proto::v1::Attachment { id: "at-1".into(), name: "a.png".into(), ..Default::default() }],
        ..reply(2, "bob", "answer with a picture", &first)
    };
    append_all(&store, &[vec![first, with_files], vec![delete(3, 2, "bob", false)]]).await;
    let gone = current(&store, 2).await;
    assert_eq!(
        (gone.text.as_str(), gone.attachments.len(), gone.reply_to.is_some(), gone.deleted_ms),
        ("", 0, false, 3000)
    );
    assert_eq!((gone.member_id.as_str(), gone.username.as_str()), ("m-bob", "bob"), "who sent it stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_edit_stored_late_does_not_undo_a_newer_one() {
    let (_postgres, store) = store().await;
    append_all(
        &store,
        &[
            vec![message(1, "ada", "draft one")],
            vec![edit(3, 1, "ada", "draft three")],
            vec![edit(2, 1, "ada", "draft two")],
        ],
    )
    .await;
    let m = current(&store, 1).await;
    assert_eq!((m.text.as_str(), m.edited_ms), ("draft three", 3000));
    assert_eq!(found(&store, "three").await, [1], "the message, never the edit's row");
    assert!(found(&store, "two").await.is_empty() && found(&store, "one").await.is_empty());
}

/// Changes are rows like messages: pages and ranges stay contiguous, and
/// the numbering counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_ranges_hold_changes_at_their_seqs() {
    let (_postgres, store) = store().await;
    let mut batch = Vec::new();
    for seq in 1..=30 {
        batch.push(match seq % 3 {
            0 => edit(seq, seq - 2, "ada", &format!("edited {seq}")),
            1 => message(seq, "ada", &format!("message {seq}")),
            _ => react(seq, seq - 1, "bob", "👍", true, 1),
        });
    }
    store.append(&batch).await.expect("append");

    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.before(ROOM, before, 7).await.expect("a page");
        let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "whole pages: {seqs:?}");
        seen.splice(0..0, seqs);
        match page.next_before {
            Some(seq) => before = Some(seq),
            None => break,
        }
    }
    assert_eq!(seen, (1..=30).collect::<Vec<_>>());
    let range = store.after(ROOM, 10, 10).await.expect("range");
    assert_eq!(
        range.iter().map(|m| (m.seq, m.is_change())).collect::<Vec<_>>(),
        [
            (11, true),
            (12, true),
            (13, false),
            (14, true),
            (15, true),
            (16, false),
            (17, true),
            (18, true),
            (19, false),
            (20, true)
        ]
    );
    assert_eq!(store.high_water(ROOM).await.expect("high water"), Some(30));
    assert_eq!(store.numbering(ROOM).await.expect("numbering").map(|n| n.last_seq), Some(30));
    let m = current(&store, 28).await;
    assert_eq!((m.text.as_str(), counts(&m)), ("edited 30", vec![("👍", 1)]));
    assert_eq!(store.before(ROOM, None, MAX_PAGE).await.expect("page").messages.len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_by_seq_and_a_users_reactions_on_a_page() {
    let (_postgres, store) = store().await;
    store
        .append(&[
            message(1, "ada", "one"),
            message(2, "bob", "two"),
            react(3, 1, "bob", "👍", true, 1),
            react(4, 2, "bob", "😂", true, 1),
            react(5, 2, "bob", "👍", true, 1),
            react(6, 2, "ada", "👍", true, 2),
        ])
        .await
        .expect("append");

    assert_eq!(current(&store, 2).await.text, "two");
    assert_eq!(store.message(ROOM, 3).await.expect("read"), None, "a change is not a message");
    assert_eq!(store.message(ROOM, 99).await.expect("read"), None, "nothing there");
    assert_eq!(store.message("elsewhere", 1).await.expect("read"), None);
    assert_eq!(
        store.reacted(ROOM, "bob", &[1, 2, 7]).await.expect("reacted"),
        [(1, "👍".into()), (2, "👍".into()), (2, "😂".into())]
    );
    assert_eq!(store.reacted(ROOM, "ada", &[1]).await.expect("reacted"), none());
    assert_eq!(store.reacted(ROOM, "ada", &[]).await.expect("reacted"), none());
    let too_many: Vec<u64> = (1..=MAX_REACTED as u64 + 1).collect();
    let error = store.reacted(ROOM, "ada", &too_many).await.expect_err("out of bounds");
    assert!(error.is_bad_input(), "{error}");
}

/// A message copied from Redis after people reacted (a catch-up) comes
/// with its counts; changes stored after it still win per emoji.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_that_come_with_a_message_are_kept_until_a_change_says_otherwise() {
    let (_postgres, store) = store().await;
    let copied = StoredMessage {
        reactions: vec![
            Reaction { emoji: "🎉".into(), count: 3, mine: false },
            Reaction { emoji: "👍".into(), count: 1, mine: false },
        ],
        ..message(1, "ada", "party")
    };
    store.append(&[copied]).await.expect("append");
    assert_eq!(counts(&current(&store, 1).await), [("🎉", 3), ("👍", 1)]);
    store.append(&[react(9, 1, "bob", "👍", true, 2), react(10, 1, "cy", "🎈", true, 1)]).await.expect("append");
    assert_eq!(counts(&current(&store, 1).await), [("🎉", 3), ("👍", 2), ("🎈", 1)]);
}
