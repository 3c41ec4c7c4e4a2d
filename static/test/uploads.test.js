// uploads.js: the files on their way into a message, with a stand-in
// transfer that the test drives (progress, answers, failures, aborts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { MAX_ATTACHMENTS, MAX_PARALLEL, Uploads, fileName, fraction, uploadError } from "../js/uploads.js";

const MiB = 1024 * 1024;
const file = (name, size = 1000, type = "image/png") => ({ name, size, type });
const att = (n) => ({ id: `at-${String(n).padStart(32, "0")}`, name: `f${n}`, type: "image/png", size: 1000, url: `/files/${n}` });

/** Uploads over a transfer that records each start; `t.started[i]` drives transfer i. */
function uploads({ maxBytes = 25 * MiB, canStart = () => true } = {}) {
  const started = [];
  let changes = 0;
  const u = new Uploads({
    transfer: (entry, on) => {
      const t = { entry, on, aborted: false };
      started.push(t);
      return () => {
        t.aborted = true;
      };
    },
    maxBytes: () => maxBytes,
    canStart,
    onChange: () => (changes += 1),
  });
  return { u, started, changes: () => changes };
}

const states = (u, room = "general") => u.of(room).map((e) => `${e.name}:${e.state}`);

describe("Uploads", () => {
  it("starts at most MAX_PARALLEL at once and the next as each one ends, oldest first", () => {
    const { u, started } = uploads();
    u.add("general", [file("a"), file("b"), file("c"), file("d"), file("e")]);
    assert.equal(started.length, MAX_PARALLEL);
    assert.deepEqual(states(u), ["a:uploading", "b:uploading", "c:uploading", "d:queued", "e:queued"]);
    started[1].on.done(att(2));
    assert.equal(started.length, MAX_PARALLEL + 1, "one ended, one more started");
    assert.equal(started.at(-1).entry.name, "d");
    started[0].on.fail(0, null, null);
    assert.equal(started.at(-1).entry.name, "e");
  });

  it("tracks progress as a fraction of the file, capped at the whole", () => {
    const { u, started } = uploads();
    u.add("general", [file("a", 2000)]);
    started[0].on.progress(500, 2000);
    assert.equal(fraction(u.of("general")[0]), 0.25);
    started[0].on.progress(5000, 2000);
    assert.equal(fraction(u.of("general")[0]), 1);
    started[0].on.done(att(1));
    assert.equal(fraction(u.of("general")[0]), 1);
  });

  it("refuses the 11th file of a message, saying so, and keeps the first ten", () => {
    const { u } = uploads();
    const eleven = Array.from({ length: MAX_ATTACHMENTS + 1 }, (_, i) => file(`f${i}`));
    const note = u.add("general", eleven);
    assert.equal(u.of("general").length, MAX_ATTACHMENTS);
    assert.match(note, /At most 10 files go with one message/);
    assert.match(u.add("general", [file("more")]), /At most 10/, "still full");
    assert.equal(u.add("other", [file("x")]), "", "another room's composer has its own ten");
  });

  it("refuses a file over the gateway's limit before sending a byte, and an empty one", () => {
    const { u, started } = uploads({ maxBytes: 2 * MiB });
    u.add("general", [file("big.png", 3 * MiB), file("empty.txt", 0, "text/plain")]);
    assert.equal(started.length, 0);
    const [big, empty] = u.of("general");
    assert.equal(big.state, "failed");
    assert.equal(big.error.text, "big.png is 3 MB; files can be at most 2 MB.");
    assert.equal(big.error.retry, false);
    assert.equal(empty.error.text, "empty.txt is empty.");
  });

  it("waits for its room: nothing starts until canStart says so, then pump starts it", () => {
    let joined = false;
    const { u, started } = uploads({ canStart: () => joined });
    u.add("general", [file("a")]);
    assert.equal(started.length, 0);
    assert.deepEqual(states(u), ["a:queued"]);
    joined = true;
    u.pump();
    assert.deepEqual(states(u), ["a:uploading"]);
  });

  it("cancel aborts the transfer and forgets it; a late answer of it changes nothing", () => {
    const { u, started } = uploads();
    u.add("general", [file("a")]);
    const key = u.of("general")[0].key;
    u.remove(key);
    assert.equal(started[0].aborted, true);
    assert.deepEqual(states(u), []);
    started[0].on.done(att(1));
    started[0].on.progress(10, 1000);
    assert.deepEqual(states(u), [], "an answer that crossed the cancel brings nothing back");
  });

  it("a failure says why; retry (when it may help) sends it again, and only the new transfer counts", () => {
    const { u, started } = uploads();
    u.add("general", [file("a")]);
    started[0].on.fail(503, { code: "storage_unavailable", message: "S3 said no" }, 30);
    const [e] = u.of("general");
    assert.equal(e.state, "failed");
    assert.equal(e.error.text, "File storage is unavailable right now. Try again in 30 s.");
    assert.equal(e.error.detail, "S3 said no");
    u.retry(e.key);
    assert.equal(started.length, 2);
    started[0].on.done(att(9)); // the old transfer: ignored
    assert.equal(u.of("general")[0].state, "uploading");
    started[1].on.done(att(1));
    assert.deepEqual(u.ready("general"), [att(1)]);
  });

  it("a failure retrying cannot fix is not retried", () => {
    const { u, started } = uploads();
    u.add("general", [file("a")]);
    started[0].on.fail(415, { code: "not_an_image", message: "says image/png but its bytes are HTML" }, null);
    const [e] = u.of("general");
    u.retry(e.key);
    assert.equal(started.length, 1);
    assert.equal(e.state, "failed");
  });

  it("take hands over the done ones of a room, in order, and leaves the rest", () => {
    const { u, started } = uploads();
    u.add("general", [file("a"), file("b"), file("c")]);
    u.add("dev", [file("d")]);
    started[2].on.done(att(3));
    started[0].on.done(att(1));
    started[3].on.done(att(4));
    assert.equal(u.busy("general"), 1);
    assert.deepEqual(u.take("general"), [att(1), att(3)]);
    assert.deepEqual(states(u), ["b:uploading"]);
    assert.deepEqual(u.take("general"), []);
    assert.deepEqual(u.ready("dev"), [att(4)]);
  });

  it("forget (the room was left) aborts its transfers and starts the next room's", () => {
    const { u, started } = uploads();
    u.add("general", [file("a"), file("b"), file("c")]);
    u.add("dev", [file("d")]);
    u.forget("general");
    assert.ok(started.slice(0, 3).every((t) => t.aborted));
    assert.deepEqual(states(u, "dev"), ["d:uploading"]);
  });

  it("tells its view of each change", () => {
    const { u, started, changes } = uploads();
    u.add("general", [file("a")]);
    const before = changes();
    started[0].on.progress(1, 1000);
    started[0].on.done(att(1));
    assert.equal(changes(), before + 2);
  });
});

describe("uploadError", () => {
  const entry = { name: "cat.png", room: "general" };
  const cases = [
    [413, { code: "too_big" }, /cat.png is too big: files can be at most 25 MB/, false],
    [415, { code: "not_an_image" }, /says it is an image, but its contents are not one/, false],
    [422, { code: "bad_image" }, /too large in pixels or damaged/, false],
    [403, { code: "forbidden" }, /You are not in #general: join it/, true],
    [401, { code: "unauthorized" }, /sign-in/, true],
    [429, { code: "rate_limited" }, /Too many uploads in a short time\. Try again in 7 s\./, true],
    [503, { code: "busy" }, /busy with other uploads/, true],
    [503, { code: "storage_unavailable" }, /File storage is unavailable/, true],
    [503, { code: "unavailable" }, /can't be reached/, true],
    [400, { code: "bad_request", message: "the file name \"../x\" is a path" }, /refused: the file name/, false],
    [0, null, /the connection to the server failed/, true],
    [502, null, /the server had a problem \(502\)/, true],
    [413, null, /too big/, false], // a proxy's 413, with no JSON
    [413, { code: "too_big", message: "the file is over 1048576 bytes, this chat's limit" }, /at most 1 MB\./, false],
  ];
  for (const [status, body, text, retry] of cases) {
    it(`${status} ${body?.code ?? "(no body)"}`, () => {
      const e = uploadError(entry, status, body, status === 429 ? 7 : null, 25 * MiB);
      assert.match(e.text, text);
      assert.equal(e.retry, retry);
    });
  }
});

describe("fileName", () => {
  it("keeps a real name", () => assert.equal(fileName(file("report.pdf", 1, "application/pdf")), "report.pdf"));
  it("names a pasted screenshot by its time, not 'image.png'", () => {
    assert.match(fileName(file("image.png")), /^Pasted image \d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d\.png$/);
    assert.match(fileName(file("", 1, "image/jpeg")), /^Pasted image .*\.jpg$/);
    assert.equal(fileName(file("", 1, "")), "file.bin");
  });
});
