//! Fan-out benchmark: many browsers in many rooms, one sender per room,
//! and what every receiver saw — throughput, latency, losses, duplicates.
//!
//! ```sh
//! cargo run --release -p gateway --example bench                       # its own topology
//! cargo run --release -p gateway --example bench -- --rooms 20 --clients-per-room 100
//! cargo run --release -p gateway --example bench -- --gateway ws://127.0.0.1:3000/ws --gateway ws://127.0.0.1:3001/ws
//! ```
//!
//! Without `--gateway` it starts a redis-server (from PATH, on a private
//! unix socket), two room-services and three gateways in this process, like
//! `cargo xtask up` does with separate processes; with `--gateway` it loads
//! an existing deployment instead. Every message carries its send time;
//! each receiver records send-to-receive latency. Prints one report.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
struct Args {
    /// Gateway WebSocket URLs to load; none: start a topology in-process.
    #[arg(long)]
    gateway: Vec<String>,
    /// Rooms, each with one sender.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Browsers per room (the sender included), spread over the gateways.
    #[arg(long, default_value_t = 50)]
    clients_per_room: usize,
    /// Messages each room's sender posts.
    #[arg(long, default_value_t = 200)]
    messages: usize,
    /// Messages per second per sender (0: as fast as the acks allow).
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// With the in-process topology: how many gateways and room-services.
    #[arg(long, default_value_t = 3)]
    gateways: usize,
    #[arg(long, default_value_t = 2)]
    room_services: usize,
    /// Run the in-process topology on the in-process broker (no Redis, one room-service).
    #[arg(long)]
    embedded: bool,
}

struct Topology {
    urls: Vec<String>,
    _redis: Option<tokio::process::Child>,
    _dir: Option<std::path::PathBuf>,
}

async fn start_topology(args: &Args) -> anyhow::Result<Topology> {
    let (redis_url, child, dir) = if args.embedded {
        (None, None, None)
    } else {
        let dir = std::env::temp_dir().join(format!("chat-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let socket = dir.join("redis.sock");
        let child = tokio::process::Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(&socket)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("cannot start redis-server ({e}); apt-get install -y redis-server, or use --embedded")
            })?;
        let url = format!("redis+unix://{}", socket.display());
        for _ in 0..200 {
            if socket.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        (Some(url), Some(child), Some(dir))
    };
    let room_services = if args.embedded { 1 } else { args.room_services };
    let mut rs_urls = Vec::new();
    for _ in 0..room_services {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        rs_urls.push(format!("http://{}", listener.local_addr()?));
        let mut config = room_service::Config::with_redis(redis_url.clone());
        config.metrics_port = 0;
        tokio::spawn(room_service::run(config, listener, std::future::pending()));
    }
    let mut urls = Vec::new();
    for _ in 0..args.gateways {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        urls.push(format!("ws://{}/ws", listener.local_addr()?));
        let mut config = gateway::Config::with_room_services(rs_urls.clone());
        config.send_rate = 0; // issue 10: measure the chat, not the per-connection limit
        tokio::spawn(gateway::run(config, listener, std::future::pending()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(Topology { urls, _redis: child, _dir: dir })
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect_and_join(url: &str, room: &str, name: &str) -> anyhow::Result<Socket> {
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    ws.send(Message::Text(json!({"type": "join", "room": room, "username": name}).to_string().into())).await?;
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message? {
            let frame: Value = serde_json::from_str(&text)?;
            match frame["type"].as_str() {
                Some("joined") => return Ok(ws),
                Some("error") => anyhow::bail!("join refused: {frame}"),
                _ => {}
            }
        }
    }
    anyhow::bail!("connection closed while joining")
}

/// What one receiver saw.
#[derive(Default)]
struct Seen {
    latencies_us: Vec<u64>,
    received: usize,
    /// When the last message arrived, in µs after the start of sending.
    last_at_us: u64,
    duplicates: usize,
    out_of_order: usize,
    /// Closed by the gateway as a slow consumer (4008) before the end.
    cut_off: bool,
}

async fn receive(mut ws: Socket, epoch: Instant, expected: usize, deadline: Instant) -> Seen {
    let mut seen = Seen::default();
    let mut last_seq = 0u64;
    let mut ids = std::collections::HashSet::new();
    while seen.received < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let text = match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => text,
            Ok(Some(Ok(Message::Close(Some(close))))) => {
                seen.cut_off = u16::from(close.code) == 4008;
                break;
            }
            Ok(Some(Ok(_))) => continue,
            _ => break,
        };
        let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
        if frame["type"] != "message" {
            continue;
        }
        let seq = frame["seq"].as_u64().unwrap_or(0);
        if !ids.insert(frame["id"].as_str().unwrap_or_default().to_owned()) {
            seen.duplicates += 1;
            continue;
        }
        if seq <= last_seq {
            seen.out_of_order += 1;
        }
        last_seq = seq;
        let sent_us: u64 =
            frame["text"].as_str().and_then(|t| t.split(' ').next()).and_then(|t| t.parse().ok()).unwrap_or(0);
        let now_us = epoch.elapsed().as_micros() as u64;
        seen.latencies_us.push(now_us.saturating_sub(sent_us));
        seen.last_at_us = now_us;
        seen.received += 1;
    }
    let _ = ws.close(None).await;
    seen
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank] as f64 / 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let topology = if args.gateway.is_empty() { Some(start_topology(&args).await?) } else { None };
    let urls: Vec<String> = match &topology {
        Some(t) => t.urls.clone(),
        None => args.gateway.clone(),
    };
    let total_clients = args.rooms * args.clients_per_room;
    println!(
        "chat fan-out benchmark: {} rooms x {} browsers over {} gateways ({}), {} messages per room at {} msg/s",
        args.rooms,
        args.clients_per_room,
        urls.len(),
        if topology.is_none() {
            "existing deployment"
        } else if args.embedded {
            "in-process broker"
        } else {
            "Redis"
        },
        args.messages,
        if args.rate == 0 { "max".to_owned() } else { args.rate.to_string() }
    );

    // Connect everyone; client k of a room goes to gateway k mod n.
    let started = Instant::now();
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    let connects = Arc::new(tokio::sync::Semaphore::new(64));
    let mut joins = Vec::new();
    for room in 0..args.rooms {
        for k in 0..args.clients_per_room {
            let url = urls[(room + k) % urls.len()].clone();
            let permit = Arc::clone(&connects);
            joins.push(tokio::spawn(async move {
                let _permit = permit.acquire().await;
                (room, k, connect_and_join(&url, &format!("bench{room}"), &format!("u{k}")).await)
            }));
        }
    }
    for join in joins {
        let (room, k, ws) = join.await?;
        let ws = ws?;
        if k == 0 { senders.push((room, ws)) } else { receivers.push((room, ws)) }
    }
    let connect_time = started.elapsed();
    println!("connected and joined {total_clients} browsers in {:.2} s", connect_time.as_secs_f64());
    // Let the last join notices settle so they do not count as message traffic.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let epoch = Instant::now();
    let sending_for = Duration::from_millis((args.messages as u64 * 1000).checked_div(args.rate).unwrap_or(0));
    // Whatever has not arrived 30 s after the last send is due counts as lost.
    let deadline = epoch + sending_for + Duration::from_secs(30);
    let results = Arc::new(Mutex::new(HashMap::new()));
    let mut tasks = Vec::new();
    for (i, (room, ws)) in receivers.into_iter().enumerate() {
        let results = Arc::clone(&results);
        let expected = args.messages;
        tasks.push(tokio::spawn(async move {
            let seen = receive(ws, epoch, expected, deadline).await;
            results.lock().await.insert((room, i), seen);
        }));
    }
    // The sender also reads its own messages back (its socket must be read).
    let mut sender_tasks = Vec::new();
    for (room, ws) in senders {
        let (mut write, mut read) = ws.split();
        let messages = args.messages;
        let rate = args.rate;
        sender_tasks.push(tokio::spawn(async move {
            // Read the sender's socket all along (the gateway would count it
            // as a slow consumer otherwise) and stop once its own last message
            // came back: until then the gateway may still be storing them.
            let echoed = tokio::spawn(async move {
                let mut own = 0;
                while own < messages {
                    let next = tokio::time::timeout_at(deadline.into(), read.next()).await;
                    let Ok(Some(Ok(Message::Text(text)))) = next else { break };
                    if text.contains(r#""type":"message""#) {
                        own += 1;
                    }
                }
            });
            let mut tick = (rate > 0).then(|| tokio::time::interval(Duration::from_micros(1_000_000 / rate)));
            for n in 0..messages {
                if let Some(tick) = tick.as_mut() {
                    tick.tick().await;
                }
                let sent = epoch.elapsed().as_micros();
                let frame = json!({"type": "send", "room": format!("bench{room}"), "text": format!("{sent} m{n}")});
                if write.send(Message::Text(frame.to_string().into())).await.is_err() {
                    break;
                }
            }
            let written = epoch.elapsed();
            let _ = echoed.await;
            (written, epoch.elapsed())
        }));
    }
    let (mut written, mut stored) = (Duration::ZERO, Duration::ZERO);
    for task in sender_tasks {
        let (w, s) = task.await?;
        written = written.max(w);
        stored = stored.max(s);
    }
    for task in tasks {
        task.await?;
    }

    let results = results.lock().await;
    let expected = results.len() * args.messages;
    let received: usize = results.values().map(|s| s.received).sum();
    let duplicates: usize = results.values().map(|s| s.duplicates).sum();
    let out_of_order: usize = results.values().map(|s| s.out_of_order).sum();
    let mut latencies: Vec<u64> = results.values().flat_map(|s| s.latencies_us.iter().copied()).collect();
    latencies.sort_unstable();
    let last = latencies.last().copied().unwrap_or(0) as f64 / 1000.0;
    println!("messages sent: {}   deliveries expected: {expected}", args.rooms * args.messages);
    let cut_off = results.values().filter(|s| s.cut_off).count();
    println!(
        "delivered: {received} ({:.3}% not delivered)   duplicates: {duplicates}   out of order: {out_of_order}",
        100.0 * (expected - received.min(expected)) as f64 / expected.max(1) as f64
    );
    if cut_off > 0 {
        println!(
            "{cut_off} of {} receivers fell 1024 frames behind and were closed with 4008 (slow consumer); \
             a browser reconnects and refills from history, this benchmark does not",
            results.len()
        );
    }
    let last_arrival = Duration::from_micros(results.values().map(|s| s.last_at_us).max().unwrap_or(0));
    println!(
        "throughput: {:.0} deliveries/s ({} in {:.2} s); senders wrote for {:.2} s, saw their last message back at {:.2} s",
        received as f64 / last_arrival.as_secs_f64().max(0.001),
        received,
        last_arrival.as_secs_f64(),
        written.as_secs_f64(),
        stored.as_secs_f64(),
    );
    println!(
        "latency send→receive ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 99.9),
        last
    );
    Ok(())
}
