//! People in a real browser (issue 17): headless Chromium (support/browser.rs)
//! on a real topology, each tab on its own gateway.
//!
//! ada (gateway 1) clicks "Message" beside bob in `general`'s member list:
//! her tab opens the direct conversation; what she writes shows in the
//! sidebar of bob's tab (gateway 3) as an unread DM named "ada" before bob
//! joins anything; bob opens it and replies; both tabs show the whole
//! conversation in order, and a mention of ada in `general` gets its `@`
//! badge and its highlight. With tokens, one person in two tabs on two
//! gateways is one user: reading the DM in one clears its badge in the
//! other, and a tab opened later shows the same rooms and counts.
//!
//! Every wait polls the page up to [`DEADLINE`](crate::support::browser::DEADLINE);
//! no sleep is an assertion.

use serde_json::{Value, json};

use crate::support::Topology;
use crate::support::browser::{Driver, Tab};

const SECRET: &str = "people-browser-test-secret-0123456789";

/// The sidebar's rows as `[room, kind, status, unread, mentions, name]`, in order.
const ROWS: &str = "return [...document.querySelectorAll('#room-list .room-item')].map(li => \
     [li.dataset.room, li.dataset.kind, li.dataset.status, li.dataset.unread, li.dataset.mentions, \
      li.querySelector('.room-name').textContent])";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_opened_from_the_member_list_reaches_the_other_gateway_unread() {
    let topology = Topology::start(2, 3).await;
    let mut driver = Driver::start().await;
    let ada = Tab::open(&mut driver, "ada@gw1", topology.gateway_addr(0)).await;
    ada.join("ada", "general").await;
    let bob = Tab::open(&mut driver, "bob@gw3", topology.gateway_addr(2)).await;
    bob.join("bob", "general").await;
    ada.until_members(&["ada", "bob"]).await;

    // ada: "Message" beside bob (none beside herself) opens the DM on her screen.
    let own = ada.js("return document.querySelector('#members li.member.own .member-dm') === null").await;
    assert_eq!(own, json!(true), "no Message button beside one's own name");
    ada.click("#members li.member[data-username='bob'] .member-dm").await;
    let dm = dm_on_screen(&ada).await;
    let title = ada.js("return document.querySelector('#room-title').textContent").await;
    assert_eq!(title, json!("bob"), "a DM is called by the other person's name");
    ada.say("Hi bob, just you and me").await;
    ada.until_message("Hi bob, just you and me").await;

    // bob, who joined nothing more: the DM in his sidebar, named "ada", unread 1, in the title.
    until_row(&bob, &dm, "the DM from ada, unread 1, not joined", "r.unread === '1' && r.status === 'out'").await;
    assert_eq!(item_name(&bob, &dm).await, "ada", "bob's sidebar calls the DM by ada's name");
    bob.until(
        "the unread total in the title",
        "return {ok: document.title.startsWith('(1) '), seen: document.title}",
        vec![],
    )
    .await;
    assert_eq!(bob.messages().await, Vec::<String>::new(), "bob's tab shows general, where nothing was said");

    // bob opens it: the conversation, read; he replies.
    bob.click(&format!(".room-item[data-room='{dm}'] .room-open")).await;
    bob.until_message("Hi bob, just you and me").await;
    until_row(&bob, &dm, "the DM read once open", "r.unread === '0' && r.status === 'joined'").await;
    // The DM shows the other person's presence: ada is in it, and in general.
    until_row(&bob, &dm, "ada online", "r.online === 'true'").await;
    bob.say("Hi ada!").await;
    ada.until_message("Hi ada!").await;
    for tab in [&ada, &bob] {
        assert_eq!(
            tab.messages().await,
            ["Hi bob, just you and me", "Hi ada!"],
            "{}: the whole conversation, in order",
            tab.label
        );
    }

    // A mention of ada in general, while she reads the DM: an @ badge; opened, the message is marked.
    bob.click(".room-item[data-room='general'] .room-open").await;
    bob.until(
        "general on screen",
        "const l = document.querySelector('#messages .message-list'); return {ok: l?.dataset.room === 'general', seen: l?.dataset.room}",
        vec![],
    )
    .await;
    assert_eq!(bob.messages().await, Vec::<String>::new(), "nothing of the DM in general");
    bob.say("@ada can you look at the build?").await;
    until_row(&ada, "general", "a mention badge on general", "r.mentions !== '0' && r.unread === '1'").await;
    ada.click(".room-item[data-room='general'] .room-open").await;
    ada.until(
        "the message mentioning ada, marked",
        "const m = [...document.querySelectorAll('#messages .msg.mention .text')].map(e => e.textContent); \
         return {ok: m.includes('@ada can you look at the build?'), seen: m}",
        vec![],
    )
    .await;
    until_row(&ada, "general", "the mention read", "r.mentions === '0' && r.unread === '0'").await;

    ada.close().await;
    bob.close().await;
    driver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_reading_in_one_tab_clears_the_badge_in_the_others() {
    let topology = Topology::start_configured(1, 2, |_| {}, |gw| gw.jwt_secret = Some(SECRET.into())).await;
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() + 600;
    let token = |sub: &str, name: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({"sub": sub, "name": name, "exp": exp}),
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("token")
    };
    let (ada_token, bob_token) = (token("u-ada", "ada"), token("u-bob", "bob"));
    let mut driver = Driver::start().await;
    let ada = Tab::open_path(&mut driver, "ada@gw1", topology.gateway_addr(0), &format!("/?token={ada_token}")).await;
    let bob1 =
        Tab::open_path(&mut driver, "bob-1@gw1", topology.gateway_addr(0), &format!("/?token={bob_token}")).await;
    let bob2 =
        Tab::open_path(&mut driver, "bob-2@gw2", topology.gateway_addr(1), &format!("/?token={bob_token}")).await;
    ada.join("ada", "general").await;
    bob1.join("bob", "general").await;
    ada.until_members(&["ada", "bob"]).await;
    // bob's other tab learns of the room his first tab joined.
    until_row(&bob2, "general", "general, joined in bob's other tab", "r.status === 'out'").await;

    ada.click("#members li.member[data-username='bob'] .member-dm").await;
    let dm = dm_on_screen(&ada).await;
    ada.say("one").await;
    ada.say("two").await;
    ada.until_message("two").await;
    for tab in [&bob1, &bob2] {
        until_row(tab, &dm, "the DM, unread 2", "r.unread === '2'").await;
    }

    // Reading it in one tab clears the badge in the other, on the other gateway.
    bob1.click(&format!(".room-item[data-room='{dm}'] .room-open")).await;
    bob1.until_message("two").await;
    until_row(&bob2, &dm, "the badge cleared by the read in bob's first tab", "r.unread === '0'").await;

    // Something new in general while bob reads the DM: unread there.
    ada.click(".room-item[data-room='general'] .room-open").await;
    ada.say("anyone in general?").await;
    until_row(&bob1, "general", "general unread in the tab in it", "r.unread === '1'").await;

    // A tab opened later shows the same rooms and counts as the tab that saw it all.
    let bob3 =
        Tab::open_path(&mut driver, "bob-3@gw2", topology.gateway_addr(1), &format!("/?token={bob_token}")).await;
    let rows = bob3
        .until(
            "bob's rooms and counts in a new tab",
            &format!(
                "const rows = (() => {{ {ROWS} }})().map(r => [r[0], r[3], r[4]]).sort(); \
                 return {{ok: JSON.stringify(rows) === JSON.stringify(arguments[0]), seen: rows}}"
            ),
            vec![json!([[dm.as_str(), "0", "0"], ["general", "1", "0"]])],
        )
        .await;
    assert_eq!(item_name(&bob3, &dm).await, "ada", "the DM is called by ada's name in the new tab too: {rows}");
    let seen = bob1.js(ROWS).await;
    let counts = |rows: &Value| {
        let mut v: Vec<(String, String)> = rows
            .as_array()
            .expect("rows")
            .iter()
            .map(|r| (r[0].as_str().unwrap_or_default().to_owned(), r[3].as_str().unwrap_or_default().to_owned()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        counts(&seen),
        vec![(dm.clone(), "0".to_owned()), ("general".to_owned(), "1".to_owned())],
        "the tab that saw it all agrees"
    );

    for tab in [ada, bob1, bob2, bob3] {
        tab.close().await;
    }
    driver.stop().await;
}

/// The DM on `tab`'s screen, once joined: its room name.
async fn dm_on_screen(tab: &Tab) -> String {
    let v = tab
        .until(
            "a DM on screen, joined",
            "const li = document.querySelector('#room-list .room-item.active'); \
             return {ok: li?.dataset.kind === 'direct' && li.dataset.status === 'joined' && \
                         /^dm-[0-9a-f]{40}$/.test(li.dataset.room) && \
                         document.querySelector('#messages .message-list')?.dataset.room === li.dataset.room, \
                     seen: li ? [li.dataset.room, li.dataset.kind, li.dataset.status] : null, room: li?.dataset.room}",
            vec![],
        )
        .await;
    v["room"].as_str().expect("the DM's name").to_owned()
}

/// What `tab`'s sidebar calls `room`.
async fn item_name(tab: &Tab, room: &str) -> String {
    let v = tab
        .js_args(
            "return document.querySelector(`.room-item[data-room='${arguments[0]}'] .room-name`)?.textContent ?? null",
            vec![json!(room)],
        )
        .await;
    v.as_str().unwrap_or_default().to_owned()
}

/// Polls `tab`'s sidebar item for `room` until `cond` (JS over `r`, the
/// item's dataset) holds.
async fn until_row(tab: &Tab, room: &str, what: &str, cond: &str) {
    tab.until(
        what,
        &format!(
            "const li = document.querySelector(`.room-item[data-room='${{arguments[0]}}']`); \
             const r = li ? {{...li.dataset}} : null; \
             return {{ok: r !== null && ({cond}), seen: r}}"
        ),
        vec![json!(room)],
    )
    .await;
}
