// Compiled by tests/test_typescript.py (`tsc --noEmit --strict`) beside a copy of rest-live.d.ts:
// everything here must type-check. misuse.ts holds what must not.
import {
  CLOSE_AT_CAPACITY,
  FINAL_CLOSE_CODES,
  LiveClient,
  LiveMap,
  STATUSES,
  SUBPROTOCOL,
  TOKEN_SUBPROTOCOL_PREFIX,
  socketUrl,
  type BroadcastFrame,
  type CallbackArguments,
  type ClientFrame,
  type ClientError,
  type HelloFrame,
  type LiveCallback,
  type Pk,
  type ServerFrame,
  type Status,
  type SubscribeRequest,
  type Transaction,
  type WebSocketLike,
} from "./rest-live.js";

interface Todo {
  title: string;
  done: boolean;
}

const live = new LiveClient("/ws/subscribe/", { token: "k3y", minDelay: 100, resume: false });
new LiveClient("wss://example.com/ws/", { WebSocket }); // the browser's own
const status: Status = live.status;
const url: string = socketUrl("/ws/");
const protocols: string[] = [SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}k3y`];
const capacity: 4013 = CLOSE_AT_CAPACITY;
const reason: string | undefined = FINAL_CLOSE_CODES.get(4003);
const statuses: readonly Status[] = STATUSES;

// The callback: `action` narrows `data` and `info`.
const todos = new Map<Pk, Todo>();
const request: SubscribeRequest = {
  model: "todos.Todo",
  action: "list",
  view_kwargs: { board: 3 },
  query_params: { search: "milk", done: false, tag: ["a", "b"], page_size: 10 },
  snapshot: true,
};
const stop: () => void = live.subscribe<Todo>(
  request,
  (action, data, info) => {
    if (action === "SNAPSHOT") {
      const truncated: boolean = info.truncated;
      data.forEach((todo, index) => todos.set(info.pks[index], todo));
      void truncated;
    } else if (action === "DELETED") {
      const key: Pk = data.pk;
      todos.delete(info.pk);
      void key;
    } else {
      const title: string = data.title;
      const resumed: true | undefined = info.resumed;
      todos.set(info.pk, data);
      void [title, resumed, info.position?.length];
    }
  },
  (error) => console.warn(error.code, error.message),
);
stop();

// LiveMap keeps the state; its `apply` is a callback.
const kept = new LiveMap<Todo>();
live.subscribe({ model: "todos.Todo", action: "retrieve", lookup_by: 5 }, kept.apply);
const first: Todo | undefined = kept.get(5);
const untyped = new LiveMap();
live.subscribe({ model: "todos.Todo", action: "list" }, untyped.apply);
const callback: LiveCallback<Todo> = kept.apply;
const args: CallbackArguments<Todo> = ["DELETED", { id: 1, pk: 1 }, { pk: 1, position: null }];
callback(...args);

// Events.
const off: () => void = live.on("status", (value) => console.log(value.toUpperCase()));
off();
live.on("error", (error: ClientError) => console.log(error.code ?? "not JSON", error.retrying));
live.on("transaction", ({ position, frames }: Transaction) => {
  for (const frame of frames) {
    const pk: Pk = frame.pk;
    if (frame.action !== "DELETED") console.log(pk, frame.instance, position, frame.more);
  }
});
live.on("hello", (frame: HelloFrame) => console.log(frame.models["todos.Todo"]));

async function handshake(): Promise<number | null> {
  const hello = await live.hello();
  const version: number = hello.protocol;
  const actions: ("list" | "retrieve")[] | undefined = hello.models["todos.Todo"];
  void [version, actions];
  return hello.limits.snapshot_limit;
}
void handshake();
live.close();

// Frames, discriminated by `type`.
function describe(frame: ServerFrame<Todo>): string {
  switch (frame.type) {
    case "snapshot":
      return `${frame.instances.length} of ${frame.pks.length} at ${frame.position}`;
    case "broadcast":
      return frame.action === "DELETED"
        ? `${frame.pk} gone (${frame.instance.id})`
        : `${frame.instance.title}${frame.more ? "…" : ""}`;
    case "resumed":
      return `${frame.broadcasts.length} at ${frame.position}`;
    case "resume_failed":
      return frame.reason === "too_many" ? "snapshot" : frame.message;
    case "subscribed":
    case "unsubscribed":
      return String(frame.id);
    case "reset":
      return frame.message;
    case "error":
      return `${frame.code === 500 ? "retry" : "refused"} ${frame.id}`;
    case "hello":
      return `${frame.server} ${frame.protocol} ${frame.limits.max_frame_bytes}`;
  }
}
const sent: ClientFrame[] = [
  { type: "subscribe", id: 1, model: "todos.Todo", action: "list", resume: "3f9a61c2d0.1234" },
  { type: "unsubscribe", id: 1, ack: true },
  { type: "hello" },
];
const broadcast: BroadcastFrame = {
  type: "broadcast", id: 1, model: "todos.Todo", action: "CREATED", instance: { title: "milk" },
  pk: "9f3c", position: null, more: true,
};

// A WebSocket of one's own.
class Scripted implements WebSocketLike {
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  constructor(readonly url: string, readonly protocols?: string[]) {}
  send(data: string): void {
    console.log(data);
  }
  close(): void {
    this.readyState = 3;
  }
}
new LiveClient("/ws/", { WebSocket: Scripted });

void [status, url, protocols, capacity, reason, statuses, first, describe, sent, broadcast];
