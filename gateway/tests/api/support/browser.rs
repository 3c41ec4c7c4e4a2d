//! One browser showing the page from one gateway ([`Tab`]), with the waits
//! and actions the browser tests share: join, say, read the messages and
//! notices, wait for a condition. Browsers come from [`Driver`]
//! (support/chromedriver.rs). Every wait polls the page for a condition up
//! to [`DEADLINE`]; no sleep is an assertion.
#![allow(dead_code)] // each browser test uses a different part

use std::{net::SocketAddr, time::Duration, time::Instant};

use fantoccini::{Client, Locator, key::Key};
use serde_json::{Value, json};

pub use super::chromedriver::Driver;

/// How long any condition in a tab may take to become true.
pub const DEADLINE: Duration = Duration::from_secs(10);
pub const POLL: Duration = Duration::from_millis(100);
/// Join/leave notices: local lines made from presence frames, with no event id.
pub const NOTICES: &str = "#messages .notice.join .notice-text, #messages .notice.leave .notice-text";

/// One browser showing the page from one gateway.
pub struct Tab {
    pub label: String,
    pub client: Client,
}

impl Tab {
    pub async fn open(driver: &mut Driver, label: &str, gateway: SocketAddr) -> Tab {
        Self::open_path(driver, label, gateway, "/").await
    }

    /// The page at `path` (e.g. `/?token=…`) on `gateway`.
    pub async fn open_path(driver: &mut Driver, label: &str, gateway: SocketAddr, path: &str) -> Tab {
        let client = driver.browser().await;
        client.goto(&format!("http://{gateway}{path}")).await.expect("open the page");
        let tab = Tab { label: label.to_owned(), client };
        tab.until(
            "a connection to the gateway",
            "const s = document.querySelector('#conn-state')?.dataset; \
             return {ok: s?.state === 'connected', seen: s?.state}",
            vec![],
        )
        .await;
        tab
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }

    /// Run `script` in the page and return what it returns.
    pub async fn js(&self, script: &str) -> Value {
        self.js_args(script, vec![]).await
    }

    pub async fn js_args(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("{}: script failed: {e}\n{script}", self.label))
    }

    /// Poll `script` (which returns `{ok, seen}`) until `ok`, or fail naming
    /// `what` and the last thing seen.
    pub async fn until(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let started = Instant::now();
        loop {
            let v = self.js_args(script, args.clone()).await;
            if v["ok"] == json!(true) {
                return v;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{}: no {what} within {DEADLINE:?}; last seen: {}",
                self.label,
                v["seen"]
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{}: no element {css}: {e}", self.label))
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("{}: click {css}: {e}", self.label));
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input.clear().await.unwrap_or_else(|e| panic!("{}: clear {css}: {e}", self.label));
        input.send_keys(text).await.unwrap_or_else(|e| panic!("{}: type into {css}: {e}", self.label));
    }

    /// Join `room` under `name` with the form, as a person would.
    pub async fn join(&self, name: &str, room: &str) {
        self.fill("#name", name).await;
        self.fill("#room", room).await;
        self.click("#join-btn").await;
        self.until(
            &format!("#{room} joined"),
            "const r = document.querySelector(`.room-item[data-room='${arguments[0]}']`); \
             return {ok: r?.dataset.status === 'joined' && r.classList.contains('active'), \
                     seen: r ? r.dataset.status : 'not in the room list'}",
            vec![json!(room)],
        )
        .await;
    }

    pub async fn type_keys(&self, keys: &str) {
        let composer = self.find("#composer").await;
        composer.send_keys(keys).await.unwrap_or_else(|e| panic!("{}: type: {e}", self.label));
    }

    /// Type a message and press Enter.
    pub async fn say(&self, text: &str) {
        self.type_keys(text).await;
        self.type_keys(&Key::Enter).await;
    }

    /// Texts of the stored messages on screen, in order.
    pub async fn messages(&self) -> Vec<String> {
        let v = self
            .js("return [...document.querySelectorAll('#messages .msg[data-id] .text')].map(e => e.textContent)")
            .await;
        serde_json::from_value(v).expect("a list of texts")
    }

    pub async fn is_own(&self, text: &str) -> bool {
        self.js_args(
            "return [...document.querySelectorAll('#messages .msg[data-id]')] \
               .some(m => m.querySelector('.text').textContent === arguments[0] && m.classList.contains('own'))",
            vec![json!(text)],
        )
        .await
            == json!(true)
    }

    pub async fn body_text(&self) -> String {
        self.js("return document.body.textContent").await.as_str().unwrap_or_default().to_owned()
    }

    pub async fn connects(&self) -> u64 {
        let v = self.js("return Number(document.querySelector('#conn-state').dataset.connects)").await;
        v.as_u64().expect("data-connects is a number")
    }

    /// The connection pill's state (`#conn-state[data-state]`).
    pub async fn state(&self) -> String {
        let v = self.js("return document.querySelector('#conn-state').dataset.state").await;
        v.as_str().unwrap_or_default().to_owned()
    }

    pub async fn until_state(&self, state: &str) {
        self.until(
            &format!("connection state `{state}`"),
            "const s = document.querySelector('#conn-state')?.dataset.state; return {ok: s === arguments[0], seen: s}",
            vec![json!(state)],
        )
        .await;
    }

    pub async fn until_message(&self, text: &str) {
        self.until(
            &format!("message `{text}`"),
            "const t = [...document.querySelectorAll('#messages .msg[data-id] .text')].map(e => e.textContent); \
             return {ok: t.includes(arguments[0]), seen: t.slice(-5)}",
            vec![json!(text)],
        )
        .await;
    }

    /// Texts of the join/leave notices on screen, in order.
    pub async fn notices(&self) -> Vec<String> {
        let v = self.js(&format!("return [...document.querySelectorAll('{NOTICES}')].map(e => e.textContent)")).await;
        serde_json::from_value(v).expect("a list of texts")
    }

    pub async fn until_notice(&self, text: &str) {
        self.until(
            &format!("notice `{text}`"),
            &format!(
                "const t = [...document.querySelectorAll('{NOTICES}')].map(e => e.textContent); \
                 return {{ok: t.includes(arguments[0]), seen: t.slice(-5)}}"
            ),
            vec![json!(text)],
        )
        .await;
    }

    /// The members header shows the room's size.
    pub async fn until_member_count(&self, n: &str) {
        self.until(
            &format!("member count {n}"),
            "const t = document.querySelector('#member-count').textContent; return {ok: t === arguments[0], seen: t}",
            vec![json!(n)],
        )
        .await;
    }

    /// The member list is exactly `names` (sorted).
    pub async fn until_members(&self, names: &[&str]) {
        self.until(
            &format!("member list {names:?}"),
            "const m = [...document.querySelectorAll('#members li.member')].map(e => e.dataset.username).sort(); \
             return {ok: JSON.stringify(m) === JSON.stringify(arguments[0]), seen: m}",
            vec![json!(names)],
        )
        .await;
    }

    pub async fn until_typing(&self, text: &str) {
        self.until(
            &format!("typing line `{text}`"),
            "const t = document.querySelector('#typing').textContent; return {ok: t === arguments[0], seen: t}",
            vec![json!(text)],
        )
        .await;
    }

    /// Take this tab's browser off the network, or back on: new connections
    /// fail while it is off (Chromium's network emulation, through
    /// chromedriver), and the page gets `offline` / `online` events.
    pub async fn set_offline(&self, offline: bool) {
        self.client
            .issue_cmd(NetworkConditions { offline })
            .await
            .unwrap_or_else(|e| panic!("{}: set the network offline={offline}: {e}", self.label));
    }

    /// Run `f` with this tab's WebDriver focus inside iframe `index`.
    pub async fn in_frame<F>(&self, index: u16, f: F)
    where
        F: AsyncFnOnce(&Tab),
    {
        self.client.enter_frame(index).await.expect("enter the iframe");
        f(self).await;
        self.client.enter_parent_frame().await.expect("leave the iframe");
    }
}

/// chromedriver's `POST /session/{id}/chromium/network_conditions`, which
/// fantoccini has no method for.
#[derive(Debug)]
struct NetworkConditions {
    offline: bool,
}

impl fantoccini::wd::WebDriverCompatibleCommand for NetworkConditions {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/chromium/network_conditions", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let conditions = json!({"network_conditions": {
            "offline": self.offline, "latency": 0, "download_throughput": -1, "upload_throughput": -1,
        }});
        (axum::http::Method::POST, Some(conditions.to_string()))
    }
}
