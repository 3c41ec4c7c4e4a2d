// attachments.js (its pure part) and the helpers it draws with: which
// attachments show as images and at what size, what a file chip says, and
// where the signed URLs point.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { THUMB_SIDE, fitBox, isImage, resolveUrl, thumbOf, typeLabel } from "../js/attachments.js";
import { httpBase, uploadUrl } from "../js/endpoints.js";
import { humanSize } from "../js/format.js";

const image = {
  id: "at-0123456789abcdef0123456789abcdef",
  name: "cat.png",
  type: "image/png",
  size: 123_456,
  url: "/files/at-0123456789abcdef0123456789abcdef?exp=1&sig=x",
  width: 1600,
  height: 1200,
  thumb: { url: "/files/at-0123456789abcdef0123456789abcdef/thumb?exp=1&sig=y", width: 400, height: 300 },
};

describe("isImage / thumbOf", () => {
  it("an image with a size shows its thumb at the thumb's size (set before it loads)", () => {
    assert.equal(isImage(image), true);
    assert.deepEqual(thumbOf(image), { url: image.thumb.url, width: 400, height: 300 });
  });
  it("an image without a thumb shows the file itself, fitted into THUMB_SIDE", () => {
    const { thumb: _, ...bare } = image;
    assert.deepEqual(thumbOf(bare), { url: image.url, width: THUMB_SIDE, height: 300 });
  });
  it("anything without an image type or a size is a file chip", () => {
    assert.equal(isImage({ ...image, type: "application/pdf" }), false);
    assert.equal(isImage({ ...image, width: undefined }), false);
    assert.equal(isImage({ ...image, height: 0 }), false);
    assert.equal(isImage(null), false);
  });
});

describe("fitBox", () => {
  it("scales the longer side down to the box, never up, and keeps at least a pixel", () => {
    assert.deepEqual(fitBox(4000, 1000, 400), { width: 400, height: 100 });
    assert.deepEqual(fitBox(1000, 4000, 400), { width: 100, height: 400 });
    assert.deepEqual(fitBox(20, 10, 400), { width: 20, height: 10 });
    assert.deepEqual(fitBox(100_000, 1, 400), { width: 400, height: 1 });
  });
});

describe("typeLabel", () => {
  const cases = [
    ["application/pdf", "a.pdf", "PDF"],
    ["application/zip", "a.zip", "ZIP archive"],
    ["image/png", "a.png", "PNG image"],
    ["video/mp4", "a.mp4", "MP4 video"],
    ["application/octet-stream", "notes.md", "MD"],
    ["", "noext", "File"],
  ];
  for (const [type, name, label] of cases) it(`${type || "(none)"} ${name}: ${label}`, () => assert.equal(typeLabel(type, name), label));
});

describe("humanSize", () => {
  const cases = [
    [0, "0 bytes"],
    [1, "1 byte"],
    [1023, "1023 bytes"],
    [1024, "1 KB"],
    [1536, "1.5 KB"],
    [14 * 1024 + 300, "14 KB"],
    [1024 * 1024 - 1, "1 MB"],
    [2.4 * 1024 * 1024, "2.4 MB"],
    [25 * 1024 * 1024, "25 MB"],
  ];
  for (const [n, text] of cases) it(`${n}: ${text}`, () => assert.equal(humanSize(n), text));
});

describe("URLs", () => {
  it("a signed URL resolves against the gateway; other schemes are dropped", () => {
    assert.equal(resolveUrl(image.url, "http://127.0.0.1:8081/"), `http://127.0.0.1:8081${image.url}`);
    assert.equal(resolveUrl("javascript:alert(1)", "http://127.0.0.1:8081/"), null);
    assert.equal(resolveUrl("data:text/html,x", "http://127.0.0.1:8081/"), null);
  });
  it("the gateway's http address comes from its WebSocket URL", () => {
    assert.equal(httpBase("ws://127.0.0.1:8081/ws?session=abc"), "http://127.0.0.1:8081/");
    assert.equal(httpBase("wss://chat.example/ws"), "https://chat.example/");
  });
  it("an upload names its room, file name (encoded), session and token", () => {
    const url = new URL(uploadUrl("http://gw:1/", { room: "general", name: "my cat & me.png", session: "s1", token: null }));
    assert.equal(url.pathname, "/upload");
    assert.equal(url.searchParams.get("room"), "general");
    assert.equal(url.searchParams.get("name"), "my cat & me.png");
    assert.equal(url.searchParams.get("session"), "s1");
    assert.equal(url.searchParams.has("token"), false);
  });
});
