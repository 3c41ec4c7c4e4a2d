// typing.js: who is typing, and when the typing line next changes by itself.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { TYPING_SHOW_MS, Typists } from "../js/typing.js";

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
