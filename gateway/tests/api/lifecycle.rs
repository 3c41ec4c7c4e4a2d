//! A message's later life through real topologies (a `redis-server`, two
//! room-services, two gateways, WebSocket clients; and the embedded mode):
//! replies carry a quote, edits and deletes reach every gateway live and a
//! resumed browser after the fact, a first join and `history` show the
//! current state, reactions count one per user per emoji, and each bad
//! change gets its own error and changes nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::support::{Client, Topology, messages};

const ROOM: &str = "lobby";

/// Sends `text` from `client` and returns the message as its echo carries it.
async fn post(client: &mut Client, frame: Value) -> Value {
    client.send(frame).await;
    messages(client, ROOM, 1).await.remove(0)
}

/// The next `change` frame for `room` (failing on an `error` instead).
async fn next_change(client: &mut Client) -> Value {
    let frame = client.next_where(|f| f["type"] == "change" || f["type"] == "error").await;
    assert_eq!(frame["type"], "change", "expected a change: {frame}");
    frame
}

/// The next `error` frame.
async fn next_error(client: &mut Client) -> Value {
    client.next_where(|f| f["type"] == "error").await
}

fn id(message: &Value) -> String {
    message["id"].as_str().expect("a message has an id").to_owned()
}

/// The message with `id` among a `joined.history` or `history.messages`.
fn find<'a>(messages: &'a Value, id: &str) -> &'a Value {
    let all = messages.as_array().expect("a list of messages");
    all.iter().find(|m| m["id"] == id).unwrap_or_else(|| panic!("{id} is not among {messages}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_edits_and_deletes_reach_every_gateway_and_every_resume() {
    let topology = Topology::start(2, 2).await;
    let mut ada = topology.client(0).await;
    ada.join(ROOM, "ada").await;
    let mut bob = topology.client(1).await;
    let bob_joined = bob.join(ROOM, "bob").await;
    let epoch = bob_joined["epoch"].as_str().expect("epoch").to_owned();

    let typo = post(&mut ada, json!({"type": "send", "room": ROOM, "text": "lunch at noen?"})).await;
    let seen = messages(&mut bob, ROOM, 1).await.remove(0);
    assert_eq!(seen["id"], typo["id"]);

    // A reply carries who and what it answers, on both gateways.
    let reply = post(&mut bob, json!({"type": "send", "room": ROOM, "text": "yes!", "reply_to": id(&typo)})).await;
    let quoted = json!({"id": typo["id"], "seq": typo["seq"], "username": "ada", "member_id": typo["member_id"], "quote": "lunch at noen?"});
    assert_eq!(reply["reply_to"], quoted, "{reply}");
    assert_eq!(messages(&mut ada, ROOM, 1).await[0]["reply_to"], quoted);

    // Bob drops; while he is away ada fixes her typo and reacts to his reply.
    let session = bob.session();
    let after_seq = reply["seq"].as_u64().expect("seq");
    bob.vanish();
    ada.send(json!({"type": "edit", "room": ROOM, "id": id(&typo), "text": "lunch at noon?"})).await;
    let edit = next_change(&mut ada).await;
    assert_eq!(
        (&edit["action"], &edit["text"], &edit["target_id"], &edit["username"]),
        (&json!("edit"), &json!("lunch at noon?"), &typo["id"], &json!("ada")),
        "{edit}"
    );
    ada.send(json!({"type": "react", "room": ROOM, "id": id(&reply), "emoji": "👍"})).await;
    let reacted = next_change(&mut ada).await;
    assert_eq!((&reacted["emoji"], &reacted["added"], &reacted["count"]), (&json!("👍"), &json!(true), &json!(1)));

    // Back on the other gateway, the resume holds both changes in order.
    let mut bob = Client::resume(topology.gateway_addr(0), &session).await;
    let resumed = bob.join_after(ROOM, "bob", after_seq, &epoch).await;
    assert_eq!(resumed["recovered"], true, "{resumed}");
    let missed: Vec<&Value> = resumed["history"].as_array().expect("history").iter().collect();
    assert_eq!(missed.iter().map(|f| f["type"].clone()).collect::<Vec<_>>(), [json!("change"), json!("change")]);
    assert_eq!((&missed[0]["id"], &missed[1]["id"]), (&edit["id"], &reacted["id"]));

    // A first join sees the current state and no change frames.
    let mut cy = topology.client(1).await;
    let fresh = cy.join(ROOM, "cy").await;
    assert!(fresh["history"].as_array().expect("history").iter().all(|f| f["type"] == "message"), "{fresh}");
    let shown = find(&fresh["history"], &id(&typo));
    assert_eq!((&shown["text"], &shown["edited"]), (&json!("lunch at noon?"), &edit["ts"]));
    assert_eq!(find(&fresh["history"], &id(&reply))["reactions"], json!([{"emoji": "👍", "count": 1}]));

    // Ada takes her message back: everyone sees it deleted, the reply's
    // quote goes with it, and history keeps only the placeholder.
    ada.send(json!({"type": "delete", "room": ROOM, "id": id(&typo)})).await;
    let deleted = next_change(&mut ada).await;
    assert_eq!((&deleted["action"], &deleted["by_moderator"]), (&json!("delete"), &json!(false)), "{deleted}");
    for client in [&mut bob, &mut cy] {
        let seen = next_change(client).await;
        assert_eq!(seen["id"], deleted["id"]);
    }
    cy.send(json!({"type": "history", "room": ROOM})).await;
    let page = cy.next_of("history").await;
    assert!(page["messages"].as_array().expect("messages").iter().all(|f| f["type"] == "message"), "{page}");
    let gone = find(&page["messages"], &id(&typo));
    assert_eq!((&gone["text"], &gone["deleted"]), (&json!(""), &deleted["ts"]), "{gone}");
    assert!(gone.get("edited").is_none() && gone.get("reactions").is_none(), "{gone}");
    let answer = &find(&page["messages"], &id(&reply))["reply_to"];
    assert_eq!((&answer["deleted"], answer.get("quote")), (&json!(true), None), "{answer}");

    // The edit read back after the delete has lost its words too.
    bob.vanish();
    let mut bob = Client::resume(topology.gateway_addr(1), &session).await;
    let again = bob.join_after(ROOM, "bob", after_seq, &epoch).await;
    let replayed = find(&again["history"], edit["id"].as_str().expect("id"));
    assert_eq!(replayed["text"], "", "{replayed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_changes_are_refused_with_their_own_code_and_change_nothing() {
    let topology = Topology::start_configured(1, 1, |rs| rs.edit_window_secs = 1, |_| {}).await;
    let mut ada = topology.client(0).await;
    ada.join(ROOM, "ada").await;
    let mut bob = topology.client(0).await;
    bob.join(ROOM, "bob").await;
    let mine = post(&mut ada, json!({"type": "send", "room": ROOM, "text": "ada's"})).await;
    messages(&mut bob, ROOM, 1).await;
    let target = id(&mine);
    let (epoch, seq) = target.rsplit_once(':').expect("epoch:seq");

    let cases = [
        (json!({"type": "edit", "room": ROOM, "id": target, "text": "bob's now"}), "not_yours"),
        (json!({"type": "delete", "room": ROOM, "id": target}), "not_yours"),
        (json!({"type": "edit", "room": ROOM, "id": format!("{epoch}:999"), "text": "x"}), "bad_message"),
        (json!({"type": "react", "room": ROOM, "id": format!("older{epoch}:{seq}"), "emoji": "👍"}), "bad_message"),
        (json!({"type": "react", "room": ROOM, "id": "not an id", "emoji": "👍"}), "bad_message"),
        (json!({"type": "react", "room": ROOM, "id": target, "emoji": "thumbs"}), "bad_emoji"),
        (json!({"type": "react", "room": ROOM, "id": target, "emoji": "👍".repeat(9)}), "bad_emoji"),
        (json!({"type": "send", "room": ROOM, "text": "re", "reply_to": format!("{epoch}:999")}), "bad_message"),
        (json!({"type": "edit", "room": "elsewhere", "id": target, "text": "x"}), "not_joined"),
    ];
    for (frame, code) in cases {
        bob.send(frame.clone()).await;
        let error = next_error(&mut bob).await;
        assert_eq!(error["code"], code, "{frame} → {error}");
        assert!(!error["message"].as_str().unwrap_or_default().is_empty());
    }
    ada.send(json!({"type": "edit", "room": ROOM, "id": target, "text": "x".repeat(4097)})).await;
    assert_eq!(next_error(&mut ada).await["code"], "text_too_long");

    // 20 distinct emoji fit on a message; a 21st does not.
    let twenty = [
        "😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆", "😉", "😊", "😋", "😎", "😍", "😘", "🥰", "😗", "😙", "🥲",
        "😚", "🙂",
    ];
    for emoji in twenty {
        bob.send(json!({"type": "react", "room": ROOM, "id": target, "emoji": emoji})).await;
        next_change(&mut bob).await;
    }
    bob.send(json!({"type": "react", "room": ROOM, "id": target, "emoji": "🤗"})).await;
    assert_eq!(next_error(&mut bob).await["code"], "too_many_reactions");
    // Adding one twice, or taking away one never added, is no change at all.
    bob.send(json!({"type": "react", "room": ROOM, "id": target, "emoji": "😀"})).await;
    ada.send(json!({"type": "react", "room": ROOM, "id": target, "emoji": "😀", "add": false})).await;
    ada.send(json!({"type": "react", "room": ROOM, "id": target, "emoji": "😀"})).await;
    let change = next_change(&mut bob).await;
    assert_eq!((&change["emoji"], &change["count"], &change["username"]), (&json!("😀"), &json!(2), &json!("ada")));

    // Past the edit window (1 s here) the sender can no longer edit, but
    // can still delete; a deleted message takes no more changes.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ada.send(json!({"type": "edit", "room": ROOM, "id": target, "text": "too late"})).await;
    let late = next_error(&mut ada).await;
    assert_eq!(late["code"], "edit_window", "{late}");
    ada.send(json!({"type": "delete", "room": ROOM, "id": target})).await;
    next_change(&mut ada).await;
    for frame in [
        json!({"type": "delete", "room": ROOM, "id": target}),
        json!({"type": "react", "room": ROOM, "id": target, "emoji": "👍"}),
        json!({"type": "send", "room": ROOM, "text": "re", "reply_to": target}),
    ] {
        ada.send(frame.clone()).await;
        assert_eq!(next_error(&mut ada).await["code"], "bad_message", "{frame}");
    }

    // None of it stored anything: the room's last seq is the delete's.
    let mut cy = topology.client(0).await;
    let joined = cy.join(ROOM, "cy").await;
    let shown = find(&joined["history"], &target);
    assert_eq!((&shown["text"], shown.get("reactions")), (&json!(""), None), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_mode_keeps_the_same_rules() {
    let topology = Topology::embedded(1).await;
    let mut ada = topology.client(0).await;
    ada.join(ROOM, "ada").await;
    let mut bob = topology.client(0).await;
    bob.join(ROOM, "bob").await;
    let first = post(&mut ada, json!({"type": "send", "room": ROOM, "text": "one"})).await;
    messages(&mut bob, ROOM, 1).await;
    let reply = post(&mut bob, json!({"type": "send", "room": ROOM, "text": "two", "reply_to": id(&first)})).await;
    assert_eq!(reply["reply_to"]["quote"], "one");
    bob.send(json!({"type": "edit", "room": ROOM, "id": id(&first), "text": "not mine"})).await;
    assert_eq!(next_error(&mut bob).await["code"], "not_yours");
    for client in [&mut ada, &mut bob] {
        client.send(json!({"type": "react", "room": ROOM, "id": id(&reply), "emoji": "🎉"})).await;
    }
    ada.send(json!({"type": "edit", "room": ROOM, "id": id(&first), "text": "one!"})).await;
    let mut changes = Vec::new();
    while changes.len() < 3 {
        changes.push(next_change(&mut ada).await);
    }
    // Once both reactions are in (a delete first would refuse the other's).
    bob.send(json!({"type": "delete", "room": ROOM, "id": id(&reply)})).await;
    assert_eq!(next_change(&mut ada).await["action"], "delete");
    let counts: Vec<&Value> = changes.iter().filter(|c| c["action"] == "react").map(|c| &c["count"]).collect();
    assert_eq!(counts, [&json!(1), &json!(2)]);

    let mut cy = topology.client(0).await;
    let joined = cy.join(ROOM, "cy").await;
    assert_eq!(find(&joined["history"], &id(&first))["text"], "one!");
    let gone = find(&joined["history"], &id(&reply));
    assert_eq!(
        (&gone["text"], gone.get("reactions"), gone["reply_to"].get("quote")),
        (&json!(""), None, None),
        "{gone}"
    );
}

/// 500 members react to one message, half on each gateway, all at once:
/// each counts once (one more reaction from the same member is no change),
/// every gateway sees exactly 500 reaction events with counts 1 to 500 in
/// order, and a member who joins afterwards sees 500 — and `mine` when it
/// is one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reactions_from_500_members_count_once_each_on_every_gateway() {
    const MEMBERS: usize = 500;
    let topology = Topology::start(2, 2).await;
    let mut watchers = [topology.client(0).await, topology.client(1).await];
    for (i, watcher) in watchers.iter_mut().enumerate() {
        watcher.join(ROOM, &format!("watcher{i}")).await;
    }
    let target = post(&mut watchers[0], json!({"type": "send", "room": ROOM, "text": "react to me"})).await;
    let target_id = id(&target);
    let mut sessions = Vec::new();
    let handshakes = Arc::new(Semaphore::new(64));
    let reactors: Vec<_> = (0..MEMBERS)
        .map(|i| {
            let (addr, target_id, handshakes) =
                (topology.gateway_addr(i % 2), target_id.clone(), Arc::clone(&handshakes));
            tokio::spawn(async move {
                let permit = handshakes.acquire_owned().await.expect("semaphore");
                let mut client = Client::connect(addr).await;
                let me = client.join(ROOM, &format!("fan{i}")).await["member_id"].clone();
                drop(permit);
                let react = json!({"type": "react", "room": ROOM, "id": target_id, "emoji": "❤️"});
                client.send(react.clone()).await;
                if i == 0 {
                    client.send(react).await; // a second time: no change
                }
                let own = client
                    .next_where(|f| (f["type"] == "change" && f["member_id"] == me) || f["type"] == "error")
                    .await;
                assert_eq!(own["type"], "change", "fan{i}'s reaction: {own}");
                client
            })
        })
        .collect();
    for reactor in reactors {
        sessions.push(reactor.await.expect("each reactor reacts"));
    }
    for watcher in &mut watchers {
        let mut counts = Vec::new();
        let mut members = HashSet::new();
        while counts.len() < MEMBERS {
            let change = next_change(watcher).await;
            assert_eq!(
                (&change["target_id"], &change["emoji"], &change["added"]),
                (&target["id"], &json!("❤️"), &json!(true))
            );
            assert!(members.insert(change["member_id"].to_string()), "one event per member: {change}");
            counts.push(change["count"].as_u64().expect("count"));
        }
        assert_eq!(counts, (1..=MEMBERS as u64).collect::<Vec<_>>(), "counts rise by one per event, in room order");
        let extra = watcher.frames_for(Duration::from_millis(300)).await;
        assert!(extra.iter().all(|f| f["type"] != "change"), "no event for the repeated reaction: {extra:?}");
    }
    let fan = &mut sessions[0];
    fan.send(json!({"type": "history", "room": ROOM})).await;
    let page = fan.next_of("history").await;
    assert_eq!(
        find(&page["messages"], &target_id)["reactions"],
        json!([{"emoji": "❤️", "count": MEMBERS, "mine": true}])
    );
    let mut late = topology.client(1).await;
    let joined = late.join(ROOM, "late").await;
    assert_eq!(find(&joined["history"], &target_id)["reactions"], json!([{"emoji": "❤️", "count": MEMBERS}]));
}

/// The whole room as History pages it, newest page first, over gRPC.
async fn history_pages(
    grpc: &mut chat_proto::v1::room_service_client::RoomServiceClient<tonic::transport::Channel>,
) -> Vec<chat_proto::v1::RoomEvent> {
    let mut events = Vec::new();
    let mut before_seq = 0;
    loop {
        let request =
            chat_proto::v1::HistoryRequest { room: ROOM.into(), limit: 100, before_seq, ..Default::default() };
        let page = grpc.history(request).await.expect("History").into_inner();
        events.splice(0..0, page.events);
        if page.reached_first {
            return events;
        }
        before_seq = page.next_before_seq;
    }
}

/// With a store: an edit and a delete reach PostgreSQL, so scrollback and
/// search show what Redis shows — the new words found, the deleted ones
/// gone — and after Redis loses the room, the store gives back the same
/// messages in the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrollback_and_search_follow_edits_and_deletes_and_the_store_agrees_with_redis() {
    let postgres = chat_testkit::PostgresServer::start().await;
    let url = postgres.url();
    let topology = Topology::start_with(1, 1, move |config| config.database_url = Some(url)).await;
    let store = room_service::store::Store::connect(&postgres.url()).await.expect("the test's store connection");
    let mut ada = topology.client(0).await;
    ada.join(ROOM, "ada").await;
    let mut bob = topology.client(0).await;
    bob.join(ROOM, "bob").await;
    let secret = post(&mut ada, json!({"type": "send", "room": ROOM, "text": "the password is swordfish"})).await;
    let typo = post(&mut ada, json!({"type": "send", "room": ROOM, "text": "meet at the libary"})).await;
    post(&mut ada, json!({"type": "send", "room": ROOM, "text": "re: the password", "reply_to": id(&secret)})).await;
    ada.send(json!({"type": "edit", "room": ROOM, "id": id(&typo), "text": "meet at the library"})).await;
    next_change(&mut ada).await;
    ada.send(json!({"type": "react", "room": ROOM, "id": id(&typo), "emoji": "👍"})).await;
    next_change(&mut ada).await;
    ada.send(json!({"type": "delete", "room": ROOM, "id": id(&secret)})).await;
    next_change(&mut ada).await;
    // A moderator's action is a stored event too: the store keeps it at its
    // seq, so the room's numbering there has no gap.
    let mut grpc = topology.grpc(0).await;
    let mute = chat_proto::v1::ModerateRequest {
        room: ROOM.into(),
        action: "mute".into(),
        target_user_id: bob.user_id(),
        duration_secs: 60,
        reason: "cool down".into(),
        ..Default::default()
    };
    let notice = grpc.moderate(mute).await.expect("Moderate").into_inner().event.expect("the notice");
    let last = notice.seq;
    crate::support::archived_up_to(&store, ROOM, last).await;

    let search = |query: &str| json!({"type": "search", "room": ROOM, "query": query});
    for (query, found) in [("swordfish", 0), ("password", 1), ("library", 1), ("libary", 0)] {
        ada.send(search(query)).await;
        let results = ada.next_of("search_results").await;
        let hits = results["hits"].as_array().expect("hits");
        assert_eq!(hits.len(), found, "{query}: {results}");
        if query == "library" {
            let hit = &hits[0]["message"];
            assert_eq!(hit["text"], "meet at the library", "{hit}");
            assert!(hit["edited"].as_i64().is_some_and(|at| at >= typo["ts"].as_i64().unwrap_or(i64::MAX)), "{hit}");
        }
    }

    let from_redis = history_pages(&mut grpc).await;
    let mut redis = topology.redis.as_ref().expect("redis").connection().await;
    redis::cmd("FLUSHALL").query_async::<()>(&mut redis).await.expect("FLUSHALL");
    let from_store = history_pages(&mut grpc).await;
    assert_eq!(from_redis.len(), 4, "three messages and the notice, no change events: {from_redis:?}");
    assert_eq!(from_redis.last().map(|e| e.seq), Some(last));
    assert_eq!(from_store, from_redis, "the store shows each message as Redis did");
}

/// The room's owner (its first joiner) moderates it: deleting another's
/// message says so with the reason, the sender cannot undo it, and the
/// audit log keeps the deletion beside the moderation actions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_deletes_anyones_message_and_the_audit_log_keeps_it() {
    let topology = Topology::start(1, 2).await;
    let mut owner = topology.client(0).await;
    owner.join(ROOM, "owner").await;
    let mut spammer = topology.client(1).await;
    spammer.join(ROOM, "spammer").await;
    let spam = post(&mut spammer, json!({"type": "send", "room": ROOM, "text": "buy cheap watches"})).await;
    messages(&mut owner, ROOM, 1).await;
    owner.send(json!({"type": "delete", "room": ROOM, "id": id(&spam), "reason": "spam"})).await;
    let deleted = next_change(&mut owner).await;
    assert_eq!(
        (&deleted["by_moderator"], &deleted["reason"], &deleted["username"]),
        (&json!(true), &json!("spam"), &json!("owner")),
        "{deleted}"
    );
    assert_eq!(next_change(&mut spammer).await["id"], deleted["id"]);
    spammer.send(json!({"type": "edit", "room": ROOM, "id": id(&spam), "text": "back again"})).await;
    assert_eq!(next_error(&mut spammer).await["code"], "bad_message");

    let mut joined = topology.client(1).await;
    let shown = find(&joined.join(ROOM, "reader").await["history"], &id(&spam)).clone();
    assert_eq!((&shown["text"], &shown["deleted_by"]), (&json!(""), &json!("owner")), "{shown}");

    let mut grpc = topology.grpc(0).await;
    let request = chat_proto::v1::AuditLogRequest { room: ROOM.into(), ..Default::default() };
    let audit = grpc.audit_log(request).await.expect("AuditLog").into_inner();
    let kept = audit.entries.iter().any(|e| e.id == deleted["id"].as_str().unwrap_or_default());
    assert!(kept, "the moderator's delete is in the audit log: {:?}", audit.entries);
}
