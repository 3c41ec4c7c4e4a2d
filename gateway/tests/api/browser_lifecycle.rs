//! A message's whole life in a real browser: headless Chromium
//! (support/browser.rs) on a real topology (redis-server, two
//! room-services, two gateways), ada's tab on one gateway and bob's on the
//! other, each acting as a person would: hovering a message for its
//! toolbar, the emoji picker, the inline editor, the confirmation dialog.
//!
//! ada joins `lifecycle` first, so she owns it and moderates it. She
//! replies to bob's message (bob sees the quote, and a click on it shows
//! the original), reacts to it (bob sees the chip's count, adds his, ada
//! takes hers away), edits her reply (bob sees the new text and
//! "(edited)"), deletes it after the confirmation (bob sees the
//! placeholder, and his reply's quote of it says "deleted message"), and
//! as a moderator deletes bob's message (bob sees it was a moderator).
//! bob, a member, is offered no delete on ada's messages. From the member
//! list, ada mutes bob (his composer is off and says why) and removes him
//! from the room (his tab says so and offers to join again).
//!
//! Every wait polls the page up to [`DEADLINE`](crate::support::browser::DEADLINE);
//! no sleep is an assertion.

use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::key::Key;
use serde_json::{Value, json};

use crate::support::Topology;
use crate::support::browser::{Driver, Tab};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_reactions_edits_and_deletes_reach_the_tab_on_the_other_gateway() {
    let topology = Topology::start(2, 2).await;
    let mut driver = Driver::start().await;
    let ada = Tab::open(&mut driver, "ada@gw1", topology.gateway_addr(0)).await;
    ada.join("ada", "lifecycle").await; // the first to join: the room's owner
    let bob = Tab::open(&mut driver, "bob@gw2", topology.gateway_addr(1)).await;
    bob.join("bob", "lifecycle").await;
    ada.until_members(&["ada", "bob"]).await;

    bob.say("Lunch on Thursday?").await;
    ada.until_message("Lunch on Thursday?").await;
    let question = id_of(&ada, "Lunch on Thursday?").await;

    // Reply: the bar above the composer quotes bob; the reply carries the quote to bob's tab.
    act(&ada, &question, "reply").await;
    let bar = ada
        .js("return {hidden: document.querySelector('#reply-bar').hidden, \
                     name: document.querySelector('#reply-name').textContent, \
                     quote: document.querySelector('#reply-quote').textContent}")
        .await;
    assert_eq!(bar, json!({"hidden": false, "name": "bob", "quote": "Lunch on Thursday?"}), "ada's reply bar");
    ada.say("Yes, Thursday works").await;
    bob.until_message("Yes, Thursday works").await;
    let answer = id_of(&bob, "Yes, Thursday works").await;
    assert_eq!(
        quote(&bob, &answer).await,
        json!({"author": "bob", "text": "Lunch on Thursday?", "deleted": false}),
        "bob sees what ada answered"
    );
    let gone = ada.js("return document.querySelector('#reply-bar').hidden").await;
    assert_eq!(gone, json!(true), "the reply bar goes with the send");

    // The quote shows the original: scrolled to and marked.
    bob.click(&format!(".msg[data-id='{answer}'] .quote")).await;
    bob.until(
        "the quoted message shown",
        "const m = document.querySelector(`.msg[data-id='${arguments[0]}']`); \
         return {ok: m?.classList.contains('found') === true, seen: m?.className}",
        vec![json!(question)],
    )
    .await;

    // React: ada picks 👍; bob sees 1, adds his (2, pressed for him); ada takes hers away (1).
    act(&ada, &question, "react").await;
    ada.click("#emoji-picker .pick[data-emoji='👍']").await;
    until_chip(&bob, &question, "👍", Some((1, false))).await;
    until_chip(&ada, &question, "👍", Some((1, true))).await;
    bob.click(&format!(".msg[data-id='{question}'] .reaction[data-emoji='👍']")).await;
    until_chip(&ada, &question, "👍", Some((2, true))).await;
    until_chip(&bob, &question, "👍", Some((2, true))).await;
    ada.click(&format!(".msg[data-id='{question}'] .reaction[data-emoji='👍']")).await;
    until_chip(&bob, &question, "👍", Some((1, true))).await;
    until_chip(&ada, &question, "👍", Some((1, false))).await;

    // Edit: ArrowUp in the empty box opens ada's last message; Escape leaves it as it was.
    ada.type_keys(&Key::Up).await;
    let editing = ada.js_args(EDITOR_OPEN, vec![json!(answer)]).await;
    assert_eq!(editing, json!(true), "ArrowUp edits ada's last message");
    ada.find(&format!(".msg[data-id='{answer}'] .edit-box")).await.send_keys(&Key::Escape).await.expect("Escape");
    let editing = ada.js_args(EDITOR_OPEN, vec![json!(answer)]).await;
    assert_eq!(editing, json!(false), "Escape closes the editor");
    // The toolbar's Edit: a new text, Enter saves; bob sees it, marked edited.
    act(&ada, &answer, "edit").await;
    let editor = ada.find(&format!(".msg[data-id='{answer}'] .edit-box")).await;
    editor.clear().await.expect("clear the editor");
    editor.send_keys("Yes, Thursday at noon").await.expect("type the edit");
    editor.send_keys(&Key::Enter).await.expect("save the edit");
    bob.until_message("Yes, Thursday at noon").await;
    let edited = bob
        .js_args(
            "return document.querySelector(`.msg[data-id='${arguments[0]}'] .edited`)?.textContent ?? null",
            vec![json!(answer)],
        )
        .await;
    assert_eq!(edited, json!("(edited)"), "bob sees the message was edited");
    assert_eq!(quote(&bob, &answer).await["text"], json!("Lunch on Thursday?"), "the edit keeps what it replies to");

    // bob replies to ada's answer, so a quote of it is on screen when it goes.
    act(&bob, &answer, "reply").await;
    bob.say("See you there").await;
    ada.until_message("See you there").await;
    let see_you = id_of(&bob, "See you there").await;

    // bob is a member: no delete on ada's message in his tab.
    hover(&bob, &answer).await;
    let offered = bob
        .js_args(
            "const b = document.querySelector(`.msg[data-id='${arguments[0]}'] .act-delete`); \
             return b !== null && getComputedStyle(b).display !== 'none'",
            vec![json!(answer)],
        )
        .await;
    assert_eq!(offered, json!(false), "a member is offered no delete on another's message");

    // Delete: the confirmation first; bob sees the placeholder and his quote of it says so.
    act(&ada, &answer, "delete").await;
    let asked = ada.js("return document.querySelector('#confirm-dialog').open").await;
    assert_eq!(asked, json!(true), "a delete asks first");
    ada.click("#confirm-ok").await;
    until_deleted(&bob, &answer, "message deleted").await;
    bob.until(
        "the quote of the deleted message",
        "const q = document.querySelector(`.msg[data-id='${arguments[0]}'] .quote`); \
         return {ok: q?.classList.contains('deleted') && q.querySelector('.quote-text').textContent === 'deleted message', \
                 seen: q?.textContent}",
        vec![json!(see_you)],
    )
    .await;
    until_deleted(&ada, &answer, "message deleted").await;

    // A moderator's delete of bob's message: bob sees who took it away.
    act(&ada, &question, "delete").await;
    ada.click("#confirm-ok").await;
    until_deleted(&bob, &question, "message deleted by a moderator (ada)").await;
    let chips = bob
        .js_args(
            "return document.querySelectorAll(`.msg[data-id='${arguments[0]}'] .reaction`).length",
            vec![json!(question)],
        )
        .await;
    assert_eq!(chips, json!(0), "a deleted message keeps no reactions");

    ada.close().await;
    bob.close().await;
    driver.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moderator_mutes_and_removes_a_member_from_the_member_list() {
    let topology = Topology::start(2, 2).await;
    let mut driver = Driver::start().await;
    let ada = Tab::open(&mut driver, "ada@gw1", topology.gateway_addr(0)).await;
    ada.join("ada", "moderated").await; // the first to join: the room's owner
    let bob = Tab::open(&mut driver, "bob@gw2", topology.gateway_addr(1)).await;
    bob.join("bob", "moderated").await;
    ada.until_members(&["ada", "bob"]).await;
    let menus = bob.js("return document.querySelectorAll('#members .member-mod').length").await;
    assert_eq!(menus, json!(0), "a member gets no moderator's menu");

    // Mute for 10 minutes, from the member list, after the confirmation.
    moderate(&ada, "bob", "mute-600").await;
    bob.until(
        "the composer off while muted",
        "const s = document.querySelector('#compose-state'); \
         return {ok: !s.hidden && s.dataset.kind === 'muted' && document.querySelector('#composer').disabled, \
                 seen: [s.hidden, s.dataset.kind, s.textContent]}",
        vec![],
    )
    .await;
    until_moderation(&bob, "ada muted you for 10 minutes").await;
    until_moderation(&ada, "You muted bob for 10 minutes").await;

    // Remove: bob's tab says so and offers to join again; ada's list loses him.
    moderate(&ada, "bob", "kick").await;
    bob.until(
        "the room left by a moderator's doing",
        "const s = document.querySelector('#compose-state'); \
         return {ok: !s.hidden && s.dataset.kind === 'kicked' && s.querySelector('.compose-rejoin') !== null, \
                 seen: [s.hidden, s.dataset.kind, s.textContent]}",
        vec![],
    )
    .await;
    ada.until_members(&["ada"]).await;
    bob.click("#compose-state .compose-rejoin").await;
    ada.until_members(&["ada", "bob"]).await;

    ada.close().await;
    bob.close().await;
    driver.stop().await;
}

/// `tab` (a moderator) picks `choice` in the member menu beside `name`, and agrees.
async fn moderate(tab: &Tab, name: &str, choice: &str) {
    tab.click(&format!("#members li.member[data-username='{name}'] .member-mod-open")).await;
    tab.click(&format!("#members li.member[data-username='{name}'] .member-mod-choice[data-mod='{choice}']")).await;
    tab.click("#confirm-ok").await;
}

/// Polls until a moderation notice reads `text`.
async fn until_moderation(tab: &Tab, text: &str) {
    tab.until(
        &format!("moderation notice `{text}`"),
        "const t = [...document.querySelectorAll('#messages .notice.moderation .notice-text')].map(e => e.textContent); \
         return {ok: t.includes(arguments[0]), seen: t}",
        vec![json!(text)],
    )
    .await;
}

/// Whether the inline editor is open in message `arguments[0]`.
const EDITOR_OPEN: &str = "return document.querySelector(`.msg[data-id='${arguments[0]}'] .edit-box`) !== null";

/// The id of the stored message on `tab`'s screen whose text is `text`.
async fn id_of(tab: &Tab, text: &str) -> String {
    let v = tab
        .js_args(
            "const m = [...document.querySelectorAll('#messages .msg[data-id]')] \
               .find(m => m.querySelector('.text')?.textContent === arguments[0]); \
             return m ? m.dataset.id : null",
            vec![json!(text)],
        )
        .await;
    v.as_str().unwrap_or_else(|| panic!("{}: no message `{text}` on screen", tab.label)).to_owned()
}

/// The pointer over message `id`, so its toolbar shows, as a person's mouse would.
async fn hover(tab: &Tab, id: &str) {
    let body = tab.find(&format!(".msg[data-id='{id}'] .body")).await;
    let over = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: body,
        duration: None,
        x: 0.0,
        y: 0.0,
    });
    tab.client.perform_actions(over).await.unwrap_or_else(|e| panic!("{}: hover {id}: {e}", tab.label));
}

/// Hovers message `id` and clicks `action` (reply, react, edit, delete) in its toolbar.
async fn act(tab: &Tab, id: &str, action: &str) {
    hover(tab, id).await;
    tab.click(&format!(".msg[data-id='{id}'] .msg-actions [data-action='{action}']")).await;
}

/// The quote in message `id`: its author, text and whether it is of a deleted message.
async fn quote(tab: &Tab, id: &str) -> Value {
    tab.js_args(
        "const q = document.querySelector(`.msg[data-id='${arguments[0]}'] .quote`); \
         return q ? {author: q.querySelector('.quote-author').textContent, \
                     text: q.querySelector('.quote-text').textContent, deleted: q.classList.contains('deleted')} : null",
        vec![json!(id)],
    )
    .await
}

/// Polls until message `id` shows `emoji`'s chip with (count, pressed), or none for `None`.
async fn until_chip(tab: &Tab, id: &str, emoji: &str, want: Option<(u64, bool)>) {
    let want = want.map(|(count, mine)| json!([count.to_string(), mine.to_string()]));
    tab.until(
        &format!("{emoji} chip {want:?} on {id}"),
        "const c = document.querySelector(`.msg[data-id='${arguments[0]}'] .reaction[data-emoji='${arguments[1]}']`); \
         const seen = c ? [c.querySelector('.count').textContent, c.getAttribute('aria-pressed')] : null; \
         return {ok: JSON.stringify(seen) === JSON.stringify(arguments[2]), seen}",
        vec![json!(id), json!(emoji), want.unwrap_or(Value::Null)],
    )
    .await;
}

/// Polls until message `id` is a deleted placeholder reading `text`.
async fn until_deleted(tab: &Tab, id: &str, text: &str) {
    tab.until(
        &format!("message {id} deleted: `{text}`"),
        "const m = document.querySelector(`.msg[data-id='${arguments[0]}']`); \
         const t = m?.querySelector('.deleted-text')?.textContent; \
         return {ok: m?.classList.contains('deleted') && t === arguments[1], seen: m ? [m.className, t] : null}",
        vec![json!(id), json!(text)],
    )
    .await;
}
