/**
 * rest-live.js: a client for the live subscription protocol, version 2 (docs/protocol.md).
 * One ES module, no dependencies, no build step; runs in browsers and in Node 22+. Types for
 * TypeScript are in rest-live.d.ts beside it.
 *
 *   import { LiveClient } from "/static/rest_live/rest-live.js";
 *
 *   const live = new LiveClient("/ws/subscribe/");
 *   const stop = live.subscribe(
 *     { model: "todos.Todo", action: "list", query_params: { search: "milk" }, snapshot: true },
 *     (action, data, info) => {
 *       // "SNAPSHOT": data is every instance, info.pks their primary keys in the same order
 *       //             (info.truncated says if the list was cut): the whole state, replacing
 *       //             whatever the page had.
 *       // "CREATED" / "UPDATED": data is the instance, info.pk its primary key; treat both as
 *       //             "this is it now" (upsert by info.pk).
 *       // "DELETED": data is {id, pk, ...lookup field}; forget info.pk (it may be one you
 *       //             never had).
 *       // info.position: where this state stands in the server's change log (opaque).
 *     },
 *     (error) => {}, // {code, message}: the server refused (4xx); this subscription is over
 *   );
 *   live.on("status", (status) => {}); // "connecting" | "open" | "reconnecting" | "closed"
 *   live.on("transaction", ({ position, frames }) => {}); // after each group of changes
 *   const { protocol, limits, models } = await live.hello(); // optional: what the server allows
 *   stop(); // unsubscribe
 *   live.close(); // for good: no more reconnecting
 *
 * Key objects by info.pk (info.pks for a snapshot), not by a field of the instance: the server
 * sends the primary key whatever the serializer shows. `new LiveMap()` does it for you:
 * `live.subscribe(request, todos.apply)` keeps `todos`, a Map of pk to instance.
 *
 * Transactions: broadcasts of one committed transaction (`more: true` on all but the last) are
 * held until the last arrives, then handed to the callbacks one after the other in the same task,
 * so a page never renders half of a transaction; on("transaction") hears each group after its
 * callbacks ran.
 *
 * When the connection drops, the client reconnects with capped, jittered exponential backoff and
 * subscribes again. A subscription that has its state from a snapshot resumes: it is sent with
 * the latest position the lost socket delivered (`"resume"`), and the server answers with only
 * what changed meanwhile, which the callback gets as CREATED / UPDATED / DELETED (info.resumed),
 * without a "SNAPSHOT". If the server cannot resume (`resume_failed`: the change log no longer
 * holds that far back, say) it sends a snapshot instead, and the callback gets a "SNAPSHOT" that
 * replaces its state, as do subscriptions without a snapshot of their own; `{ resume: false }`
 * in the options always asks for a snapshot. After a close code in FINAL_CLOSE_CODES (bad token,
 * signed out, a frame too big) it stops instead: the status becomes "closed" and on("error")
 * hears the code.
 *
 * A "reset" from the server (it could not follow a change for a subscription) re-syncs that
 * subscription: the callback gets a fresh "SNAPSHOT" (never a resume: what came before may be
 * wrong). A subscribe the server failed to start (a 5xx error, say while its database restarts)
 * is tried again after a growing delay, and on("error") hears of each failure with
 * `retrying: true`.
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
  #resume;
  #WebSocket;
  #socket = null;
  #status = "connecting";
  #attempts = 0;
  #timer = null;
  #closed = false;
  #nextId = 1;
  #subscriptions = new Map(); // id -> {request, callback, onError, socket it was sent on, ...}
  #listeners = new Map(); // event -> Set of functions
  #pending = []; // broadcasts of a transaction still coming: [subscription, its generation, frame]
  #midTransaction = false; // a broadcast with `more` came, its transaction's last has not
  #received = null; // the latest position received on this socket
  #position = null; // the latest one with no transaction cut off behind it: where to resume from
  #hellos = []; // hello() calls waiting for the server's hello: [resolve, reject]
  #helloSent = null; // the socket they were asked on

  /**
   * @param {string} url  "/ws/subscribe/" (resolved against the page) or a full ws(s)/http(s) URL
   * @param {object} [options]
   * @param {string} [options.token]  a DRF token, for clients without the site's session cookie
   * @param {number} [options.minDelay=500]  first reconnect delay, in milliseconds
   * @param {number} [options.maxDelay=15000]  the longest delay between reconnect attempts
   * @param {boolean} [options.resume=true]  resume after a reconnect; false: always a snapshot
   * @param {typeof WebSocket} [options.WebSocket]  another implementation (tests, older Node)
   */
  constructor(url, { token, minDelay = 500, maxDelay = 15000, resume = true, WebSocket } = {}) {
    this.#url = socketUrl(url);
    this.#protocols = token ? [SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX + token] : undefined;
    this.#minDelay = minDelay;
    this.#maxDelay = maxDelay;
    this.#resume = resume;
    this.#WebSocket = WebSocket ?? globalThis.WebSocket;
    globalThis.addEventListener?.("online", this.#retryNow);
    this.#connect();
  }

  /** "connecting", "open", "reconnecting" or "closed". */
  get status() {
    return this.#status;
  }

  /**
   * Listen to "status" (called at once with the current one, then on every change), "error"
   * ({code, message, id}: errors no subscription's onError took, and refusals that close the
   * connection), "transaction" ({position, frames}: after the callbacks of a group of broadcasts
   * applied together, a transaction or a resume's catch-up) or "hello" (every hello frame).
   * Returns a function that stops listening.
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
      live: null, // the socket whose snapshot or resume its state is from, if that had a position
      resumeFrom: null, // the position to resume from, when its state is from an earlier socket
      generation: 0, // counts snapshots, resets and failed resumes: older broadcasts are stale
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

  /**
   * Ask the server what it speaks and allows: resolves with its hello frame ({protocol, server,
   * position, limits, models}). Sent at once when connected, else when the connection opens (again
   * after a reconnect, if unanswered); rejected by close().
   */
  hello() {
    if (this.#closed) return Promise.reject(new Error("The client is closed."));
    const answer = new Promise((resolve, reject) => this.#hellos.push([resolve, reject]));
    this.#sendHello();
    return answer;
  }

  /** Close the connection for good. */
  close() {
    this.#closed = true;
    clearTimeout(this.#timer);
    globalThis.removeEventListener?.("online", this.#retryNow);
    for (const subscription of this.#subscriptions.values()) clearTimeout(subscription.timer);
    this.#subscriptions.clear();
    this.#pending = [];
    for (const [, reject] of this.#hellos.splice(0)) reject(new Error("The client is closed."));
    this.#socket?.close(1000);
    this.#setStatus("closed");
  }

  #connect() {
    const socket = new this.#WebSocket(this.#url, this.#protocols);
    this.#socket = socket;
    this.#pending = [];
    this.#midTransaction = false;
    this.#received = this.#position = null;
    socket.onopen = () => {
      if (socket !== this.#socket) return;
      this.#attempts = 0;
      this.#setStatus("open");
      this.#sendHello();
      for (const [id, subscription] of this.#subscriptions) this.#send(id, subscription);
    };
    socket.onmessage = (event) => {
      if (socket === this.#socket) this.#receive(event.data);
    };
    socket.onclose = (event) => {
      if (socket !== this.#socket || this.#closed) return;
      // A transaction cut off: dropped, the resume or snapshot after reconnecting brings it.
      this.#pending = [];
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
      // slow, the frames it missed as well): a snapshot, or what changed after the last position
      // this socket delivered, which covers every subscription that was live on it.
      for (const subscription of this.#subscriptions.values()) {
        if (subscription.socket !== null) subscription.snapshot = true;
        if (subscription.live === socket) {
          subscription.resumeFrom = this.#position;
          subscription.live = null;
        }
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
    const { snapshot, resumeFrom } = subscription;
    const frame = { ...subscription.request, type: "subscribe", id, snapshot };
    if (this.#resume && resumeFrom !== null && !subscription.resyncing) {
      Object.assign(frame, { snapshot: true, resume: resumeFrom });
    }
    this.#socket.send(JSON.stringify(frame));
  }

  #sendHello() {
    if (this.#status !== "open" || !this.#hellos.length || this.#helloSent === this.#socket) return;
    this.#helloSent = this.#socket;
    this.#socket.send(JSON.stringify({ type: "hello" }));
  }

  // Its state is no longer one to resume from; broadcasts already held for it are stale.
  #forget(subscription) {
    subscription.live = subscription.resumeFrom = null;
    subscription.generation += 1;
  }

  // The server could not follow a change: start the subscription afresh, from a snapshot.
  #resync(id, subscription) {
    this.#forget(subscription);
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
    if (typeof frame?.position === "string" && frame.type !== "hello") {
      this.#received = frame.position;
    }
    const subscription = this.#subscriptions.get(frame.id);
    if (frame.type === "broadcast") {
      // Held until its transaction's last frame, then applied with the rest in one go.
      if (subscription && !subscription.resyncing) {
        this.#pending.push([subscription, subscription.generation, frame]);
      }
      if (frame.more) this.#midTransaction = true;
      else this.#apply(frame.position ?? null);
    } else if (frame.type === "error") {
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
    } else if (frame.type === "hello") {
      for (const [resolve] of this.#hellos.splice(0)) resolve(frame);
      this.#helloSent = null;
      this.#emit("hello", frame);
    } else if (!subscription) {
      // A frame still in flight when its subscription was stopped.
    } else if (frame.type === "reset") {
      this.#resync(frame.id, subscription);
    } else if (frame.type === "snapshot") {
      this.#forget(subscription);
      subscription.resyncing = false;
      subscription.failures = 0;
      if (typeof frame.position === "string") subscription.live = this.#socket;
      const instances = frame.instances ?? [];
      const pks = frame.pks ?? instances.map((instance) => primaryKey(undefined, instance));
      const info = { truncated: frame.truncated, pks, position: frame.position ?? null };
      if (!this.#midTransaction) this.#position = this.#received;
      subscription.callback("SNAPSHOT", instances, info);
    } else if (frame.type === "resumed") {
      // What changed while this client was away, applied in one step.
      subscription.failures = 0;
      if (typeof frame.position === "string") subscription.live = this.#socket;
      subscription.resumeFrom = null;
      for (const change of frame.broadcasts ?? []) {
        const { id, model, position } = frame;
        const broadcast = { type: "broadcast", id, model, ...change, position };
        this.#pending.push([subscription, subscription.generation, broadcast]);
      }
      this.#apply(frame.position ?? null, subscription);
    } else if (frame.type === "resume_failed") {
      // A snapshot follows, replacing the state: drop what was held for it, and broadcasts too.
      this.#forget(subscription);
      subscription.resyncing = true;
    }
  }

  // Hand the held broadcasts to their callbacks, in order, in this one task; then "transaction".
  #apply(position, resumed = null) {
    const held = this.#pending;
    this.#pending = [];
    this.#midTransaction = false;
    this.#position = this.#received;
    const frames = [];
    for (const [subscription, generation, frame] of held) {
      // Stopped, re-synced, or replaced by a snapshot since it was held: stale.
      if (this.#subscriptions.get(frame.id) !== subscription) continue;
      if (subscription.generation !== generation || subscription.resyncing) continue;
      subscription.failures = 0;
      frames.push(frame);
      const info = { pk: primaryKey(frame.pk, frame.instance), position: frame.position ?? null };
      if (subscription === resumed) info.resumed = true;
      report(() => subscription.callback(frame.action, frame.instance, info));
    }
    if (frames.length) this.#emit("transaction", { position, frames });
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

/**
 * The state of one subscription as a Map of primary key to instance, kept from its callback:
 *
 *   const todos = new LiveMap();
 *   live.subscribe({ model: "todos.Todo", action: "list", snapshot: true }, (...change) => {
 *     todos.apply(...change);
 *     render([...todos.values()]); // a transaction's callbacks all run before the next paint
 *   });
 *
 * or `live.subscribe(request, todos.apply)` alone. A snapshot replaces it (in the snapshot's
 * order); CREATED and UPDATED upsert; DELETED removes, if present.
 */
export class LiveMap extends Map {
  apply = (action, data, info) => {
    if (action === "SNAPSHOT") {
      this.clear();
      data.forEach((instance, index) => this.set(info.pks[index], instance));
    } else if (action === "DELETED") {
      this.delete(info.pk);
    } else {
      this.set(info.pk, data);
    }
  };
}

// The frame's pk; from a server older than protocol 2, which sent none, the instance's pk or id.
function primaryKey(pk, instance) {
  return pk ?? instance?.pk ?? instance?.id;
}

// Run a callback; if it throws, report the error without leaving the rest of a transaction out.
function report(callback) {
  try {
    callback();
  } catch (error) {
    if (globalThis.reportError) globalThis.reportError(error);
    else setTimeout(() => { throw error; });
  }
}

/** A ws:// or wss:// URL: relative paths resolve against the page, http(s) becomes ws(s). */
export function socketUrl(url) {
  const resolved = new URL(url, globalThis.location?.href);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved.href;
}
