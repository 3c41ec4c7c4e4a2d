// store.js: the page's state and the changes its views are told about.
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { PARTS, Store } from "../js/store.js";

/** A stand-in for js/roomstate.js's RoomState: the store only reads these fields. */
const room = (name, username = "ada") => ({ name, username, unread: 0 });

/** A store with rooms `names`, and the changes it emits from then on. */
function storeWith(...names) {
  const store = new Store();
  for (const n of names) store.addRoom(room(n));
  const changes = [];
  store.subscribe((c) => changes.push(c));
  return { store, changes };
}

describe("Store rooms", () => {
  it("keeps rooms in the order they were added, once per name", () => {
    const { store, changes } = storeWith("general", "dev");
    assert.equal(store.addRoom(room("general", "bob")), false, "a second room of one name is refused");
    assert.equal(store.get("general").username, "ada");
    assert.equal(changes.length, 0, "a refused add says nothing");
    assert.deepEqual(store.saved(), [
      { room: "general", username: "ada" },
      { room: "dev", username: "ada" },
    ]);
    assert.equal(store.size, 2);
    assert.equal(store.get("nope"), null);
  });

  it("tells subscribers of an added and a removed room", () => {
    const { store, changes } = storeWith();
    const r = room("general");
    store.addRoom(r);
    assert.equal(store.removeRoom("general"), r);
    assert.equal(store.removeRoom("general"), null, "removing twice is nothing");
    assert.deepEqual(changes, [
      { type: "added", room: r },
      { type: "removed", room: r },
    ]);
  });

  const shows = [
    ["the next room when the one on screen goes", ["a", "b", "c"], "b", "c"],
    ["the one before when the last goes", ["a", "b", "c"], "c", "b"],
    ["nothing when the only room goes", ["a"], "a", null],
  ];
  for (const [what, names, gone, next] of shows) {
    it(`shows ${what}`, () => {
      const { store, changes } = storeWith(...names);
      store.setActive(store.get(gone));
      changes.length = 0;
      store.removeRoom(gone);
      assert.equal(store.active?.name ?? null, next);
      assert.deepEqual(
        changes.map((c) => c.type),
        ["removed", "active"],
      );
      assert.equal(changes[1].previous.name, gone);
    });
  }

  it("keeps the room on screen when another goes", () => {
    const { store, changes } = storeWith("a", "b");
    store.setActive(store.get("a"));
    changes.length = 0;
    store.removeRoom("b");
    assert.equal(store.active.name, "a");
    assert.deepEqual(changes.map((c) => c.type), ["removed"]);
  });
});

describe("Store room on screen", () => {
  it("says which room was on screen before, and marks the new one read", () => {
    const { store, changes } = storeWith("a", "b");
    store.get("b").unread = 4;
    store.setActive(store.get("a"));
    store.setActive(store.get("b"));
    assert.equal(store.get("b").unread, 0);
    assert.deepEqual(
      changes.map((c) => [c.type, c.previous?.name ?? null]),
      [
        ["active", null],
        ["active", "a"],
      ],
    );
    store.setActive(null);
    assert.equal(store.active, null);
  });

  it("markRead clears the unread count of the room on screen and redraws its entry", () => {
    const { store, changes } = storeWith("a");
    store.markRead();
    assert.equal(changes.length, 0, "no room on screen: nothing to do");
    store.setActive(store.get("a"));
    store.get("a").unread = 3;
    changes.length = 0;
    store.markRead();
    assert.equal(store.get("a").unread, 0);
    assert.deepEqual(changes, [{ type: "room", room: store.get("a"), parts: new Set(["item"]) }]);
  });
});

describe("Store changes", () => {
  it("names the parts to redraw, all of them when none are named", () => {
    const { store, changes } = storeWith("a");
    const a = store.get("a");
    store.changed(a, "typing");
    store.changed(a);
    assert.deepEqual([...changes[0].parts], ["typing"]);
    assert.deepEqual([...changes[1].parts], [...PARTS]);
  });

  it("stops telling a subscriber that unsubscribed", () => {
    const store = new Store();
    const seen = [];
    const stop = store.subscribe((c) => seen.push(c.type));
    store.addRoom(room("a"));
    stop();
    store.addRoom(room("b"));
    assert.deepEqual(seen, ["added"]);
  });
});

describe("Store limits", () => {
  it("holds the current numbers before the first welcome", () => {
    assert.deepEqual(new Store().limits, { max_text_bytes: 4096, max_username_chars: 32, max_rooms: 32, max_upload_bytes: 25 * 1024 * 1024 });
  });
  it("takes a welcome's limits and says so", () => {
    const { store, changes } = storeWith();
    const sent = { max_text_bytes: 100, max_username_chars: 8, max_rooms: 2, max_upload_bytes: 1000 };
    store.setLimits(sent);
    assert.deepEqual(store.limits, sent);
    assert.deepEqual(changes, [{ type: "limits" }]);
  });
  it("keeps a limit the welcome left out", () => {
    const store = new Store();
    store.setLimits({ max_rooms: 3 });
    assert.deepEqual(store.limits, { max_text_bytes: 4096, max_username_chars: 32, max_rooms: 3, max_upload_bytes: 25 * 1024 * 1024 });
  });
});
