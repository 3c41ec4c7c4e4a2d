//! People in the PostgreSQL store (a scratch cluster each test starts):
//! profiles, direct conversations created once however many open them at
//! once, users' rooms added once with their marker kept, markers that only
//! move forward and take the mentions they pass, bounds, and retention
//! leaving people alone.

use chat_proto::v1::Person;
use chat_testkit::PostgresServer;
use room_service::people::{RoomAdd, UserRoomState};
use room_service::store::bounds::{MAX_DIRECT_MEMBERS, MAX_PROFILES, MAX_ROOM_ADDS};
use room_service::store::{Store, StoreError, StoredMessage};

/// A fresh PostgreSQL and a store connected to it.
async fn store() -> (PostgresServer, Store) {
    let postgres = PostgresServer::start().await;
    let store = Store::connect(&postgres.url()).await.expect("connect to the scratch PostgreSQL");
    (postgres, store)
}

fn person(user_id: &str, name: &str) -> Person {
    Person { user_id: user_id.into(), name: name.into() }
}

fn add(user_id: &str, room: &str, read_seq: u64, joined_at_ms: i64) -> RoomAdd {
    RoomAdd { user_id: user_id.into(), room: room.into(), read_seq, joined_at_ms }
}

fn state(room: &str, read_seq: u64, joined_at_ms: i64, mentions: &[u64]) -> UserRoomState {
    UserRoomState { room: room.into(), read_seq, joined_at_ms, mentions: mentions.to_vec() }
}

fn ids(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|&id| id.to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_are_put_renamed_and_looked_up_in_the_order_asked() {
    let (_postgres, store) = store().await;
    store.put_profile("ada", "Ada").await.expect("put ada");
    store.put_profile("bob", "Bob").await.expect("put bob");
    store.put_profile("bob", "Bob").await.expect("put bob again, unchanged");
    store.put_profile("ada", "Ada L.").await.expect("rename ada");

    let names = store.profiles(&ids(&["bob", "nobody", "ada", "bob"])).await.expect("profiles");
    assert_eq!(names, [Some("Bob".into()), None, Some("Ada L.".into()), Some("Bob".into())]);
    assert_eq!(store.profiles(&[]).await.expect("no one"), Vec::<Option<String>>::new());
    // Names as people type them, quotes and all, are data, never SQL.
    store.put_profile("o'brien", "Ó'Brien; DROP TABLE profiles --").await.expect("put a quoted name");
    assert_eq!(
        store.profiles(&ids(&["o'brien"])).await.expect("profiles"),
        [Some("Ó'Brien; DROP TABLE profiles --".into())]
    );

    let many: Vec<String> = (0..=MAX_PROFILES).map(|i| format!("user{i}")).collect();
    let refused = store.profiles(&many).await.expect_err("one over the bound");
    assert!(matches!(refused, StoreError::ProfilesTooMany(n) if n == MAX_PROFILES + 1), "{refused}");
    assert!(refused.is_bad_input());
    assert_eq!(store.profiles(&many[..MAX_PROFILES]).await.expect("at the bound").len(), MAX_PROFILES);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_conversation_is_created_once_and_keeps_its_members() {
    let (_postgres, store) = store().await;
    let members = [person("ada", "Ada"), person("bob", "Bob")];
    assert_eq!(store.direct("dm-1").await.expect("direct"), None, "none before it is put");

    assert!(store.put_direct("dm-1", &members).await.expect("put"), "the first put creates it");
    let renamed = [person("ada", "Ada L."), person("bob", "Bob")];
    assert!(!store.put_direct("dm-1", &renamed).await.expect("put again"), "the second finds it");
    assert_eq!(store.direct("dm-1").await.expect("direct"), Some(members.to_vec()), "as created, in order");

    for n in [0, 1, MAX_DIRECT_MEMBERS + 1] {
        let people: Vec<Person> = (0..n).map(|i| person(&format!("u{i}"), "U")).collect();
        let refused = store.put_direct("dm-2", &people).await.expect_err("out of 2..=8");
        assert!(matches!(refused, StoreError::DirectMembers(m) if m == n), "{n} members: {refused}");
        assert!(refused.is_bad_input());
    }
    let eight: Vec<Person> = (0..MAX_DIRECT_MEMBERS).map(|i| person(&format!("u{i}"), &format!("U{i}"))).collect();
    assert!(store.put_direct("dm-2", &eight).await.expect("eight"));
    assert_eq!(store.direct("dm-2").await.expect("direct"), Some(eight));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_opening_the_same_conversation_at_once_create_it_once() {
    let (_postgres, store) = store().await;
    for round in 0..20 {
        let room = format!("dm-{round}");
        let (ada, bob) = (store.clone(), store.clone());
        let (ada_room, bob_room) = (room.clone(), room.clone());
        let opened = tokio::join!(
            tokio::spawn(async move { ada.put_direct(&ada_room, &[person("ada", "Ada"), person("bob", "Bob")]).await }),
            tokio::spawn(async move { bob.put_direct(&bob_room, &[person("ada", "Ada"), person("bob", "Bob")]).await }),
        );
        let created =
            [opened.0.expect("ada's task").expect("ada's put"), opened.1.expect("bob's task").expect("bob's put")];
        assert_eq!(created.iter().filter(|&&c| c).count(), 1, "round {round}: exactly one created it: {created:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_added_once_and_a_room_a_user_has_keeps_its_marker() {
    let (_postgres, store) = store().await;
    let first = [add("ada", "general", 10, 1_000), add("ada", "dm-ab", 0, 2_000), add("bob", "general", 10, 1_500)];
    assert_eq!(store.add_rooms(&first).await.expect("add"), [true, true, true]);
    store.mark_read("ada", "general", 15).await.expect("mark").expect("ada has general");

    // Again (a second device joining), with a new room and a duplicate.
    let again = [
        add("ada", "general", 40, 9_000),
        add("ada", "random", 3, 3_000),
        add("ada", "random", 5, 3_001),
        add("bob", "dm-ab", 0, 2_000),
    ];
    assert_eq!(store.add_rooms(&again).await.expect("add again"), [false, true, false, true]);

    let ada = store.user_rooms("ada").await.expect("ada's rooms");
    assert_eq!(
        ada,
        [state("random", 3, 3_000, &[]), state("dm-ab", 0, 2_000, &[]), state("general", 15, 1_000, &[])],
        "newest joined first; general keeps its marker and its joined_at"
    );
    assert_eq!(store.user_room("bob", "dm-ab").await.expect("bob's dm"), Some(state("dm-ab", 0, 2_000, &[])));
    assert_eq!(store.user_room("bob", "random").await.expect("bob's random"), None, "not bob's");
    assert_eq!(store.user_rooms("nobody").await.expect("nobody's rooms"), [], "a user the store never saw");
    assert_eq!(store.add_rooms(&[]).await.expect("nothing"), Vec::<bool>::new());

    let many: Vec<RoomAdd> = (0..=MAX_ROOM_ADDS).map(|i| add("cy", &format!("room{i}"), 0, 1)).collect();
    let refused = store.add_rooms(&many).await.expect_err("one over the bound");
    assert!(matches!(refused, StoreError::RoomAddsTooMany(n) if n == MAX_ROOM_ADDS + 1), "{refused}");
    assert_eq!(store.user_rooms("cy").await.expect("cy's rooms"), [], "a refused batch adds nothing");
    let added = store.add_rooms(&many[..MAX_ROOM_ADDS]).await.expect("at the bound");
    assert!(added.iter().all(|&a| a) && added.len() == MAX_ROOM_ADDS);
    assert_eq!(store.user_rooms("cy").await.expect("cy's rooms").len(), MAX_ROOM_ADDS);

    let refused = store.add_rooms(&[add("cy", "big", u64::MAX, 1)]).await.expect_err("a marker past bigint");
    assert!(matches!(refused, StoreError::SeqOutOfRange(u64::MAX)), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_marker_only_moves_forward_and_drops_the_mentions_it_passes() {
    let (_postgres, store) = store().await;
    store.add_rooms(&[add("ada", "general", 5, 1_000)]).await.expect("add");
    for seq in [9, 7, 12, 7] {
        store.add_mention("ada", "general", seq).await.expect("mention");
    }
    store.add_mention("ada", "general", 5).await.expect("at the marker: ignored");
    store.add_mention("ada", "general", 3).await.expect("below the marker: ignored");
    store.add_mention("ada", "random", 9).await.expect("not ada's room: ignored");
    store.add_mention("bob", "general", 9).await.expect("not bob's room: ignored");
    assert_eq!(store.user_room("ada", "general").await.expect("room"), Some(state("general", 5, 1_000, &[7, 9, 12])));
    assert_eq!(store.user_room("ada", "random").await.expect("room"), None);

    let read = store.mark_read("ada", "general", 9).await.expect("mark 9");
    assert_eq!(read, Some(state("general", 9, 1_000, &[12])), "the mentions up to 9 are read");
    let back = store.mark_read("ada", "general", 4).await.expect("mark 4");
    assert_eq!(back, Some(state("general", 9, 1_000, &[12])), "a marker never moves back");
    store.add_mention("ada", "general", 8).await.expect("below the marker now: ignored");
    assert_eq!(store.mark_read("ada", "general", 9).await.expect("mark 9 again"), read, "idempotent");
    assert_eq!(store.mark_read("ada", "general", 30).await.expect("mark 30"), Some(state("general", 30, 1_000, &[])));
    assert_eq!(store.user_rooms("ada").await.expect("rooms"), [state("general", 30, 1_000, &[])]);

    assert_eq!(store.mark_read("ada", "random", 3).await.expect("mark random"), None, "not ada's room");
    assert_eq!(store.user_room("ada", "random").await.expect("room"), None, "marking did not add it");
    assert!(matches!(store.mark_read("ada", "general", u64::MAX).await, Err(StoreError::SeqOutOfRange(_))));
    assert!(matches!(store.add_mention("ada", "general", 0).await, Err(StoreError::SeqOutOfRange(0))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_room_takes_its_mentions_and_comes_back_without_them() {
    let (_postgres, store) = store().await;
    store.add_rooms(&[add("ada", "general", 0, 1_000), add("ada", "random", 0, 1_000)]).await.expect("add");
    store.add_mention("ada", "general", 4).await.expect("mention");
    store.add_mention("ada", "random", 4).await.expect("mention");

    assert!(store.remove_room("ada", "general").await.expect("remove"), "it was there");
    assert!(!store.remove_room("ada", "general").await.expect("remove again"), "it is gone");
    assert!(!store.remove_room("bob", "random").await.expect("remove bob's"), "never bob's");
    assert_eq!(store.user_rooms("ada").await.expect("rooms"), [state("random", 0, 1_000, &[4])]);

    assert_eq!(store.add_rooms(&[add("ada", "general", 2, 5_000)]).await.expect("join again"), [true]);
    assert_eq!(store.user_room("ada", "general").await.expect("room"), Some(state("general", 2, 5_000, &[])));
}

/// A mention and a marker move of the same user's room in flight at once
/// (a sender's message, a reader on another device): whichever commits
/// first, no mention is left at or below the marker, not even in the table
/// (readers filter those anyway: this checks the locking). The other side
/// is played by a transaction of our own, held open until the store's call
/// is seen waiting for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_and_a_marker_in_flight_together_leave_no_mention_below_the_marker() {
    let (postgres, store) = store().await;
    store.add_rooms(&[add("ada", "general", 0, 1_000)]).await.expect("add");
    let mut ours = raw(&postgres).await;

    // A marker move to 10, uncommitted, while a mention of seq 5 comes in:
    // the mention waits for it, then sees the marker has passed.
    sqlx::query("BEGIN").execute(&mut ours).await.expect("begin");
    sqlx::query("UPDATE user_rooms SET read_seq = 10 WHERE user_id = 'ada'").execute(&mut ours).await.expect("move");
    let mentioner = store.clone();
    let mention = tokio::spawn(async move { mentioner.add_mention("ada", "general", 5).await });
    wait_for_a_lock_wait_or(&postgres, &mention).await;
    sqlx::query("COMMIT").execute(&mut ours).await.expect("commit");
    mention.await.expect("task").expect("add_mention");
    assert_eq!(mentions_in_table(&mut ours).await, 0, "a mention was recorded below the marker that passed it");

    // A mention of seq 15, uncommitted, while the marker moves to 20: the
    // move waits for it, then drops it.
    sqlx::query("BEGIN").execute(&mut ours).await.expect("begin");
    sqlx::query("SELECT 1 FROM user_rooms WHERE user_id = 'ada' FOR SHARE").execute(&mut ours).await.expect("lock");
    sqlx::query("INSERT INTO mentions VALUES ('ada', 'general', 15)").execute(&mut ours).await.expect("mention");
    let reader = store.clone();
    let read = tokio::spawn(async move { reader.mark_read("ada", "general", 20).await });
    wait_for_a_lock_wait_or(&postgres, &read).await;
    sqlx::query("COMMIT").execute(&mut ours).await.expect("commit");
    assert_eq!(read.await.expect("task").expect("mark_read"), Some(state("general", 20, 1_000, &[])));
    assert_eq!(mentions_in_table(&mut ours).await, 0, "the marker passed a mention and left it");
}

async fn mentions_in_table(conn: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM mentions").fetch_one(conn).await.expect("count mentions")
}

/// Returns once some statement of the database waits for a lock, or once
/// `call` is done (it did not wait: what it did is then checked).
async fn wait_for_a_lock_wait_or<T>(postgres: &PostgresServer, call: &tokio::task::JoinHandle<T>) {
    let mut watcher = raw(postgres).await;
    for _ in 0..1000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
        )
        .fetch_one(&mut watcher)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 || call.is_finished() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the store's call neither waited for our transaction nor finished");
}

/// Retention forgets old messages and nothing of people: profiles, direct
/// conversations, rooms, markers and mentions outlive their messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_leaves_people_alone() {
    let (_postgres, store) = store().await;
    let old: Vec<StoredMessage> = (1..=5)
        .map(|seq| StoredMessage {
            room: "dm-ab".into(),
            seq,
            epoch: "ep0ch".into(),
            ts_ms: seq as i64,
            member_id: "m".into(),
            username: "Ada".into(),
            text: format!("@Bob message {seq}"),
            client_id: format!("c{seq}"),
            attachments: Vec::new(),
            ..StoredMessage::default()
        })
        .collect();
    store.append(&old).await.expect("append");
    store.put_profile("bob", "Bob").await.expect("profile");
    store.put_direct("dm-ab", &[person("ada", "Ada"), person("bob", "Bob")]).await.expect("direct");
    store.add_rooms(&[add("bob", "dm-ab", 1, 1)]).await.expect("add");
    store.add_mention("bob", "dm-ab", 3).await.expect("mention");

    assert_eq!(store.forget_before(i64::MAX, 100).await.expect("forget"), 4, "all but the room's newest");
    assert_eq!(store.profiles(&ids(&["bob"])).await.expect("profiles"), [Some("Bob".into())]);
    assert!(store.direct("dm-ab").await.expect("direct").is_some());
    assert_eq!(store.user_rooms("bob").await.expect("rooms"), [state("dm-ab", 1, 1, &[3])]);
}

/// A connection of its own, to look at the tables themselves.
async fn raw(postgres: &PostgresServer) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(&postgres.url()).await.expect("connect")
}
