//! Upload mode (`--uploads`): what attachments cost a gateway. Uploaders,
//! each its own browser session joined to one room on gateway 1, post
//! files to `POST /upload` all at once, a round per kind of file: 1 MiB and
//! 20 MiB images (PNGs of noise, which do not compress, so the gateway
//! stores, strips and thumbnails all of it) and a 20 MiB file that is not
//! an image (stored only: the difference is the image work). For each
//! round: throughput, each upload's time to its answer (an image's answer
//! waits for its thumbnail), and gateway 1's RSS sampled every 20 ms
//! (before, peak, after), which must not grow with the file's size.
//!
//! Then the fan-out sweep's question under load: rooms × members browsers
//! on every gateway, one step at `--uploads-fanout` deliveries/s without
//! uploads and one with 20 MiB images streaming into gateway 1 all along,
//! latency side by side.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::Args;
use crate::fleet::{self, Fleet};
use crate::procstat::Watched;
use crate::stats::{ms, percentile_ms};
use crate::topology::{self, Kind};

/// The room every uploader is in.
const ROOM: &str = "uploads";
const MIB: usize = 1024 * 1024;
const SETTLE: Duration = Duration::from_secs(1);

/// One browser session that may upload to [`ROOM`]: its connection stays
/// open for the run.
struct Uploader {
    session: String,
    _socket: tokio::task::JoinHandle<()>,
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let at_once = args.uploads_at_once.max(1);
    println!("uploads: {at_once} at once into one gateway, 1 MiB and 20 MiB images and a 20 MiB non-image");
    let kind = Kind::Topology { store: false, sync: false };
    let deployment = topology::start(kind, args, at_once + args.rooms * args.members).await?;
    let result = measure(args, &deployment, at_once).await;
    deployment.stop().await;
    result
}

async fn measure(args: &Args, deployment: &topology::Deployment, at_once: usize) -> anyhow::Result<()> {
    let ws = &deployment.urls[0];
    let http = http_base(ws)?;
    let gateway = deployment.gateway_process(0).cloned();
    let uploaders = connect_uploaders(ws, at_once).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(at_once).build()?;
    let files = [
        ("1 MiB image", noise_png(MIB), "a.png"),
        ("20 MiB image", noise_png(20 * MIB), "b.png"),
        ("20 MiB file", noise(20 * MIB, 7), "c.bin"),
    ];
    println!(
        "{:<13} {:>8} {:>8} {:>9} {:>9} {:>9} {:>10} {:>10} {:>10}",
        "upload", "ok", "failed", "MiB/s", "p50 ms", "p99 ms", "RSS MiB", "peak MiB", "after MiB"
    );
    for (label, bytes, name) in &files {
        tokio::time::sleep(SETTLE).await;
        let bytes = bytes::Bytes::from(bytes.clone());
        let sampler = RssSampler::start(gateway.clone());
        let started = Instant::now();
        let uploads = uploaders.iter().map(|u| upload(&client, &http, &u.session, name, bytes.clone()));
        let outcomes = futures_util::future::join_all(uploads).await;
        let secs = started.elapsed().as_secs_f64();
        let (before, peak) = sampler.stop().await;
        tokio::time::sleep(SETTLE).await;
        let after = gateway.as_ref().and_then(Watched::rss_kib).unwrap_or(0);
        let mut latencies: Vec<u32> = outcomes.iter().filter_map(|o| o.as_ref().ok()).copied().collect();
        latencies.sort_unstable();
        let failed: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
        println!(
            "{:<13} {:>8} {:>8} {:>9.1} {:>9} {:>9} {:>10.1} {:>10.1} {:>10.1}",
            label,
            latencies.len(),
            failed.len(),
            (latencies.len() * bytes.len()) as f64 / MIB as f64 / secs,
            ms(percentile_ms(&latencies, 50.0)),
            ms(percentile_ms(&latencies, 99.0)),
            before as f64 / 1024.0,
            peak as f64 / 1024.0,
            after as f64 / 1024.0,
        );
        if let Some(why) = failed.first() {
            println!("  first failure: {why}");
        }
    }
    fanout_under_uploads(args, deployment, &client, &http, &uploaders, files[1].1.clone()).await
}

/// One fan-out step without uploads and one with 20 MiB images streaming
/// into gateway 1 the whole time.
async fn fanout_under_uploads(
    args: &Args,
    deployment: &topology::Deployment,
    client: &reqwest::Client,
    http: &str,
    uploaders: &[Uploader],
    image: Vec<u8>,
) -> anyhow::Result<()> {
    let (rooms, members) = (args.rooms.max(1), args.members.max(1));
    let plan = fleet::plan(rooms, members, 1, deployment.urls.len(), false);
    let concurrency = args.connect_concurrency.unwrap_or(200);
    let mut fleet =
        Fleet::connect(&deployment.urls, &plan, concurrency, Duration::from_secs_f64(args.join_timeout_secs)).await;
    crate::report::joins(deployment.label(), &fleet.joins, plan.len());
    let procs = deployment.watched();
    let per_room = args.uploads_fanout as f64 / (rooms * members) as f64;
    let step = Duration::from_secs_f64(args.step_secs);
    let drain = Duration::from_secs_f64(args.drain_secs);
    println!("fan-out at {} deliveries/s ({rooms} rooms x {members}), without and with uploads:", args.uploads_fanout);
    for with_uploads in [false, true] {
        tokio::time::sleep(SETTLE).await;
        let running = Arc::new(AtomicBool::new(with_uploads));
        let done = Arc::new(AtomicU64::new(0));
        let image = bytes::Bytes::from(image.clone());
        let streams: Vec<_> = uploaders
            .iter()
            .map(|u| {
                let (client, http, session) = (client.clone(), http.to_owned(), u.session.clone());
                let (running, done, image) = (Arc::clone(&running), Arc::clone(&done), image.clone());
                tokio::spawn(async move {
                    while running.load(Ordering::Relaxed) {
                        match upload(&client, &http, &session, "load.png", image.clone()).await {
                            Ok(_) => drop(done.fetch_add(1, Ordering::Relaxed)),
                            // Rate-limited or busy: what the page would do, wait.
                            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                        }
                    }
                })
            })
            .collect();
        let r = fleet.step(per_room, step, None, drain, &procs).await;
        running.store(false, Ordering::Relaxed);
        for stream in streams {
            let _ = stream.await;
        }
        println!(
            "  {:<16} delivered {:>9.0}/s  p50 {} ms  p99 {} ms  lost {}  uploads done {}  CPU {}",
            if with_uploads { "with uploads" } else { "without uploads" },
            r.delivered_per_sec(),
            ms(percentile_ms(&r.latencies_us, 50.0)),
            ms(percentile_ms(&r.latencies_us, 99.0)),
            r.lost,
            done.load(Ordering::Relaxed),
            r.cpu,
        );
    }
    fleet.close();
    Ok(())
}

/// Posts `bytes` as `name` to ROOM; the time to the answer, in µs.
async fn upload(
    client: &reqwest::Client,
    http: &str,
    session: &str,
    name: &str,
    bytes: bytes::Bytes,
) -> Result<u32, String> {
    let started = Instant::now();
    let url = format!("{http}/upload?room={ROOM}&name={name}&session={session}");
    let response = client.post(&url).body(bytes).send().await.map_err(|e| format!("{e}"))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("{status}: {}", body.trim()));
    }
    Ok(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX))
}

/// Browser sessions joined to ROOM on gateway `ws`.
async fn connect_uploaders(ws: &str, n: usize) -> anyhow::Result<Vec<Uploader>> {
    let mut uploaders = Vec::with_capacity(n);
    for i in 0..n {
        let (mut socket, _) =
            tokio_tungstenite::connect_async(ws).await.with_context(|| format!("connecting to {ws}"))?;
        let mut session = None;
        let join = serde_json::json!({"type": "join", "room": ROOM, "username": format!("up{i}")}).to_string();
        socket.send(Message::text(join)).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let frame = tokio::time::timeout_at(deadline, socket.next()).await.context("no joined within 10 s")?;
            let Some(Ok(Message::Text(text))) = frame else { anyhow::bail!("uploader {i}: connection closed") };
            let frame: serde_json::Value = serde_json::from_str(&text)?;
            match frame["type"].as_str() {
                Some("welcome") => session = frame["session"].as_str().map(str::to_owned),
                Some("joined") => break,
                Some("error") => anyhow::bail!("uploader {i} could not join: {text}"),
                _ => {}
            }
        }
        let session = session.context("no session in welcome")?;
        // Kept open and read (answering pings), so the session stays.
        let reader = tokio::spawn(async move { while let Some(Ok(_)) = socket.next().await {} });
        uploaders.push(Uploader { session, _socket: reader });
    }
    Ok(uploaders)
}

/// `ws://host:port/ws` -> `http://host:port`.
fn http_base(ws: &str) -> anyhow::Result<String> {
    let rest = ws.strip_prefix("ws://").context("a ws:// gateway URL")?;
    let host = rest.split('/').next().unwrap_or(rest);
    Ok(format!("http://{host}"))
}

/// Bytes that do not compress (xorshift), the same every run.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A PNG of RGB noise of about `len` bytes.
fn noise_png(len: usize) -> Vec<u8> {
    let side = ((len / 3) as f64).sqrt() as u32;
    let pixels = noise(side as usize * side as usize * 3, u64::from(side));
    let image = image::RgbImage::from_raw(side, side, pixels).expect("side x side x 3 bytes");
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).expect("a PNG encodes in memory");
    png.into_inner()
}

/// Samples a process's RSS every 20 ms until stopped: (first, peak) in KiB.
struct RssSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(u64, u64)>,
}

impl RssSampler {
    fn start(process: Option<Watched>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let read = || process.as_ref().and_then(Watched::rss_kib).unwrap_or(0);
            let first = read();
            let mut peak = first;
            while !stopped.load(Ordering::Relaxed) {
                peak = peak.max(read());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (first, peak.max(read()))
        });
        Self { stop, task }
    }

    async fn stop(self) -> (u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}
