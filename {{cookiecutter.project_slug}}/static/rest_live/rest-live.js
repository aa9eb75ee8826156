/**
 * rest-live.js: a client for the live subscription protocol (docs/protocol.md).
 * One ES module, no dependencies, no build step; runs in browsers and in Node 22+.
 *
 *   import { LiveClient } from "/static/rest_live/rest-live.js";
 *
 *   const live = new LiveClient("/ws/subscribe/");
 *   const stop = live.subscribe(
 *     { model: "todos.Todo", action: "list", query_params: { search: "milk" }, snapshot: true },
 *     (action, data, info) => {
 *       // "SNAPSHOT": data is every instance (info.truncated says if the list was cut): the
 *       //             whole state, replacing whatever the page had.
 *       // "CREATED" / "UPDATED": data is the instance; treat both as "this is it now".
 *       // "DELETED": data is {id, ...lookup field}; forget it (it may be one you never had).
 *     },
 *     (error) => {}, // {code, message}: the server refused (4xx); this subscription is over
 *   );
 *   live.on("status", (status) => {}); // "connecting" | "open" | "reconnecting" | "closed"
 *   stop(); // unsubscribe
 *   live.close(); // for good: no more reconnecting
 *
 * When the connection drops, the client reconnects with capped, jittered exponential backoff and
 * subscribes again with `snapshot: true`, so each callback gets a "SNAPSHOT" that replaces its
 * state: changes made while disconnected are not replayed, they are in the snapshot. After a
 * close code in FINAL_CLOSE_CODES (bad token, signed out, a frame too big) it stops instead:
 * the status becomes "closed" and on("error") hears the code.
 *
 * A "reset" from the server (it could not follow a change for a subscription) re-syncs that
 * subscription: the callback gets a fresh "SNAPSHOT". A subscribe the server failed to start
 * (a 5xx error, say while its database restarts) is tried again after a growing delay, and
 * on("error") hears of each failure with `retrying: true`.
 */

export const SUBPROTOCOL = "rest-live";
export const TOKEN_SUBPROTOCOL_PREFIX = `${SUBPROTOCOL}.token.`;
export const STATUSES = ["connecting", "open", "reconnecting", "closed"];

// Close codes after which the same connection would be refused again (docs/protocol.md, "Close
// codes"): the client stops and reports them. After any other close it reconnects.
export const FINAL_CLOSE_CODES = new Map([
  [1009, "A frame was over the server's size limit."],
  [4001, "The token is unknown, or its user is inactive."],
  [4003, "Sign in to connect."],
  [4009, "A frame was over the server's size limit."],
]);
// The server holds as many sockets as it may, or this client asked it for more work than its
// budget allows: come back, but not soon (the delay of the fifth attempt in a row, 7.5 to 15 s
// with the default delays).
export const CLOSE_AT_CAPACITY = 4013;
const AT_CAPACITY_ATTEMPTS = 5;

export class LiveClient {
  #url;
  #protocols;
  #minDelay;
  #maxDelay;
  #WebSocket;
  #socket = null;
  #status = "connecting";
  #attempts = 0;
  #timer = null;
  #closed = false;
  #nextId = 1;
  #subscriptions = new Map(); // id -> {request, callback, onError, socket it was sent on}
  #listeners = new Map(); // event -> Set of functions

  /**
   * @param {string} url  "/ws/subscribe/" (resolved against the page) or a full ws(s)/http(s) URL
   * @param {object} [options]
   * @param {string} [options.token]  a DRF token, for clients without the site's session cookie
   * @param {number} [options.minDelay=500]  first reconnect delay, in milliseconds
   * @param {number} [options.maxDelay=15000]  the longest delay between reconnect attempts
   * @param {typeof WebSocket} [options.WebSocket]  another implementation (tests, older Node)
   */
  constructor(url, { token, minDelay = 500, maxDelay = 15000, WebSocket } = {}) {
    this.#url = socketUrl(url);
    this.#protocols = token ? [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token] : undefined;
    this.#minDelay = minDelay;
    this.#maxDelay = maxDelay;
    this.#WebSocket = WebSocket ?? globalThis.WebSocket;
    globalThis.addEventListener?.("online", this.#retryNow);
    this.#connect();
  }

  /** "connecting", "open", "reconnecting" or "closed". */
  get status() {
    return this.#status;
  }

  /**
   * Listen to "status" (called at once with the current one, then on every change) or "error"
   * ({code, message, id}: errors no subscription's onError took, and refusals that close the
   * connection). Returns a function that stops listening.
   */
  on(event, listener) {
    if (!this.#listeners.has(event)) this.#listeners.set(event, new Set());
    this.#listeners.get(event).add(listener);
    if (event === "status") listener(this.#status);
    return () => this.#listeners.get(event).delete(listener);
  }

  /**
   * Subscribe to a list or an object: `request` holds the subscribe frame's fields (model,
   * action, lookup_by, view_kwargs, query_params, snapshot); the client picks the id. Sent at
   * once when connected, else as soon as the connection opens. Returns `stop()`.
   */
  subscribe(request, callback, onError) {
    const id = this.#nextId++;
    const subscription = {
      request,
      callback,
      onError,
      socket: null, // the socket it was last sent on
      snapshot: Boolean(request.snapshot), // ask for one when it is sent next
      resyncing: false, // waiting for the snapshot after a reset: drop broadcasts until then
      failures: 0, // subscribes the server failed in a row
      timer: null,
    };
    this.#subscriptions.set(id, subscription);
    this.#send(id, subscription);
    return () => {
      if (this.#subscriptions.get(id) !== subscription) return;
      this.#subscriptions.delete(id);
      clearTimeout(subscription.timer);
      if (subscription.socket === this.#socket && this.#status === "open") {
        this.#socket.send(JSON.stringify({ type: "unsubscribe", id }));
      }
    };
  }

  /** Close the connection for good. */
  close() {
    this.#closed = true;
    clearTimeout(this.#timer);
    globalThis.removeEventListener?.("online", this.#retryNow);
    for (const subscription of this.#subscriptions.values()) clearTimeout(subscription.timer);
    this.#subscriptions.clear();
    this.#socket?.close(1000);
    this.#setStatus("closed");
  }

  #connect() {
    const socket = new this.#WebSocket(this.#url, this.#protocols);
    this.#socket = socket;
    socket.onopen = () => {
      if (socket !== this.#socket) return;
      this.#attempts = 0;
      this.#setStatus("open");
      for (const [id, subscription] of this.#subscriptions) this.#send(id, subscription);
    };
    socket.onmessage = (event) => {
      if (socket === this.#socket) this.#receive(event.data);
    };
    socket.onclose = (event) => {
      if (socket !== this.#socket || this.#closed) return;
      if (FINAL_CLOSE_CODES.has(event.code)) {
        const message = event.reason || FINAL_CLOSE_CODES.get(event.code);
        this.#emit("error", { id: null, code: event.code, message });
        this.close();
        return;
      }
      if (event.code === CLOSE_AT_CAPACITY) {
        this.#attempts = Math.max(this.#attempts, AT_CAPACITY_ATTEMPTS);
        const message = event.reason || "The server is full.";
        this.#emit("error", { id: null, code: event.code, message, retrying: true });
      }
      // Whatever was sent on the lost connection needs the whole state again (after 4029, too
      // slow, the frames it missed as well).
      for (const subscription of this.#subscriptions.values()) {
        if (subscription.socket !== null) subscription.snapshot = true;
      }
      this.#setStatus("reconnecting");
      this.#schedule();
    };
  }

  #schedule() {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connect(), this.#delay(this.#attempts));
    this.#attempts += 1;
  }

  #delay(attempts) {
    const ceiling = Math.min(this.#maxDelay, this.#minDelay * 2 ** attempts);
    // Half fixed, half random: clients that lost the same server do not all return at once.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  #retryNow = () => {
    if (this.#status !== "reconnecting" || this.#socket?.readyState === 0) return;
    clearTimeout(this.#timer);
    this.#connect();
  };

  #send(id, subscription) {
    if (this.#status !== "open" || subscription.socket === this.#socket) return;
    subscription.socket = this.#socket;
    const { snapshot } = subscription;
    this.#socket.send(JSON.stringify({ ...subscription.request, type: "subscribe", id, snapshot }));
  }

  // The server could not follow a change: start the subscription afresh, from a snapshot.
  #resync(id, subscription) {
    subscription.snapshot = true;
    subscription.resyncing = true;
    if (subscription.socket !== this.#socket || this.#status !== "open") return;
    this.#socket.send(JSON.stringify({ type: "unsubscribe", id }));
    subscription.socket = null;
    this.#send(id, subscription);
  }

  // The server failed to start it (5xx): the same subscribe, later, after a growing delay.
  #retry(id, subscription) {
    subscription.socket = null;
    clearTimeout(subscription.timer);
    const delay = this.#delay(subscription.failures);
    subscription.failures += 1;
    subscription.timer = setTimeout(() => this.#send(id, subscription), delay);
  }

  #receive(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      this.#emit("error", { id: null, code: null, message: "The server sent a frame that is not JSON." });
      return;
    }
    const subscription = this.#subscriptions.get(frame.id);
    if (frame.type === "error") {
      const error = { id: frame.id, code: frame.code, message: frame.message };
      if (subscription && frame.code >= 500) {
        // The server created none, but may well the next time.
        this.#emit("error", { ...error, retrying: true });
        this.#retry(frame.id, subscription);
        return;
      }
      // A refusal ends the subscription: the server created none, and would refuse it again.
      if (subscription) this.#subscriptions.delete(frame.id);
      if (subscription?.onError) subscription.onError(error);
      else this.#emit("error", error);
    } else if (!subscription) {
      // A frame still in flight when its subscription was stopped.
    } else if (frame.type === "reset") {
      this.#resync(frame.id, subscription);
    } else if (frame.type === "snapshot") {
      subscription.resyncing = false;
      subscription.failures = 0;
      subscription.callback("SNAPSHOT", frame.instances, { truncated: frame.truncated });
    } else if (frame.type === "broadcast" && !subscription.resyncing) {
      subscription.failures = 0;
      subscription.callback(frame.action, frame.instance, {});
    }
  }

  #setStatus(status) {
    if (status === this.#status) return;
    this.#status = status;
    this.#emit("status", status);
  }

  #emit(event, value) {
    for (const listener of this.#listeners.get(event) ?? []) listener(value);
  }
}

/** A ws:// or wss:// URL: relative paths resolve against the page, http(s) becomes ws(s). */
export function socketUrl(url) {
  const resolved = new URL(url, globalThis.location?.href);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved.href;
}
