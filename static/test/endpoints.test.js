// endpoints.js: where the page connects, from its own address.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { gatewayUrls, pageToken, withParams } from "../js/endpoints.js";

const at = (href) => new URL(href);

describe("gatewayUrls", () => {
  it("is the serving gateway's /ws without ?ws=", () => {
    assert.deepEqual(gatewayUrls(at("http://127.0.0.1:3000/")), ["ws://127.0.0.1:3000/ws"]);
    assert.deepEqual(gatewayUrls(at("https://chat.example/")), ["wss://chat.example/ws"]);
  });
  it("lists ?ws= entries in order, relative ones against the page, bad ones left out", () => {
    const urls = gatewayUrls(at("http://h:3000/?ws=ws://a:1/ws,,http://b:2/ws,/ws,ftp://c/"));
    assert.deepEqual(urls, ["ws://a:1/ws", "ws://b:2/ws", "ws://h:3000/ws"]);
  });
});

describe("withParams", () => {
  it("sets the values given and leaves out empty ones", () => {
    assert.equal(withParams("ws://h/ws", { token: "t", session: null }), "ws://h/ws?token=t");
  });
});

describe("pageToken", () => {
  it("is ?token= or null", () => {
    assert.equal(pageToken(at("http://h/?token=abc")), "abc");
    assert.equal(pageToken(at("http://h/")), null);
  });
});
