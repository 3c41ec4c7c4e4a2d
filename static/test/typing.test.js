// typing.js: who is typing, when the typing line next changes by itself,
// and when this tab says it is typing.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { TYPING_EVERY_MS, TYPING_SHOW_MS, TypingPacer, Typists } from "../js/typing.js";

describe("Typists", () => {
  it("shows a name for TYPING_SHOW_MS after its last typing frame", () => {
    const t = new Typists();
    t.saw("b", "bob", 1_000);
    assert.deepEqual(t.names(1_000 + TYPING_SHOW_MS - 1), ["bob"]);
    assert.deepEqual(t.names(1_000 + TYPING_SHOW_MS), []);
    assert.equal(t.nextExpiry(), null, "an expired name is dropped, so nothing is left to expire");
  });

  it("a newer frame keeps the name longer", () => {
    const t = new Typists();
    t.saw("b", "bob", 0);
    t.saw("b", "bob", 3_000);
    assert.deepEqual(t.names(TYPING_SHOW_MS + 1), ["bob"]);
    assert.equal(t.nextExpiry(), 3_000 + TYPING_SHOW_MS);
  });

  it("nextExpiry is the first name to run out", () => {
    const t = new Typists();
    assert.equal(t.nextExpiry(), null);
    t.saw("b", "bob", 2_000);
    t.saw("c", "cy", 1_000);
    assert.equal(t.nextExpiry(), 1_000 + TYPING_SHOW_MS);
    assert.deepEqual(t.names(1_000 + TYPING_SHOW_MS), ["bob"]);
    assert.equal(t.nextExpiry(), 2_000 + TYPING_SHOW_MS);
  });

  it("drops a name at once when they stop (message or leave), and all on clear", () => {
    const t = new Typists();
    t.saw("b", "bob", 0);
    t.saw("c", "cy", 0);
    t.delete("b");
    assert.deepEqual(t.names(1), ["cy"]);
    t.clear();
    assert.deepEqual(t.names(1), []);
    assert.equal(t.nextExpiry(), null);
  });
});

/** The gateway's TYPING_EVERY (gateway/src/session/mod.rs): closer notices are dropped. */
const GATEWAY_EVERY_MS = 2_000;

/** A pacer on a clock the test moves, with the notices it sent. */
function pacedClock() {
  let now = 0;
  let timers = [];
  const sent = [];
  const pacer = new TypingPacer({
    now: () => now,
    setTimer: (fn, ms) => {
      const t = { at: now + ms, fn };
      timers.push(t);
      return t;
    },
    clearTimer: (t) => {
      timers = timers.filter((x) => x !== t);
    },
  });
  return {
    pacer,
    sent,
    /** `notify` for room `room`, sending unless `atIt` says the person stopped. */
    notify: (room, atIt = () => true) => () => atIt() && sent.push({ room, at: now }) > 0,
    /** Moves the clock to `t`, running the timers due on the way. */
    to(t) {
      for (;;) {
        const due = timers.filter((x) => x.at <= t).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        timers = timers.filter((x) => x !== due);
        now = due.at;
        due.fn();
      }
      now = t;
    },
    pending: () => timers.length,
  };
}

describe("TypingPacer", () => {
  it("waits at least the gateway's 2 s between notices", () => {
    assert.ok(TYPING_EVERY_MS >= GATEWAY_EVERY_MS);
  });

  it("sends the first notice at once, then at most one per TYPING_EVERY_MS while typing goes on", () => {
    const c = pacedClock();
    for (let t = 0; t <= 6_000; t += 100) {
      c.to(t);
      c.pacer.typed("general", c.notify("general"));
    }
    const at = c.sent.map((s) => s.at);
    assert.equal(at[0], 0);
    for (let i = 1; i < at.length; i += 1) assert.ok(at[i] - at[i - 1] >= TYPING_EVERY_MS, `notices at ${at}`);
    assert.ok(at.length >= 3, `typing for 6 s keeps the line up: notices at ${at}`);
  });

  it("issue 12: a send starts the wait over, so the first keystroke after it is told at once", () => {
    const c = pacedClock();
    c.pacer.typed("general", c.notify("general")); // typing the first message: a notice at 0
    c.to(500);
    c.pacer.sent("general"); // Enter: the message goes, and the gateway starts its 2 s over
    c.to(700); // the next message, at once
    c.pacer.typed("general", c.notify("general"));
    assert.deepEqual(c.sent.map((s) => s.at), [0, 700], "not held back for the rest of the wait");
    // From there, the usual pace: notices TYPING_EVERY_MS apart.
    for (let t = 800; t <= 4_000; t += 100) {
      c.to(t);
      c.pacer.typed("general", c.notify("general"));
    }
    assert.deepEqual(c.sent.map((s) => s.at), [0, 700, 700 + TYPING_EVERY_MS]);
  });

  it("without a send, a keystroke during the wait is told once, when the wait is over", () => {
    const c = pacedClock();
    c.pacer.typed("general", c.notify("general"));
    c.to(700);
    c.pacer.typed("general", c.notify("general"));
    c.to(900);
    c.pacer.typed("general", c.notify("general"));
    assert.deepEqual(c.sent.map((s) => s.at), [0], "too soon for the gateway: held back");
    c.to(10_000);
    assert.deepEqual(c.sent.map((s) => s.at), [0, TYPING_EVERY_MS], "one notice when the wait is over");
    assert.ok(c.sent[1].at - c.sent[0].at >= GATEWAY_EVERY_MS);
  });

  it("a send drops a notice held back for the wait; a send in a room never typed in is nothing", () => {
    const c = pacedClock();
    c.pacer.sent("general");
    c.pacer.typed("general", c.notify("general"));
    c.to(100);
    c.pacer.typed("general", c.notify("general"));
    assert.equal(c.pending(), 1);
    c.pacer.sent("general");
    assert.equal(c.pending(), 0);
    c.to(10_000);
    assert.deepEqual(c.sent.map((s) => s.at), [0]);
  });

  it("sends no held-back notice once the person stopped (sent, emptied the box, switched room)", () => {
    const c = pacedClock();
    let atIt = true;
    c.pacer.typed("general", c.notify("general", () => atIt));
    c.to(300);
    c.pacer.typed("general", c.notify("general", () => atIt));
    atIt = false;
    c.to(10_000);
    assert.equal(c.sent.length, 1);
    // A notice that did not go does not count: the next keystroke sends at once.
    atIt = true;
    c.pacer.typed("general", c.notify("general", () => atIt));
    assert.deepEqual(c.sent.map((s) => s.at), [0, 10_000]);
  });

  it("a notice that could not go (offline) does not start a wait", () => {
    const c = pacedClock();
    c.pacer.typed("general", () => false);
    c.to(100);
    c.pacer.typed("general", c.notify("general"));
    assert.deepEqual(c.sent.map((s) => s.at), [100]);
  });

  it("paces each room on its own", () => {
    const c = pacedClock();
    c.pacer.typed("general", c.notify("general"));
    c.to(100);
    c.pacer.typed("dev", c.notify("dev"));
    assert.deepEqual(c.sent.map((s) => s.room), ["general", "dev"]);
  });

  it("forget drops a left room's held-back notice", () => {
    const c = pacedClock();
    c.pacer.typed("general", c.notify("general"));
    c.to(100);
    c.pacer.typed("general", c.notify("general"));
    assert.equal(c.pending(), 1);
    c.pacer.forget("general");
    assert.equal(c.pending(), 0);
    c.to(10_000);
    assert.equal(c.sent.length, 1);
  });
});
