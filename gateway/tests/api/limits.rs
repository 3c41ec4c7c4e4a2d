//! Limits one client cannot multiply by opening connections, on a real
//! topology: with tokens, one send bucket per user across that user's
//! connections.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{Client, Topology};
use chat_proto::v1::HistoryRequest;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

const SECRET: &str = "test-secret-0123456789abcdef";

fn token(sub: &str) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + 600;
    let claims = json!({"sub": sub, "exp": exp});
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).expect("encodes")
}

/// What each of `clients` got within a quiet moment: the texts of the
/// messages and the error frames.
async fn answers(clients: &mut [&mut Client]) -> Vec<(Vec<String>, Vec<Value>)> {
    let mut all = Vec::new();
    for client in clients.iter_mut() {
        let frames = client.drain(Duration::from_millis(500)).await;
        let texts = frames.iter().filter(|f| f["type"] == "message").map(|f| f["text"].to_string()).collect();
        all.push((texts, frames.into_iter().filter(|f| f["type"] == "error").collect()));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_a_users_connections_share_one_send_bucket_and_other_users_keep_theirs() {
    const BURST: usize = 4;
    let topology = Topology::start_configured(
        1,
        1,
        |_| {},
        |gw| {
            gw.jwt_secret = Some(SECRET.into());
            gw.send_rate = 1;
            gw.send_burst = BURST as u32;
        },
    )
    .await;
    let addr = topology.gateway_addr(0);
    let connect = |sub: &'static str| async move {
        Client::try_connect(addr, &format!("?token={}", token(sub)), None).await.expect("a good token is let in")
    };
    let (mut tab1, mut tab2, mut bob) = (connect("u-ada").await, connect("u-ada").await, connect("u-bob").await);
    for client in [&mut tab1, &mut tab2, &mut bob] {
        client.join("general", "ignored").await;
    }

    // Ada's burst, split over her two tabs, then one more: B+1 in all.
    for i in 0..BURST / 2 {
        tab1.say("general", &format!("tab1-{i}")).await;
    }
    for i in 0..BURST / 2 + 1 {
        tab2.say("general", &format!("tab2-{i}")).await;
    }
    let got = answers(&mut [&mut tab1, &mut tab2]).await;
    let errors: Vec<&Value> = got.iter().flat_map(|(_, errors)| errors).collect();
    assert_eq!(errors.len(), 1, "the one message past ada's burst is refused, whichever tab sent it: {got:?}");
    assert_eq!(errors[0]["code"], "rate_limited", "{}", errors[0]);
    assert!(errors[0]["message"].as_str().unwrap_or_default().contains("your account"), "{}", errors[0]);
    assert_eq!(got[0].0.len(), BURST, "each tab sees the {BURST} delivered: {got:?}");

    // Bob's bucket is his own: his whole burst passes.
    for i in 0..BURST {
        bob.say("general", &format!("bob-{i}")).await;
    }
    let got = answers(&mut [&mut bob]).await;
    assert!(got[0].1.is_empty(), "no refusal for bob: {got:?}");
    assert_eq!(got[0].0.iter().filter(|text| text.contains("bob-")).count(), BURST, "{got:?}");

    let mut grpc = topology.grpc(0).await;
    let history = grpc.history(HistoryRequest { room: "general".into(), limit: 100 }).await.expect("history");
    let stored = history
        .into_inner()
        .events
        .iter()
        .filter(|e| matches!(e.kind, Some(chat_proto::v1::room_event::Kind::Message(_))))
        .count();
    assert_eq!(stored, 2 * BURST, "ada's burst and bob's, nothing refused");
}
