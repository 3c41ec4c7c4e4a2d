//! The `Directory` trait's promises (people's state: profiles, direct
//! conversations, users' rooms, read markers, mentions), checked with the
//! same steps on the Redis broker (a real `redis-server`), on a real Redis
//! Cluster (three masters: calls about many users span slots) and on the
//! in-process broker of the embedded mode.

use std::sync::Arc;
use std::time::Duration;

use chat_proto::v1::Person;
use chat_testkit::{RedisCluster, RedisServer};
use room_service::people::{Directory, RoomAdd, UserRoomState};
use room_service::{Fanout, MemoryBroker, RedisBroker, Retention, RoomServiceMetrics};

const RETENTION: Retention = Retention { history_len: 20, room_ttl: Duration::from_secs(600) };
/// Mentions kept per user and room (`MAX_MENTIONS_PER_ROOM` in the brokers).
const MENTIONS_KEPT: u64 = 1000;

fn fanout() -> Arc<Fanout> {
    Fanout::new(1024, Arc::new(RoomServiceMetrics::new("directory")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_directory_keeps_the_contract() {
    let redis = RedisServer::start().await;
    let broker = RedisBroker::connect(&redis.url(), RETENTION, fanout()).await.expect("connects");
    contract(&broker).await;
    // People's keys live as long as the user does: none was given a TTL.
    let mut conn =
        redis::Client::open(redis.url()).expect("a url").get_multiplexed_async_connection().await.expect("connects");
    let keys: Vec<String> = redis::cmd("KEYS").arg("chat:{u:*").query_async(&mut conn).await.expect("KEYS");
    assert!(!keys.is_empty(), "the contract left users behind");
    for key in keys {
        let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut conn).await.expect("TTL");
        assert_eq!(ttl, -1, "{key} expires");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_cluster_directory_keeps_the_same_contract() {
    let cluster = RedisCluster::start(3, 0).await;
    let broker = RedisBroker::connect_cluster(&cluster.urls(), None, RETENTION, fanout()).await.expect("connects");
    contract(&broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_process_directory_keeps_the_same_contract() {
    contract(&MemoryBroker::new(RETENTION, fanout())).await;
}

async fn contract<D: Directory>(directory: &D) {
    profiles_say_who_exists(directory).await;
    a_direct_conversation_is_created_once(directory).await;
    rooms_are_added_once_and_keep_their_marker(directory).await;
    removing_a_room_takes_its_mentions(directory).await;
    markers_only_move_forward(directory).await;
    mentions_count_above_the_marker(directory).await;
    calls_about_many_users_answer_each(directory).await;
}

fn person(user_id: &str, name: &str) -> Person {
    Person { user_id: user_id.into(), name: name.into() }
}

fn add(user_id: &str, room: &str, read_seq: u64, joined_at_ms: i64) -> RoomAdd {
    RoomAdd { user_id: user_id.into(), room: room.into(), read_seq, joined_at_ms }
}

fn ids(users: &[&str]) -> Vec<String> {
    users.iter().map(|user| (*user).to_owned()).collect()
}

async fn profiles_say_who_exists<D: Directory>(directory: &D) {
    directory.put_profile("p-ada", "Ada").await.expect("puts");
    // Any printable id is a user id, braces and all (they are in the keys).
    directory.put_profile("p-{odd}", "Odd").await.expect("puts");
    let names = directory.profiles(&ids(&["p-ada", "p-nobody", "p-{odd}"])).await.expect("reads");
    assert_eq!(names, vec![Some("Ada".to_owned()), None, Some("Odd".to_owned())]);
    directory.put_profile("p-ada", "Ada L.").await.expect("renames");
    assert_eq!(directory.profiles(&ids(&["p-ada"])).await.expect("reads"), vec![Some("Ada L.".to_owned())]);
    assert!(directory.profiles(&[]).await.expect("reads nobody").is_empty());
}

async fn a_direct_conversation_is_created_once<D: Directory>(directory: &D) {
    let room = chat_proto::people::direct_room(&["d-bob", "d-ada"]);
    assert_eq!(directory.direct(&room).await.expect("reads"), None, "no record before it is opened");
    let members = [person("d-bob", "Bob"), person("d-ada", "Ada")];
    // Two people opening it at once: one creates it, the other finds it.
    let (one, other) = tokio::join!(directory.put_direct(&room, &members), directory.put_direct(&room, &members));
    let created = [one.expect("puts"), other.expect("puts")];
    assert_eq!(created.iter().filter(|made| **made).count(), 1, "created exactly once: {created:?}");
    let renamed = [person("d-bob", "Robert"), person("d-ada", "Ada")];
    assert!(!directory.put_direct(&room, &renamed).await.expect("puts"), "the third open creates nothing");
    let record = directory.direct(&room).await.expect("reads");
    assert_eq!(record, Some(vec![person("d-ada", "Ada"), person("d-bob", "Bob")]), "the first record, by user id");
    let other = chat_proto::people::direct_room(&["d-ada", "d-cy"]);
    assert_eq!(directory.direct(&other).await.expect("reads"), None, "another pair has none");
    assert!(!directory.put_direct(&other, &[]).await.expect("answers"), "no members, no record");
    assert_eq!(directory.direct(&other).await.expect("reads"), None);
}

async fn rooms_are_added_once_and_keep_their_marker<D: Directory>(directory: &D) {
    assert_eq!(directory.user_rooms("r-ada").await.expect("reads"), None, "an unknown user");
    let added = directory.add_rooms(&[add("r-ada", "general", 5, 100), add("r-ada", "dev", 0, 200)]).await;
    assert_eq!(added.expect("adds"), vec![true, true]);
    let again = directory.add_rooms(&[add("r-ada", "general", 9, 300), add("r-ada", "ops", 2, 400)]).await;
    assert_eq!(again.expect("adds"), vec![false, true], "a present room is not added again");
    let general = UserRoomState { room: "general".into(), read_seq: 5, joined_at_ms: 100, mentions: vec![] };
    assert_eq!(directory.user_room("r-ada", "general").await.expect("reads"), Some(general.clone()), "kept");
    assert_eq!(directory.user_room("r-ada", "random").await.expect("reads"), None, "not theirs");
    assert_eq!(directory.user_room("r-nobody", "general").await.expect("reads"), None, "nobody's");
    let rooms = directory.user_rooms("r-ada").await.expect("reads").expect("known now");
    let mut names: Vec<&str> = rooms.iter().map(|room| room.room.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["dev", "general", "ops"]);
    assert!(rooms.contains(&general), "{rooms:?}");
    assert_eq!(directory.add_rooms(&[]).await.expect("adds nothing"), Vec::<bool>::new());
}

async fn removing_a_room_takes_its_mentions<D: Directory>(directory: &D) {
    directory.add_rooms(&[add("x-ada", "general", 1, 10), add("x-ada", "dev", 1, 10)]).await.expect("adds");
    directory.add_mention("x-ada", "general", 4).await.expect("mentions");
    assert!(directory.remove_room("x-ada", "general").await.expect("removes"));
    assert!(!directory.remove_room("x-ada", "general").await.expect("answers"), "gone already");
    assert!(!directory.remove_room("x-nobody", "general").await.expect("answers"), "never there");
    assert_eq!(directory.user_room("x-ada", "general").await.expect("reads"), None);
    // Back again later: a fresh marker, and the old mention is not news.
    directory.add_rooms(&[add("x-ada", "general", 2, 20)]).await.expect("adds");
    let back = directory.user_room("x-ada", "general").await.expect("reads");
    assert_eq!(back, Some(UserRoomState { room: "general".into(), read_seq: 2, joined_at_ms: 20, mentions: vec![] }));
    assert!(directory.remove_room("x-ada", "general").await.expect("removes"));
    assert!(directory.remove_room("x-ada", "dev").await.expect("removes"));
    assert_eq!(directory.user_rooms("x-ada").await.expect("reads"), None, "no rooms left: nothing known");
}

async fn markers_only_move_forward<D: Directory>(directory: &D) {
    directory.add_rooms(&[add("m-ada", "general", 3, 50)]).await.expect("adds");
    let read = directory.mark_read("m-ada", "general", 8).await.expect("marks").expect("theirs");
    assert_eq!((read.read_seq, read.joined_at_ms), (8, 50));
    let back = directory.mark_read("m-ada", "general", 4).await.expect("marks").expect("theirs");
    assert_eq!(back.read_seq, 8, "a marker never moves back");
    let same = directory.mark_read("m-ada", "general", 8).await.expect("marks").expect("theirs");
    assert_eq!(same.read_seq, 8);
    assert_eq!(directory.mark_read("m-ada", "random", 1).await.expect("answers"), None, "not theirs");
    assert_eq!(directory.mark_read("m-nobody", "general", 1).await.expect("answers"), None, "nobody's");
    assert_eq!(directory.user_room("m-ada", "random").await.expect("reads"), None, "marking added nothing");
    assert_eq!(directory.user_rooms("m-nobody").await.expect("reads"), None, "marking made nobody exist");
    let big = u64::MAX / 2;
    let far = directory.mark_read("m-ada", "general", big).await.expect("marks").expect("theirs");
    assert_eq!(far.read_seq, big, "large seqs keep their digits");
}

async fn mentions_count_above_the_marker<D: Directory>(directory: &D) {
    directory.add_rooms(&[add("n-bob", "general", 10, 1)]).await.expect("adds");
    for seq in [9, 10, 12, 15, 11, 12] {
        directory.add_mention("n-bob", "general", seq).await.expect("mentions");
    }
    directory.add_mention("n-bob", "random", 30).await.expect("answers");
    directory.add_mention("n-nobody", "general", 30).await.expect("answers");
    assert_eq!(directory.user_rooms("n-nobody").await.expect("reads"), None, "a mention made nobody exist");
    assert_eq!(directory.user_room("n-bob", "random").await.expect("reads"), None, "nor a room theirs");
    let bob = directory.user_room("n-bob", "general").await.expect("reads").expect("theirs");
    assert_eq!(bob.mentions, vec![11, 12, 15], "only above the marker, once each, ascending");

    let read = directory.mark_read("n-bob", "general", 12).await.expect("marks").expect("theirs");
    assert_eq!(read.mentions, vec![15], "reading drops the mentions it passes");
    let rooms = directory.user_rooms("n-bob").await.expect("reads").expect("known");
    assert_eq!(rooms[0].mentions, vec![15]);
    directory.add_mention("n-bob", "general", 12).await.expect("answers");
    let bob = directory.user_room("n-bob", "general").await.expect("reads").expect("theirs");
    assert_eq!(bob.mentions, vec![15], "a mention at the marker is read already");

    // Bounded: a user who never reads keeps the newest mentions only.
    directory.add_rooms(&[add("n-cy", "busy", 0, 1)]).await.expect("adds");
    for seq in 1..=MENTIONS_KEPT + 5 {
        directory.add_mention("n-cy", "busy", seq).await.expect("mentions");
    }
    let cy = directory.user_room("n-cy", "busy").await.expect("reads").expect("theirs");
    let kept: Vec<u64> = (6..=MENTIONS_KEPT + 5).collect();
    assert_eq!(cy.mentions, kept, "the newest {MENTIONS_KEPT} are kept");
}

/// Many users in one call: on a cluster they live on different slots.
async fn calls_about_many_users_answer_each<D: Directory>(directory: &D) {
    let users: Vec<String> = (0..40).map(|i| format!("many-{i}")).collect();
    for user in users.iter().step_by(2) {
        directory.put_profile(user, &format!("Name {user}")).await.expect("puts");
    }
    let names = directory.profiles(&users).await.expect("reads");
    for (i, (user, name)) in users.iter().zip(&names).enumerate() {
        let expected = (i % 2 == 0).then(|| format!("Name {user}"));
        assert_eq!(name, &expected, "{user}");
    }
    directory.add_rooms(&[add("many-3", "lobby", 7, 1)]).await.expect("adds");
    let adds: Vec<RoomAdd> = users.iter().map(|user| add(user, "lobby", 9, 2)).collect();
    let added = directory.add_rooms(&adds).await.expect("adds");
    for (i, (user, was_added)) in users.iter().zip(&added).enumerate() {
        assert_eq!(*was_added, i != 3, "{user}");
        let expected = if i == 3 { 7 } else { 9 };
        let state = directory.user_room(user, "lobby").await.expect("reads").expect("theirs");
        assert_eq!(state.read_seq, expected, "{user}");
    }
}
