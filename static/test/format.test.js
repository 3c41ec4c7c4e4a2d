// format.js: pure wording and checks, as the page shows them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { byteLength, checkName, checkRoom, dayKey, dayLabel, describeError, hueFor, initial, mentionsName, typingText } from "../js/format.js";

describe("byteLength", () => {
  it("counts UTF-8 bytes, as the gateway's max_text_bytes does", () => {
    assert.equal(byteLength(""), 0);
    assert.equal(byteLength("abc"), 3);
    assert.equal(byteLength("é"), 2);
    assert.equal(byteLength("€"), 3);
    assert.equal(byteLength("😀"), 4);
  });
});

describe("checkName", () => {
  it("trims and accepts a plain name", () => {
    assert.deepEqual(checkName("  ada "), { name: "ada" });
  });
  it("refuses an empty name", () => {
    assert.ok(checkName("   ").error);
  });
  it("refuses a name longer than the limit it is given, in characters", () => {
    assert.deepEqual(checkName("😀".repeat(5), 5), { name: "😀".repeat(5) });
    assert.equal(checkName("abcdef", 5).error, "Names are at most 5 characters.");
    assert.ok(checkName("x".repeat(33)).error, "32 before the gateway says otherwise");
  });
  it("refuses control characters", () => {
    assert.ok(checkName("a\u0007b").error);
    assert.ok(checkName("a\u0085b").error);
  });
});

describe("checkRoom", () => {
  it("drops a leading # and surrounding space", () => {
    assert.deepEqual(checkRoom(" #general "), { room: "general" });
  });
  for (const bad of ["", "two words", "x".repeat(65), "café"]) {
    it(`refuses ${JSON.stringify(bad)}`, () => assert.ok(checkRoom(bad).error));
  }
  it("accepts 64 characters of letters, digits, '.', '_' and '-'", () => {
    const name = `a.b_c-1${"x".repeat(57)}`;
    assert.deepEqual(checkRoom(name), { room: name });
  });
});

describe("typingText", () => {
  const cases = [
    [[], ""],
    [["bob"], "bob is typing…"],
    [["bob", "cy"], "bob and cy are typing…"],
    [["bob", "cy", "dee"], "bob, cy and 1 other are typing…"],
    [["bob", "cy", "dee", "eve"], "bob, cy and 2 others are typing…"],
  ];
  for (const [names, text] of cases) {
    it(`${names.length} typing: ${JSON.stringify(text)}`, () => assert.equal(typingText(names), text));
  }
});

describe("day helpers", () => {
  it("dayKey is the same within a local day and differs across days", () => {
    const noon = new Date(2025, 10, 21, 12, 0).getTime();
    assert.equal(dayKey(noon), dayKey(new Date(2025, 10, 21, 23, 59).getTime()));
    assert.notEqual(dayKey(noon), dayKey(new Date(2025, 10, 22, 0, 1).getTime()));
  });
  it("dayLabel says Today and Yesterday", () => {
    assert.equal(dayLabel(Date.now()), "Today");
    assert.equal(dayLabel(Date.now() - 86_400_000), "Yesterday");
  });
});

describe("hueFor and initial", () => {
  it("gives a name the same hue every time, within 0..359", () => {
    assert.equal(hueFor("ada"), hueFor("ada"));
    for (const n of ["", "ada", "😀", "x".repeat(100)]) {
      const h = hueFor(n);
      assert.ok(Number.isInteger(h) && h >= 0 && h < 360, `${n}: ${h}`);
    }
  });
  it("initial is the first character, upper-cased, or ?", () => {
    assert.equal(initial(" ada"), "A");
    assert.equal(initial("😀x"), "😀");
    assert.equal(initial("  "), "?");
  });
});

describe("describeError", () => {
  const limits = { max_text_bytes: 1000, max_username_chars: 20, max_rooms: 5 };
  it("words each code a person can act on, with the room's name", () => {
    const { text, detail } = describeError({ code: "not_joined", room: "dev", message: "not in dev" }, limits);
    assert.equal(text, "You are not in #dev any more; rejoining it.");
    assert.equal(detail, "not in dev");
  });
  it("uses the limits it is given", () => {
    assert.match(describeError({ code: "text_too_long" }, limits).text, /1,000 bytes/);
    assert.match(describeError({ code: "bad_username" }, limits).text, /1–20 characters/);
    assert.match(describeError({ code: "too_many_rooms" }, limits).text, /\(5\)/);
  });
  it("says busy, not unreachable, when the service named a retry time", () => {
    assert.match(describeError({ code: "unavailable", retry_after_ms: 500 }, limits).text, /busy/);
    assert.match(describeError({ code: "unavailable" }, limits).text, /can't be reached/);
  });
  it("falls back to the gateway's own words, then to the code", () => {
    assert.equal(describeError({ code: "new_code", message: "what happened" }, limits).text, "what happened");
    assert.equal(describeError({ code: "new_code" }, limits).text, "Error: new_code");
  });
});

describe("mentionsName", () => {
  it("finds @name in any case, followed by the end, a space or punctuation", () => {
    for (const text of ["@ada", "hi @ada", "@Ada, look", "(@ADA)", "thanks @ada!", "@adam and @ada"]) {
      assert.equal(mentionsName(text, "ada"), true, text);
    }
  });
  it("is not fooled by a longer name, a missing @ or an empty name", () => {
    for (const text of ["@adam", "ada", "@ad a", "mail@adams", "", null]) {
      assert.equal(mentionsName(text, "ada"), false, String(text));
    }
    assert.equal(mentionsName("@ada", ""), false);
  });
  it("takes names with spaces and letters beyond ASCII", () => {
    assert.equal(mentionsName("ping @Zoë Li.", "zoë li"), true);
    assert.equal(mentionsName("ping @zoëy", "zoë"), false);
  });
});
