//! Limits one client cannot multiply by opening connections, on a real
//! topology: the per-address connection cap (`MAX_CONNECTIONS_PER_IP`), the
//! client's address behind a trusted proxy (`TRUSTED_PROXIES`), and with
//! tokens one send bucket per user across that user's connections.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{Client, PATIENCE, Topology, http_get, metric};
use chat_proto::v1::HistoryRequest;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

const SECRET: &str = "test-secret-0123456789abcdef";

fn token(sub: &str) -> String {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + 600;
    let claims = json!({"sub": sub, "exp": exp});
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).expect("encodes")
}

/// Connects with `X-Forwarded-For: forwarded` (when given), failing the
/// test if the gateway refuses.
async fn open(addr: SocketAddr, forwarded: Option<&str>) -> Client {
    let headers: Vec<(&str, &str)> = forwarded.map(|f| ("x-forwarded-for", f)).into_iter().collect();
    match Client::try_connect_with(addr, "", &headers).await {
        Ok(client) => client,
        Err((status, body)) => panic!("refused (XFF {forwarded:?}): {status} {body}"),
    }
}

/// Connects as [`open`] does, expecting the per-address cap's 429; the body.
async fn refused(addr: SocketAddr, forwarded: Option<&str>) -> String {
    let headers: Vec<(&str, &str)> = forwarded.map(|f| ("x-forwarded-for", f)).into_iter().collect();
    match Client::try_connect_with(addr, "", &headers).await {
        Ok(_) => panic!("let in past the per-address cap (XFF {forwarded:?})"),
        Err((status, body)) => {
            assert_eq!(status, 429, "XFF {forwarded:?}: {body}");
            assert!(body.contains("MAX_CONNECTIONS_PER_IP"), "the 429 names the limit: {body}");
            body
        }
    }
}

/// Connects until the gateway lets the connection in: a closed session
/// gives its place back when its task ends, a moment after the close.
async fn open_when_freed(addr: SocketAddr, forwarded: Option<&str>) -> Client {
    let headers: Vec<(&str, &str)> = forwarded.map(|f| ("x-forwarded-for", f)).into_iter().collect();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match Client::try_connect_with(addr, "", &headers).await {
            Ok(client) => return client,
            Err((429, _)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err((status, body)) => panic!("still refused after a connection went: {status} {body}"),
        }
    }
}

async fn refusals(addr: SocketAddr) -> f64 {
    let (_, text) = http_get(addr, "/metrics").await;
    metric(&text, &["chat_gateway_upgrades_refused_total", "limit=\"per_ip\""])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_per_address_cap_get_429_until_one_goes() {
    let topology = Topology::start_configured(1, 1, |_| {}, |gw| gw.max_connections_per_ip = 3).await;
    let addr = topology.gateway_addr(0);

    let mut open_now = Vec::new();
    for _ in 0..3 {
        open_now.push(open(addr, None).await);
    }
    let body = refused(addr, None).await;
    assert!(body.contains("127.0.0.1") && body.contains("at most 3"), "says whose and how many: {body}");
    assert_eq!(refusals(addr).await, 1.0, "counted in the metrics");

    // A tab closed properly gives its place back...
    open_now.pop().expect("three open").close().await;
    open_now.push(open_when_freed(addr, None).await);
    refused(addr, None).await;
    // ...and so does a connection that just vanished.
    open_now.pop().expect("three open").vanish();
    open_now.push(open_when_freed(addr, None).await);
    refused(addr, None).await;

    // The ones let in work as ever.
    let first = &mut open_now[0];
    first.join("general", "ada").await;
    first.say("general", "still chatting").await;
    assert_eq!(first.next_of("message").await["text"], "still chatting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_is_ignored_without_trusted_proxies() {
    let topology = Topology::start_configured(1, 1, |_| {}, |gw| gw.max_connections_per_ip = 2).await;
    let addr = topology.gateway_addr(0);

    let _a = open(addr, Some("198.51.100.1")).await;
    let _b = open(addr, Some("198.51.100.2")).await;
    let body = refused(addr, Some("198.51.100.3")).await;
    assert!(body.contains("127.0.0.1"), "counted as the TCP peer, not as the header says: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_count_and_cannot_spoof_another() {
    let topology = Topology::start_configured(
        1,
        1,
        |_| {},
        |gw| {
            gw.max_connections_per_ip = 2;
            gw.trusted_proxies = Some(gateway::TrustedProxies::parse("127.0.0.1").expect("a proxy"));
        },
    )
    .await;
    let addr = topology.gateway_addr(0);

    // Four connections from the proxy (127.0.0.1), two for each client it names.
    let mut first = vec![open(addr, Some("198.51.100.1")).await, open(addr, Some("198.51.100.1")).await];
    let _second = [open(addr, Some("198.51.100.2")).await, open(addr, Some("198.51.100.2")).await];
    let body = refused(addr, Some("198.51.100.1")).await;
    assert!(body.contains("198.51.100.1"), "counted as the forwarded client: {body}");
    refused(addr, Some("198.51.100.2")).await;

    // The client writes an address of its own choosing on the left; the
    // proxy appends the real one on the right: the right one counts.
    refused(addr, Some("203.0.113.66, 198.51.100.1")).await;
    // A second trusted proxy in the chain is skipped.
    refused(addr, Some("203.0.113.66, 198.51.100.1, 127.0.0.1")).await;
    // Without the header the proxy itself is the client, with its own count.
    let _proxy_itself = open(addr, None).await;

    first.pop().expect("two open").close().await;
    let _again = open_when_freed(addr, Some("198.51.100.1")).await;
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
    let history = grpc
        .history(HistoryRequest { room: "general".into(), limit: 100, ..Default::default() })
        .await
        .expect("history");
    let stored = history
        .into_inner()
        .events
        .iter()
        .filter(|e| matches!(e.kind, Some(chat_proto::v1::room_event::Kind::Message(_))))
        .count();
    assert_eq!(stored, 2 * BURST, "ada's burst and bob's, nothing refused");
}
