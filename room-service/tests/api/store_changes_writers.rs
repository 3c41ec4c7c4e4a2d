//! The store's other writers beside one archiver, with changes of
//! messages: a second writer storing a message while the first stores its
//! change, STORE_SYNC's confirmation of a message changed since, and
//! retention.

use chat_testkit::PostgresServer;
use room_service::store::StoredMessage;

use crate::store_changes::{ROOM, append_all, counts, current, edit, message, none, react, store};

/// Two writers at once (two room-services' archivers, or the archiver
/// and the STORE_SYNC committer): one stores a change while the other
/// stores its target. Whichever runs second sees the other's row, so the
/// change always reaches the message. Here the change's writer is held
/// mid-way (we lock another message it updates) while the target's
/// writer comes: that one must wait, not store the target unseen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_and_its_change_written_at_once_by_two_writers_meet() {
    let (postgres, store) = store().await;
    store.append(&[message(1, "ada", "earlier")]).await.expect("append");
    let mut ours = raw(&postgres).await;
    sqlx::query("BEGIN").execute(&mut ours).await.expect("begin");
    sqlx::query("SELECT 1 FROM messages WHERE room = $1 AND seq = 1 FOR UPDATE")
        .bind(ROOM)
        .execute(&mut ours)
        .await
        .expect("lock message 1");

    let writer = store.clone();
    let changes =
        tokio::spawn(
            async move { writer.append(&[edit(3, 2, "bob", "after"), react(4, 1, "bob", "👍", true, 1)]).await },
        );
    wait_for_lock_waits(&postgres, 1, &changes).await;
    let writer = store.clone();
    let target = tokio::spawn(async move { writer.append(&[message(2, "bob", "before")]).await });
    wait_for_lock_waits(&postgres, 2, &target).await;
    sqlx::query("COMMIT").execute(&mut ours).await.expect("commit");
    changes.await.expect("task").expect("append the changes");
    target.await.expect("task").expect("append the target");

    let m = current(&store, 2).await;
    assert_eq!((m.text.as_str(), m.edited_ms), ("after", 3000), "the edit reached its message");
    assert_eq!(counts(&current(&store, 1).await), [("👍", 1)]);
}

/// A connection of its own, to hold locks as another writer would.
async fn raw(postgres: &PostgresServer) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&postgres.url()).await.expect("connect")
}

/// Returns once `waits` statements of the database wait for a lock, or
/// once `call` is done (it did not wait: what it did is then checked).
async fn wait_for_lock_waits<T>(postgres: &PostgresServer, waits: i64, call: &tokio::task::JoinHandle<T>) {
    let mut watcher = raw(postgres).await;
    for _ in 0..1000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .fetch_one(&mut watcher)
        .await
        .expect("pg_stat_activity");
        if waiting >= waits || call.is_finished() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the store's call neither waited for a lock nor finished");
}

/// STORE_SYNC's confirmation asks whether the store holds a send as
/// given: a message edited or reacted to since still is the same message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_changed_since_is_still_held_as_given() {
    let (_postgres, store) = store().await;
    let sent = message(1, "ada", "first words");
    append_all(&store, &[vec![sent.clone()], vec![edit(2, 1, "ada", "new words"), react(3, 1, "bob", "👍", true, 1)]])
        .await;
    assert_eq!(store.append_confirmed(std::slice::from_ref(&sent)).await.expect("confirm"), (0, vec![]));
    let other = StoredMessage { client_id: "someone-else".into(), ..sent };
    assert_eq!(store.append_confirmed(&[other]).await.expect("confirm"), (0, vec![0]));
}

/// Retention forgets a message's reactions with it: nobody is told later
/// that they reacted to a message the store no longer has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_forgets_reactions_with_their_message() {
    let (_postgres, store) = store().await;
    store
        .append(&[message(1, "ada", "old"), react(2, 1, "bob", "👍", true, 1), message(3, "ada", "later")])
        .await
        .expect("append");
    store.append(&[react(4, 3, "bob", "👀", true, 1)]).await.expect("append");
    assert_eq!(
        store.forget_before(4000, 100).await.expect("forget"),
        3,
        "seqs 1 to 3; the room's newest row, 4, is kept"
    );
    assert_eq!(store.message(ROOM, 1).await.expect("read"), None);
    assert_eq!(store.reacted(ROOM, "bob", &[1, 3]).await.expect("reacted"), none(), "message 3 went too");
}
