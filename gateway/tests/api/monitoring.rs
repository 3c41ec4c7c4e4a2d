//! The dashboard and the alert rules against what the processes really
//! export: a real topology (a redis-server, a room-service, a gateway) is
//! driven through the events that make counters appear — a join, a message,
//! two uploads, a resume, a refused upgrade, a rate-limited send, a closed
//! connection —
//! then both `/metrics` pages are scraped, and every `chat_…` series name
//! `deploy/grafana/chat.json` and `deploy/prometheus/rules.yml` use must be
//! among them, as must every `label="value"` they select on. The test fails
//! naming each one that is missing and the file that uses it.
//!
//! Names are compared as Prometheus sees them (`_bucket`, `_sum`, `_count`
//! included), so a quantile over a summary, or a `_bucket` of a histogram
//! that lost its buckets, is caught too. Two series appear only under an
//! overload this test does not stage; [`NOT_DRIVEN`] lists them with the
//! reason, and for those the test checks that the code still names them
//! (so a rename is caught) and says it skipped them.
//!
//! Metrics of other exporters (`redis_…`, `up`) are not checked here: their
//! rules are unit-tested by `promtool test rules` (.ci/monitoring-check).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::{Client, PATIENCE, Topology, http_get};

const DASHBOARD: &str = "deploy/grafana/chat.json";
const RULES: &str = "deploy/prometheus/rules.yml";

/// A series that only appears under an overload this test does not stage.
struct NotDriven {
    name: &'static str,
    /// The one `label="value"` skipped, or "" for every series of `name`.
    selector: &'static str,
    why: &'static str,
    /// Where the code registers `name`, and where it emits the skipped
    /// label value: both checked, so the skip cannot hide a rename.
    registered_in: &'static str,
    emitted_in: &'static str,
    emitted: &'static str,
}

const NOT_DRIVEN: &[NotDriven] = &[
    NotDriven {
        name: "chat_gateway_sessions_ended_total",
        selector: r#"how="slow_consumer""#,
        why: "a browser's queue must fill before the gateway closes it with 4008, which takes a flood; the \
              series name itself is driven here by a closed connection",
        registered_in: "gateway/src/metrics.rs",
        emitted_in: "gateway/src/session/ending.rs",
        emitted: r#""slow_consumer""#,
    },
    NotDriven {
        name: "chat_room_service_calls_shed_total",
        selector: "",
        why: "a room-service sheds presence changes only when a room's presence queue is full; ordinary \
              traffic never fills it",
        registered_in: "room-service/src/metrics.rs",
        emitted_in: "room-service/src/presence_batch.rs",
        emitted: r#"shed("presence_queue_full")"#,
    },
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// A series a dashboard or rule selects: its name and one `label="value"`
/// matcher of its selector (`None` for the name alone).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Wanted {
    name: String,
    matcher: Option<(String, String)>,
    /// Named in a query, where only series names select anything; prose (a
    /// description, a runbook) may also name a histogram by its family
    /// name, `chat_…_seconds` for `chat_…_seconds_bucket`.
    in_query: bool,
}

/// Every `chat_…` name in `text`, each with the equality matchers of the
/// `{…}` right after it. Regex matchers (`=~"$gateway"`) and negations
/// select nothing in particular and are left out.
fn wanted_in(text: &str, in_query: bool) -> BTreeSet<Wanted> {
    let is_name_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_';
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("chat_") {
        let start = at + offset;
        let mut end = start + "chat_".len();
        while end < bytes.len() && is_name_char(bytes[end]) {
            end += 1;
        }
        at = end;
        if start > 0 && (is_name_char(bytes[start - 1]) || b"-/.".contains(&bytes[start - 1])) {
            continue; // part of a longer word or of a path
        }
        if end == start + "chat_".len() {
            continue; // "chat_…" in prose
        }
        let name = text[start..end].to_owned();
        found.insert(Wanted { name: name.clone(), matcher: None, in_query });
        if bytes.get(end) != Some(&b'{') {
            continue;
        }
        let Some(close) = text[end..].find('}') else { continue };
        for part in text[end + 1..end + close].split(',') {
            let Some((label, value)) = part.split_once('=') else { continue };
            let (label, value) = (label.trim(), value.trim());
            if label.ends_with('!') || value.starts_with('~') {
                continue;
            }
            let value = value.trim_matches('"');
            found.insert(Wanted { name: name.clone(), matcher: Some((label.to_owned(), value.to_owned())), in_query });
        }
    }
    found
}

/// Every string in a JSON document, depth first, split into queries (the
/// values of `expr` and of variables' `query`/`definition`) and the rest.
fn strings(value: &Value, key: &str, queries: &mut Vec<String>, prose: &mut Vec<String>) {
    match value {
        Value::String(s) if matches!(key, "expr" | "query" | "definition") => queries.push(s.clone()),
        Value::String(s) => prose.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, key, queries, prose)),
        Value::Object(map) => map.iter().for_each(|(k, v)| strings(v, k, queries, prose)),
        _ => {}
    }
}

/// A rules file split into its `expr:` values (one line, or a `|` / `>`
/// block of the lines indented under it) and the rest.
fn rule_queries(text: &str) -> (String, String) {
    let (mut queries, mut prose) = (String::new(), String::new());
    let mut block_indent: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(outer) = block_indent {
            if line.trim().is_empty() || indent > outer {
                queries.push_str(line);
                queries.push('\n');
                continue;
            }
            block_indent = None;
        }
        match line.trim_start().strip_prefix("expr:") {
            Some(rest) if rest.trim().starts_with(['|', '>']) => block_indent = Some(indent),
            Some(rest) => {
                queries.push_str(rest);
                queries.push('\n');
            }
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
        }
    }
    (queries, prose)
}

/// The series of a Prometheus text page: name -> the `label="value"` pairs
/// seen on it. A family (`# TYPE name …`) is listed under its name with
/// the pair ("# TYPE", kind), so prose may name a histogram by it.
fn exported(page: &str) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let mut series: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for family in page.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        if let Some((name, kind)) = family.split_once(' ') {
            series.entry(name.to_owned()).or_default().insert(("# TYPE".to_owned(), kind.to_owned()));
        }
    }
    for line in page.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let labels = series.entry(line[..name_end].to_owned()).or_default();
        if line[name_end..].starts_with('{') {
            let close = line.find('}').unwrap_or(line.len());
            for pair in line[name_end + 1..close].split(',') {
                if let Some((label, value)) = pair.split_once('=') {
                    labels.insert((label.to_owned(), value.trim_matches('"').to_owned()));
                }
            }
        }
    }
    series
}

/// The dashboard's panels and targets all take their Prometheus from the
/// `datasource` variable: no hard-coded uid that exists in one Grafana only.
fn datasource_problems(dashboard: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let variables = dashboard["templating"]["list"].as_array().cloned().unwrap_or_default();
    if !variables.iter().any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus") {
        problems.push(format!("{DASHBOARD} has no `datasource` variable of type datasource (query prometheus)"));
    }
    let mut panels = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        panels.push(panel);
        panels.extend(panel["panels"].as_array().into_iter().flatten());
    }
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let mut sources = vec![&panel["datasource"]];
        sources.extend(panel["targets"].as_array().into_iter().flatten().map(|t| &t["datasource"]));
        if panel["targets"].as_array().is_none_or(Vec::is_empty) {
            problems.push(format!("{DASHBOARD}: panel {title:?} has no query"));
        }
        for source in sources {
            if source["uid"] != "${datasource}" {
                problems.push(format!("{DASHBOARD}: panel {title:?} uses datasource {source}, not ${{datasource}}"));
            }
        }
    }
    problems
}

/// Drives the events whose series appear only once they happen.
async fn drive(topology: &Topology) {
    let gateway = topology.gateway_addr(0);
    let mut ada = topology.client(0).await;
    let joined = ada.join("general", "ada").await;
    let epoch = joined["epoch"].as_str().expect("joined carries the room's epoch").to_owned();
    // A message stored, published, received back from Redis and delivered
    // (both latency histograms); the second is past the burst of one.
    ada.say("general", "counted").await;
    ada.next_where(|f| f["type"] == "message").await;
    ada.say("general", "too soon").await;
    let refused = ada.next_of("error").await;
    assert_eq!(refused["code"], "rate_limited", "a send past SEND_BURST=1: {refused}");

    // Uploads of each kind: a file, and an image for its worker's time.
    let mut png = Vec::new();
    image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let uploads = reqwest::Client::new();
    for (name, body) in [("notes.txt", b"counted words".to_vec()), ("dot.png", png)] {
        let url = format!("http://{gateway}/upload?room=general&name={name}&session={}", ada.session());
        let answer = uploads.post(url).body(body).send().await.expect("an upload");
        assert_eq!(answer.status().as_u16(), 201, "{name}: {:?}", answer.text().await);
    }

    // A resume: a second connection joins from after seq 0 of that epoch.
    let mut bob = topology.client(0).await;
    bob.join_after("general", "bob", 0, &epoch).await;
    // A third connection from 127.0.0.1 is past MAX_CONNECTIONS_PER_IP=2.
    let third = Client::try_connect(gateway, "", None).await;
    assert_eq!(third.err().map(|(status, _)| status), Some(429), "the per-address cap refuses the third");
    // A connection that ends (sessions_ended).
    bob.close().await;
    drop(ada);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_alerts_use_is_exported() {
    // Arrange: what the dashboard and the rules select.
    let dashboard: Value =
        serde_json::from_str(&read(DASHBOARD)).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"));
    let datasource = datasource_problems(&dashboard);
    assert!(datasource.is_empty(), "{}", datasource.join("\n"));
    let (mut queries, mut prose) = (Vec::new(), Vec::new());
    strings(&dashboard, "", &mut queries, &mut prose);
    let (rule_queries, rule_prose) = rule_queries(&read(RULES));
    let mut wanted: BTreeMap<Wanted, BTreeSet<&str>> = BTreeMap::new();
    for (file, queries, prose) in [(DASHBOARD, queries.join("\n"), prose.join("\n")), (RULES, rule_queries, rule_prose)]
    {
        let in_queries = wanted_in(&queries, true);
        assert!(in_queries.len() > 5, "{file}'s queries name only {in_queries:?}: is the scan broken?");
        for series in in_queries.into_iter().chain(wanted_in(&prose, false)) {
            wanted.entry(series).or_default().insert(file);
        }
    }

    // Act: a real topology through the events, then its pages.
    let topology = Topology::start_configured(
        1,
        1,
        |_| {},
        |gateway| {
            gateway.send_rate = 1;
            gateway.send_burst = 1;
            gateway.max_connections_per_ip = 2;
        },
    )
    .await;
    drive(&topology).await;

    // Assert: everything wanted is on a page (the room-service counts what
    // comes back from Redis a moment later, hence the patience).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let missing = loop {
        let mut series = exported(&http_get(topology.gateway_addr(0), "/metrics").await.1);
        series.extend(exported(&http_get(topology.room_service_metrics_addr(0), "/metrics").await.1));
        let missing: Vec<String> = wanted
            .iter()
            .filter(|(w, _)| !skipped(w))
            .filter(|(w, _)| match (&w.matcher, series.get(&w.name)) {
                (_, None) => true,
                // A family's name alone selects nothing in a query.
                (None, Some(labels)) => {
                    w.in_query && labels.iter().all(|(label, _)| label == "# TYPE") && labels.len() == 1 && {
                        let kind = &labels.iter().next().expect("one").1;
                        kind == "histogram" || kind == "summary"
                    }
                }
                (Some(pair), Some(labels)) => !labels.contains(pair),
            })
            .map(|(w, files)| {
                let selector = w.matcher.as_ref().map(|(label, value)| format!("{{{label}=\"{value}\"}}"));
                let files = files.iter().copied().collect::<Vec<_>>().join(", ");
                let place = if w.in_query { "a query of" } else { "the text of" };
                format!("{}{} (in {place} {files})", w.name, selector.unwrap_or_default())
            })
            .collect();
        if missing.is_empty() || tokio::time::Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        missing.is_empty(),
        "not exported by the gateway or the room-service after a join, a message, two uploads, a resume, a refused \
         upgrade, a rate-limited send and a closed connection:\n- {}",
        missing.join("\n- ")
    );

    for skip in NOT_DRIVEN {
        let (name, selector) = (skip.name, skip.selector);
        assert!(
            read(skip.registered_in).contains(&format!("\"{name}\"")),
            "{} no longer registers {name}",
            skip.registered_in
        );
        assert!(read(skip.emitted_in).contains(skip.emitted), "{} no longer emits {}", skip.emitted_in, skip.emitted);
        eprintln!("monitoring: not driven here, {name}{{{selector}}}: {}", skip.why);
    }
}

/// Whether a wanted series is one [`NOT_DRIVEN`] skips: the name with no
/// selector there, or exactly its selector.
fn skipped(wanted: &Wanted) -> bool {
    NOT_DRIVEN.iter().any(|skip| {
        skip.name == wanted.name
            && match (&wanted.matcher, skip.selector.is_empty()) {
                (_, true) => true,
                (Some((label, value)), false) => skip.selector == format!("{label}=\"{value}\""),
                (None, false) => false,
            }
    })
}

#[test]
fn the_scan_finds_names_and_equality_matchers_only() {
    let found = wanted_in(
        r#"sum(rate(chat_gateway_errors_total{gateway=~"$gateway", code="rate_limited"}[5m])) / chat_x_total
           deploy/chat_files and my-chat_thing and notchat_a and every chat_… name"#,
        true,
    );
    let expected: BTreeSet<Wanted> = [
        Wanted { name: "chat_gateway_errors_total".into(), matcher: None, in_query: true },
        Wanted {
            name: "chat_gateway_errors_total".into(),
            matcher: Some(("code".into(), "rate_limited".into())),
            in_query: true,
        },
        Wanted { name: "chat_x_total".into(), matcher: None, in_query: true },
    ]
    .into();
    assert_eq!(found, expected);
}

#[test]
fn a_rules_file_splits_into_queries_and_prose() {
    let (queries, prose) = rule_queries(
        "      - alert: A\n        expr: up == 0\n        annotations:\n          summary: chat_a_total\n\
         \x20     - alert: B\n        expr: |\n          sum(\n            chat_b_bucket)\n        for: 5m\n",
    );
    assert_eq!(queries.split_whitespace().collect::<Vec<_>>(), ["up", "==", "0", "sum(", "chat_b_bucket)"]);
    assert!(prose.contains("chat_a_total") && prose.contains("for: 5m") && !prose.contains("chat_b"), "{prose}");
}
