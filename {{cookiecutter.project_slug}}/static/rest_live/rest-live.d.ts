/**
 * Types for rest-live.js, the client of the live subscription protocol, version 2
 * (docs/protocol.md). TypeScript finds them beside the module:
 *
 *   import { LiveClient, LiveMap } from "./static/rest_live/rest-live.js";
 *
 *   interface Todo { title: string; done: boolean }
 *   const live = new LiveClient("/ws/subscribe/");
 *   const todos = new LiveMap<Todo>();
 *   const request = { model: "todos.Todo", action: "list", snapshot: true } as const;
 *   live.subscribe<Todo>(request, (action, data, info) => {
 *     if (action === "SNAPSHOT") data.forEach((todo, index) => todos.set(info.pks[index], todo));
 *     else if (action === "DELETED") todos.delete(info.pk);
 *     else todos.set(info.pk, data); // data: Todo
 *   });
 *   // or, the same: live.subscribe(request, todos.apply);
 */

// --- values -----------------------------------------------------------------------------------

/** The subprotocol the client offers, with a token. */
export declare const SUBPROTOCOL: "rest-live";
/** Followed by a DRF token key: the second subprotocol offered when there is a token. */
export declare const TOKEN_SUBPROTOCOL_PREFIX: "rest-live.token.";
/** Every value of `LiveClient.status`, in the order a connection goes through them. */
export declare const STATUSES: readonly Status[];
/** Close codes after which the client stops reconnecting, with what each means. */
export declare const FINAL_CLOSE_CODES: ReadonlyMap<number, string>;
/** The server is full, or this client over its budget: reconnect, but not soon. */
export declare const CLOSE_AT_CAPACITY: 4013;

/** A ws:// or wss:// URL: relative paths resolve against the page, http(s) becomes ws(s). */
export declare function socketUrl(url: string): string;

// --- what the protocol carries ----------------------------------------------------------------

/** An object's primary key: a number for an integer key, a string for any other (a UUID). */
export type Pk = number | string;
/** Where a state stands in the server's change log: opaque, to keep and send back, never parse. */
export type Position = string;
/** A subscription's id: rest-live.js numbers them 1, 2, 3...; other clients may use strings. */
export type SubscriptionId = number | string;
/** An instance as the view's serializer renders it, unless `subscribe<T>` says more. */
export type Instance = { [field: string]: unknown };
/** What a DELETED broadcast carries: the primary key as `id` and `pk`, and the lookup field. */
export type DeletedInstance = { id: Pk; pk: Pk; [lookupField: string]: unknown };
export type BroadcastAction = "CREATED" | "UPDATED" | "DELETED";
export type ViewAction = "list" | "retrieve";
export type Status = "connecting" | "open" | "reconnecting" | "closed";
/** The error codes a server sends in an `error` frame. */
export type ErrorCode = 400 | 403 | 404 | 429 | 500;
/** Why a resume could not be served (a snapshot follows). */
export type ResumeFailure = "epoch" | "expired" | "unknown" | "too_many";

export type QueryValue = string | number | boolean;

/** The fields of a subscribe frame a caller chooses; the client adds type, id and resume. */
export interface SubscribeRequest {
  /** The model's label, `app_label.ModelName`. */
  model: string;
  action: ViewAction;
  /** The value of the view's lookup field: for `retrieve` only. */
  lookup_by?: string | number;
  /** The URL keyword arguments the view would get over REST. */
  view_kwargs?: { [name: string]: string | number };
  /** The query string the view would get over REST: its filters apply. */
  query_params?: { [name: string]: QueryValue | QueryValue[] };
  /** Start with a snapshot of the current state (and resume after reconnects). */
  snapshot?: boolean;
  /** Be answered with `subscribed` once live (the client ignores it). */
  ack?: boolean;
}

// Frames from the server, a union discriminated by `type`.

export interface SnapshotFrame<T = Instance> {
  type: "snapshot";
  id: SubscriptionId;
  model: string;
  instances: T[];
  /** The instances' primary keys, in the same order. */
  pks: Pk[];
  /** True when objects were left out (a page size, the snapshot limit). */
  truncated: boolean;
  position: Position | null;
}

export interface BroadcastFields {
  type: "broadcast";
  id: SubscriptionId;
  model: string;
  pk: Pk;
  /** null for a change the change log does not hold. */
  position: Position | null;
  /** More broadcasts of the same transaction follow on this socket. */
  more?: true;
}

export type BroadcastFrame<T = Instance> =
  | (BroadcastFields & { action: "CREATED" | "UPDATED"; instance: T })
  | (BroadcastFields & { action: "DELETED"; instance: DeletedInstance });

/** One change of a resume's catch-up, when the server lists them in the `resumed` frame. */
export type ResumedChange<T = Instance> =
  | { action: "CREATED" | "UPDATED"; pk: Pk; instance: T }
  | { action: "DELETED"; pk: Pk; instance: DeletedInstance };

/** The end of a resume's catch-up: the subscription is live from `position`. */
export interface ResumedFrame<T = Instance> {
  type: "resumed";
  id: SubscriptionId;
  model: string;
  position: Position;
  /** What changed after the position the client resumed from, each object once: one step. */
  broadcasts: ResumedChange<T>[];
}

export interface ResumeFailedFrame {
  type: "resume_failed";
  id: SubscriptionId;
  model: string;
  reason: ResumeFailure;
  message: string;
}

export interface SubscribedFrame {
  type: "subscribed";
  id: SubscriptionId;
}

export interface UnsubscribedFrame {
  type: "unsubscribed";
  id: SubscriptionId;
}

export interface ResetFrame {
  type: "reset";
  id: SubscriptionId;
  model: string;
  message: string;
}

export interface ErrorFrame {
  type: "error";
  /** The request's id, or null when the frame had none usable. */
  id: SubscriptionId | null;
  code: ErrorCode;
  message: string;
}

/** The server's settings of these names; null where a limit is off. */
export interface HelloLimits {
  max_frame_bytes: number | null;
  max_subscriptions: number | null;
  message_burst: number | null;
  messages_per_second: number | null;
  max_pending_bytes: number | null;
  snapshot_limit: number | null;
  evaluations_per_second: number | null;
  snapshot_rows_per_second: number | null;
  change_log_seconds: number | null;
  [limit: string]: number | null;
}

/** The answer to `hello()`. */
export interface HelloFrame {
  type: "hello";
  /** The protocol version: 2. */
  protocol: number;
  server: string;
  /** The position of the server's change feed, or null before it watches anything. */
  position: Position | null;
  limits: HelloLimits;
  /** The models this socket may subscribe to, and the actions of each. */
  models: { [model: string]: ViewAction[] };
}

/** Every frame a server sends. */
export type ServerFrame<T = Instance> =
  | SnapshotFrame<T>
  | BroadcastFrame<T>
  | ResumedFrame<T>
  | ResumeFailedFrame
  | SubscribedFrame
  | UnsubscribedFrame
  | ResetFrame
  | ErrorFrame
  | HelloFrame;

// Frames to the server (the client builds them).

export interface SubscribeFrame extends SubscribeRequest {
  type: "subscribe";
  id: SubscriptionId;
  /** A position received on an earlier socket: what changed after it, rather than a snapshot. */
  resume?: Position;
}

export interface UnsubscribeFrame {
  type: "unsubscribe";
  id: SubscriptionId;
  ack?: boolean;
}

export interface HelloRequestFrame {
  type: "hello";
}

export type ClientFrame = SubscribeFrame | UnsubscribeFrame | HelloRequestFrame;

// --- the callback -----------------------------------------------------------------------------

export interface SnapshotInfo {
  truncated: boolean;
  /** The instances' primary keys, in the same order. */
  pks: Pk[];
  position: Position | null;
}

export interface BroadcastInfo {
  /** The object's primary key: upsert or delete by it. */
  pk: Pk;
  position: Position | null;
  /** Part of a resume's catch-up (what changed while the client was away). */
  resumed?: true;
}

export type CallbackAction = "SNAPSHOT" | BroadcastAction;

/** The callback's arguments: `action` tells `data` and `info` apart. */
export type CallbackArguments<T = Instance> =
  | [action: "SNAPSHOT", data: T[], info: SnapshotInfo]
  | [action: "CREATED" | "UPDATED", data: T, info: BroadcastInfo]
  | [action: "DELETED", data: DeletedInstance, info: BroadcastInfo];

/**
 * Hears a subscription's state: "SNAPSHOT" replaces it; CREATED and UPDATED mean "this object,
 * as it is now" (upsert by info.pk); DELETED removes info.pk, if present.
 */
export type LiveCallback<T = Instance> = (...args: CallbackArguments<T>) => void;

/** A refusal (4xx): the subscription is over. */
export interface SubscriptionError {
  id: SubscriptionId | null;
  code: number;
  message: string;
}

/** What on("error") hears: errors no onError took, failed subscribes, closes that stop. */
export interface ClientError {
  id: SubscriptionId | null;
  /** An error frame's code, a close code, or null for a frame that was not JSON. */
  code: number | null;
  message: string;
  /** The client tries again by itself (a 5xx, a full server). */
  retrying?: true;
}

/** A group of broadcasts applied together: a transaction, or a resume's catch-up. */
export interface Transaction<T = Instance> {
  position: Position | null;
  frames: BroadcastFrame<T>[];
}

// --- the client -------------------------------------------------------------------------------

/**
 * What the client needs of a WebSocket (the browser's and Node's qualify). It sets the handlers
 * and calls them with the events a WebSocket's would get: onmessage `{data}` (a string), onclose
 * `{code, reason}`.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number): void;
  onopen: ((event: any) => void) | null;
  onmessage: ((event: any) => void) | null;
  onclose: ((event: any) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string[]) => WebSocketLike;

export interface LiveClientOptions {
  /** A DRF token, for clients without the site's session cookie. */
  token?: string;
  /** The first reconnect delay, in milliseconds (500). */
  minDelay?: number;
  /** The longest delay between reconnect attempts, in milliseconds (15000). */
  maxDelay?: number;
  /** Resume subscriptions after a reconnect (true); false: always a snapshot. */
  resume?: boolean;
  /** Another WebSocket implementation (tests, older Node). */
  WebSocket?: WebSocketConstructor;
}

export declare class LiveClient {
  /** @param url "/ws/subscribe/" (resolved against the page) or a full ws(s)/http(s) URL. */
  constructor(url: string, options?: LiveClientOptions);

  readonly status: Status;

  /** Called at once with the current status, then on every change. */
  on(event: "status", listener: (status: Status) => void): () => void;
  on(event: "error", listener: (error: ClientError) => void): () => void;
  /** After the callbacks of each group of broadcasts applied together. */
  on(event: "transaction", listener: (transaction: Transaction) => void): () => void;
  /** Every hello frame (the answers to hello()). */
  on(event: "hello", listener: (frame: HelloFrame) => void): () => void;

  /** Subscribe; sent when the socket is open. Returns `stop()`, which unsubscribes. */
  subscribe<T = Instance>(
    request: SubscribeRequest,
    callback: LiveCallback<T>,
    onError?: (error: SubscriptionError) => void,
  ): () => void;

  /** Ask the server what it speaks and allows; rejected by close(). */
  hello(): Promise<HelloFrame>;

  /** Close the connection for good. */
  close(): void;
}

/** A subscription's state, primary key to instance; `apply` is its callback. */
export declare class LiveMap<T = Instance> extends Map<Pk, T> {
  readonly apply: LiveCallback<T>;
}
