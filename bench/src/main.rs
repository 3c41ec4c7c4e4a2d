//! The chat's benchmark: real WebSocket browsers against the standard
//! topology (Redis, 2 room-services, 3 gateways as separate processes,
//! started by the same code as `cargo xtask up`) and, side by side, against
//! the floor (a minimal in-memory fan-out server with no gRPC and no Redis),
//! with the CPU share of every process.
//!
//! A workspace crate of its own, not an example or a test target, so
//! `cargo test` never builds it. It builds the gateway and room-service
//! itself, as `cargo xtask up` does (release; `--debug`), unless
//! `--bin-dir` points at executables built before:
//!
//! ```sh
//! cargo run --release -p chat-bench --                                # sweep, store on and off, 10 rooms x 100 browsers
//! cargo run --release -p chat-bench -- --sweep 10000,30000 --step-secs 3 --svg sweep.svg
//! cargo run --release -p chat-bench -- --store off                    # sweep without PostgreSQL only
//! cargo run --release -p chat-bench -- --store all                    # STORE_SYNC=1, store on, store off
//! cargo run --release -p chat-bench -- --idle 10000                   # memory and connect
//! cargo run --release -p chat-bench -- --storm 10x1000                # join storm
//! cargo run --release -p chat-bench -- --busy-room                    # one busy room, and how fast it is archived
//! cargo run --release -p chat-bench -- --scrollback                   # History pages from a room of 1M rows
//! cargo run --release -p chat-bench -- --uploads                      # 50 uploads at once, fan-out while they stream
//! cargo run --release -p chat-bench -- --gateway ws://127.0.0.1:3000/ws   # an existing deployment
//! ```
//!
//! `docs/benchmarks.md` says what each number means and how it is taken.
//!
//! # Layout
//! - [`topology`]: starting and stopping the processes under test (the
//!   standard topology through xtask's plan and supervisor, or the floor
//!   re-executing this program).
//! - [`floor`]: the floor server itself (`--serve-floor`, hidden).
//! - [`procstat`]: CPU time and RSS of a process from `/proc`.
//! - [`client`]: one browser: connect, join, read and classify every frame.
//! - [`fleet`]: many browsers in rooms, and senders posting at a paced rate;
//!   one measured step.
//! - [`sweep`], [`idle`], [`storm`], [`busy`], [`scrollback`], [`uploads`]:
//!   the six modes.
//! - [`archive_lag`]: the room-services' archive lag, scraped during a step.
//! - [`stats`], [`report`], [`svg`]: percentiles, tables, the plot.

mod archive_lag;
mod busy;
mod client;
mod fleet;
mod floor;
mod idle;
mod procstat;
mod report;
mod scrollback;
mod stats;
mod storm;
mod svg;
mod sweep;
mod topology;
mod uploads;

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(name = "bench", about = "Chat fan-out benchmark: standard topology vs the in-process floor")]
pub struct Args {
    /// Load an existing deployment at these gateway WebSocket URLs instead of
    /// starting the topology (repeatable). No floor, and CPU only for the bench.
    #[arg(long)]
    gateway: Vec<String>,

    /// Offered load per step, in deliveries/s (messages/s × members).
    #[arg(long, value_delimiter = ',', default_value = "10000,30000,60000,100000,200000")]
    sweep: Vec<u64>,
    /// Seconds of sending per step.
    #[arg(long, default_value_t = 6.0)]
    step_secs: f64,
    /// Longest wait after a step's last send for its deliveries; what has not
    /// arrived by then counts as lost.
    #[arg(long, default_value_t = 5.0)]
    drain_secs: f64,
    /// Rooms in the sweep, each with one sender.
    #[arg(long, default_value_t = 10)]
    rooms: usize,
    /// Browsers per room in the sweep (the sender included).
    #[arg(long, default_value_t = 100)]
    members: usize,
    /// Write the latency-vs-throughput plot of the sweep here.
    #[arg(long)]
    svg: Option<PathBuf>,

    /// Memory and connect mode: this many browsers join rooms of 10 on one gateway.
    #[arg(long)]
    idle: Option<usize>,
    /// Join-storm mode: ROOMSxMEMBERS browsers join one gateway at once, e.g. 10x1000.
    #[arg(long, value_parser = parse_storm)]
    storm: Option<(usize, usize)>,
    /// One-busy-room mode: 1 room, many members, many senders, rising send rate.
    #[arg(long)]
    busy_room: bool,
    /// Members of the busy room.
    #[arg(long, default_value_t = 1000)]
    busy_members: usize,
    /// Senders in the busy room (members too).
    #[arg(long, default_value_t = 20)]
    busy_senders: usize,
    /// Messages/s the busy room is offered, step by step; stepping stops at
    /// the first step the room does not carry.
    #[arg(long, value_delimiter = ',', default_value = "100,200,500,1000,2000,5000,10000")]
    busy_rates: Vec<u64>,
    /// Scrollback mode: History pages at random depths of a room of
    /// --scrollback-rows messages written straight into PostgreSQL.
    #[arg(long)]
    scrollback: bool,
    /// Messages in the scrollback room.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(101..))]
    scrollback_rows: u64,
    /// History pages read in scrollback mode (after 50 not counted).
    #[arg(long, default_value_t = 2000)]
    scrollback_pages: usize,
    /// Upload mode: files posted to one gateway at once (1 MiB and 20 MiB
    /// images, a 20 MiB non-image), then a fan-out step with and without
    /// 20 MiB images streaming in.
    #[arg(long)]
    uploads: bool,
    /// Uploads at once in upload mode, each by its own browser session.
    #[arg(long, default_value_t = 50)]
    uploads_at_once: usize,
    /// Offered deliveries/s of upload mode's fan-out step.
    #[arg(long, default_value_t = 30_000)]
    uploads_fanout: u64,
    /// Messages per History page in scrollback mode (1 to 100).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100))]
    page_limit: u32,
    /// Whether the started topology keeps history in a scratch PostgreSQL:
    /// `both` runs it with the store and then without in the same run;
    /// `sync` with the store and STORE_SYNC=1; `all`: sync, on, off.
    /// Default: both for the sweep, on for --busy-room, off for --idle and --storm.
    #[arg(long, value_enum)]
    store: Option<topology::StoreMode>,
    /// Messages each room's sender posts after all joined (idle and storm modes).
    #[arg(long, default_value_t = 5)]
    after_messages: usize,
    /// Longest wait for every browser to be joined (idle and storm modes).
    #[arg(long, default_value_t = 60.0)]
    join_timeout_secs: f64,

    /// Connects (and joins) in flight at once; default 200, or 1000 in a storm.
    #[arg(long)]
    connect_concurrency: Option<usize>,
    /// Skip the floor (topology only).
    #[arg(long)]
    no_floor: bool,
    /// Skip the topology (floor only).
    #[arg(long, conflicts_with = "gateway")]
    floor_only: bool,
    /// Gateways and room-services of the started topology.
    #[arg(long, default_value_t = 3)]
    gateways: usize,
    #[arg(long, default_value_t = 2)]
    room_services: usize,
    /// Run the started topology on a local Redis Cluster of this many
    /// masters (no replicas; a free block of ports in 20000-21999, bus ports
    /// +10000) instead of one Redis; 0: one Redis.
    #[arg(long, default_value_t = 0, value_parser = parse_cluster)]
    redis_cluster: usize,
    /// Build and run the debug gateway and room-service instead of the
    /// release ones (quick checks, not numbers).
    #[arg(long, conflicts_with = "bin_dir")]
    debug: bool,
    /// Run the gateway and room-service executables in this folder instead of
    /// building them (e.g. an older build to compare with).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,

    /// Run as the floor server (how the bench starts it).
    #[arg(long, hide = true)]
    serve_floor: bool,
    /// The floor server's port on 127.0.0.1.
    #[arg(long, hide = true, default_value_t = 0)]
    floor_port: u16,
    /// Run only an OTLP/gRPC receiver that counts spans, printing its
    /// endpoint: the collector to point traced builds at when measuring
    /// what traces cost (`OTEL_EXPORTER_OTLP_ENDPOINT`, through a `--bin-dir`
    /// of wrappers that set it, since the bench's processes are isolated).
    #[arg(long)]
    otlp_sink: bool,
}

fn parse_storm(s: &str) -> Result<(usize, usize), String> {
    let (rooms, members) = s.split_once(['x', 'X']).ok_or("expected ROOMSxMEMBERS, e.g. 10x1000")?;
    let parse = |v: &str| v.trim().parse::<usize>().ok().filter(|n| *n > 0);
    match (parse(rooms), parse(members)) {
        (Some(r), Some(m)) => Ok((r, m)),
        _ => Err(format!("expected ROOMSxMEMBERS with both above 0, e.g. 10x1000; got {s:?}")),
    }
}

fn parse_cluster(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(masters) if masters == 0 || masters >= 3 => Ok(masters),
        Ok(_) => Err("a Redis Cluster needs at least 3 masters (0: one Redis)".to_owned()),
        Err(_) => Err(format!("expected a number of masters, got {s:?}")),
    }
}

/// Lifts the soft open-files limit to the hard one, so ten thousand browsers
/// (and the servers this process starts, which inherit it) fit.
fn raise_open_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                eprintln!("could not raise the open-files limit from {soft} to {hard} ({e}); try `ulimit -n {hard}`");
            }
        }
        _ => {}
    }
    if let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < 12_000
    {
        eprintln!(
            "note: the open-files limit is {soft}; 10,000 browsers need one each in the bench and in the gateway \
             (`ulimit -n 65536` as root before running)"
        );
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.serve_floor {
        raise_open_files();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if args.serve_floor {
        return runtime.block_on(floor::serve(args.floor_port));
    }
    if args.otlp_sink {
        let sink = chat_testkit::OtlpCollector::start();
        println!("{}", sink.endpoint());
        loop {
            std::thread::sleep(std::time::Duration::from_secs(10));
            eprintln!("spans received: {}", sink.total());
        }
    }
    let run = async {
        if let Some(n) = args.idle {
            idle::run(&args, n).await
        } else if let Some((rooms, members)) = args.storm {
            storm::run(&args, rooms, members).await
        } else if args.busy_room {
            busy::run(&args).await
        } else if args.scrollback {
            scrollback::run(&args).await
        } else if args.uploads {
            uploads::run(&args).await
        } else {
            sweep::run(&args).await
        }
    };
    // The servers run in process groups of their own (a Ctrl+C in the
    // terminal reaches only the bench): on one, the run is dropped and with
    // it the runtime, which kills every child (`kill_on_drop`).
    runtime.block_on(async {
        tokio::select! {
            outcome = run => outcome,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted: the processes the bench started are killed"),
        }
    })
}
