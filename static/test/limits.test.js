// limits.js: the gateway's limits over the page's own.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { FIRST_LIMITS, readLimits } from "../js/limits.js";

describe("readLimits", () => {
  it("takes every limit a welcome sends", () => {
    const sent = { max_text_bytes: 8192, max_username_chars: 16, max_rooms: 4, max_upload_bytes: 1 << 20 };
    assert.deepEqual(readLimits(FIRST_LIMITS, sent), sent);
  });
  it("keeps the held value of a limit left out or malformed", () => {
    const held = { max_text_bytes: 100, max_username_chars: 10, max_rooms: 3 };
    const sent = { max_text_bytes: "9000", max_username_chars: 0, max_rooms: 2.5, extra: 7 };
    assert.deepEqual(readLimits(held, sent), held);
    assert.deepEqual(readLimits(held, undefined), held);
  });
  it("does not change the limits it was given", () => {
    const held = { ...FIRST_LIMITS };
    readLimits(held, { max_rooms: 1 });
    assert.deepEqual(held, FIRST_LIMITS);
  });
});
