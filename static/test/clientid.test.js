// clientid.js: this tab's client ids.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { clientIds } from "../js/clientid.js";

describe("clientIds", () => {
  it("makes ids that differ, all with the tab's prefix", () => {
    const ids = clientIds("a1b2c3", () => 1_700_000_000_000);
    const made = [ids.next(), ids.next(), ids.next()];
    assert.equal(new Set(made).size, 3);
    for (const cid of made) {
      assert.match(cid, /^a1b2c3-[0-9a-z]+-[0-9a-z]+$/);
      assert.ok(ids.isOwn(cid));
    }
  });
  it("tells another tab's id, or none, from its own", () => {
    const ids = clientIds("a1b2c3");
    assert.equal(ids.isOwn("ffffff-x-0"), false);
    assert.equal(ids.isOwn(""), false);
    assert.equal(ids.isOwn(undefined), false);
  });
});
