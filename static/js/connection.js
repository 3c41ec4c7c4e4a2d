// One WebSocket to a gateway, kept open: it reconnects by itself with
// exponential backoff and jitter, and when the gateway says `reconnect`
// (it is draining) or the connection closes for any other reason (1012,
// 4008, 4010, 1009, a drop with no close code). Each attempt after a
// failure or a drop goes to the next URL of its list. Two closes leave it
// down until retry(): a normal close (1000) without a drain notice, and
// 4009 (the session was resumed on another connection: reconnecting by
// itself would take it back, and the two would take turns forever).
//
// States, shown by the page: connecting → connected → reconnecting (in Ns)
// → connecting …, or disconnected, or elsewhere (4009).

import { withParams } from "./endpoints.js";

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15_000;
/** A connection that lived this long resets the backoff. */
const STABLE_MS = 10_000;
const WELCOME_TIMEOUT_MS = 10_000;
/** The session lives on another connection now (docs/protocol.md, "Sessions and resuming"). */
const CLOSE_ELSEWHERE = 4009;

export class Connection {
  /**
   * @param {string[]} urls ws:// or wss:// URLs of /ws on one or more gateways
   * @param {() => object} params query parameters for the next attempt
   *   (read at every attempt: the session token changes with each welcome)
   * @param {{onWelcome(frame), onFrame(frame), onDown(), onStatus(status)}} handlers
   */
  constructor(urls, params, handlers) {
    this.urls = urls;
    /** Which of `urls` the next attempt goes to. */
    this.at = 0;
    this.params = params;
    this.handlers = handlers;
    this.ws = null;
    this.ready = false;
    this.attempt = 0;
    this.timer = null;
    this.tick = null;
    this.retryAt = 0;
    this.status = { state: "connecting", gateway: null, retryIn: 0, reason: "", connects: 0 };
  }

  start() {
    this.connect();
  }

  /** Connect now instead of waiting for the backoff timer (a person asked: even after 4009). */
  retry() {
    if (this.ws) return;
    this.connect();
  }

  /**
   * The network came back: connect now, unless the session is open
   * elsewhere. Failures while it was gone say nothing about now, so the
   * backoff starts over.
   */
  wake() {
    if (this.status.state === "elsewhere" || this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  /** Send a frame if the connection is up; false if it is not. */
  send(frame) {
    if (!this.ws || !this.ready || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  get connected() {
    return this.ready;
  }

  /** The WebSocket URL of the gateway this connection is on (or tries next). */
  get url() {
    return this.urls[this.at];
  }

  connect() {
    clearTimeout(this.timer);
    clearInterval(this.tick);
    this.timer = this.tick = null;
    this.setStatus({ state: "connecting", retryIn: 0 });

    let ws;
    try {
      ws = new WebSocket(withParams(this.urls[this.at], this.params()));
    } catch (err) {
      this.setStatus({ reason: String(err) });
      this.at = (this.at + 1) % this.urls.length;
      this.scheduleReconnect(null);
      return;
    }
    this.ws = ws;
    this.ready = false;
    let drainAfter = null;
    let welcomedAt = 0;
    // A gateway that accepts but never says `welcome` is as good as down.
    const welcomeTimer = setTimeout(() => {
      if (!this.ready && ws.readyState <= WebSocket.OPEN) ws.close();
    }, WELCOME_TIMEOUT_MS);

    ws.onmessage = (e) => {
      if (this.ws !== ws || typeof e.data !== "string") return;
      let frame;
      try {
        frame = JSON.parse(e.data);
      } catch {
        console.warn("gateway sent a frame that is not JSON", e.data);
        return;
      }
      if (frame.type === "welcome") {
        this.ready = true;
        welcomedAt = Date.now();
        this.setStatus({ state: "connected", gateway: frame.gateway ?? null, reason: "", connects: this.status.connects + 1 });
        this.handlers.onWelcome(frame);
      } else if (frame.type === "reconnect") {
        // The gateway is draining and closes with 1012 right after this; if it
        // does not, close it ourselves so the page moves on.
        drainAfter = Number.isFinite(frame.after_ms) ? frame.after_ms : BASE_DELAY_MS;
        this.setStatus({ reason: frame.reason ?? "gateway restarting" });
        setTimeout(() => {
          if (ws.readyState === WebSocket.OPEN) ws.close(4000, "reconnect requested");
        }, 1000);
      } else {
        this.handlers.onFrame(frame);
      }
    };

    ws.onclose = (e) => {
      clearTimeout(welcomeTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      const wasReady = this.ready;
      this.ready = false;
      if (welcomedAt && Date.now() - welcomedAt >= STABLE_MS) this.attempt = 0;
      if (wasReady) this.handlers.onDown();
      if (e.code === 1000 && drainAfter == null) {
        this.setStatus({ state: "disconnected", reason: "The server closed the connection." });
        return;
      }
      if (e.code === CLOSE_ELSEWHERE) {
        this.setStatus({ state: "elsewhere", reason: "this chat was opened on another connection" });
        return;
      }
      // This gateway failed or went away: the next attempt tries the next one.
      this.at = (this.at + 1) % this.urls.length;
      const why = {
        1009: "a frame was too big",
        1012: "the gateway is restarting",
        4008: "the connection fell behind",
        4010: "the server heard nothing from this page for too long",
      }[e.code];
      if (why) this.setStatus({ reason: why });
      else if (drainAfter == null) this.setStatus({ reason: wasReady ? "connection lost" : "can't reach the server" });
      this.scheduleReconnect(drainAfter);
    };
    // An error is always followed by close, which does the work.
    ws.onerror = () => {};
  }

  /** Equal jitter: half the backoff fixed, half random, so many tabs spread out. */
  scheduleReconnect(minDelay) {
    const backoff = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    this.attempt += 1;
    let delay = backoff / 2 + Math.random() * (backoff / 2);
    if (minDelay != null) delay = Math.max(delay, minDelay + Math.random() * minDelay);
    this.retryAt = Date.now() + delay;
    this.timer = setTimeout(() => this.connect(), delay);
    const update = () =>
      this.setStatus({ state: "reconnecting", retryIn: Math.max(1, Math.ceil((this.retryAt - Date.now()) / 1000)) });
    update();
    this.tick = setInterval(update, 1000);
  }

  setStatus(patch) {
    this.status = { ...this.status, ...patch };
    this.handlers.onStatus(this.status);
  }
}
