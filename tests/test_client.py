"""rest-live.js in Chromium against scripted sockets: no server, so every frame and close is chosen.

The module is served to the page straight from the template (it is copied into bakes unrendered),
through Playwright's request routing, at a made-up origin.
"""

from __future__ import annotations

import pytest

from harness.combos import TEMPLATE_DIR

CLIENT_JS = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "static" / "rest_live" / "rest-live.js"
ORIGIN = "http://client.test"


@pytest.fixture
def page(chromium):
    """A blank page at ORIGIN that can import /static/rest_live/rest-live.js; fails on errors."""
    context = chromium.new_context()
    problems = []

    def serve(route):
        if route.request.url == f"{ORIGIN}/static/rest_live/rest-live.js":
            route.fulfill(body=CLIENT_JS.read_text(), content_type="text/javascript")
        else:
            route.fulfill(body="<!doctype html><title>client</title>", content_type="text/html")

    context.route(f"{ORIGIN}/**", serve)
    page = context.new_page()
    page.on("pageerror", lambda error: problems.append(f"uncaught {error}"))
    page.goto(f"{ORIGIN}/")
    try:
        yield page
    finally:
        context.close()
    assert not problems, problems


# What every script below shares: scripted sockets that keep what the client made them with
# (URL, subprotocols, when) and sent, and frames as the server builds them.
HARNESS = """
  const { LiveClient, LiveMap, socketUrl } = await import("/static/rest_live/rest-live.js");
  const sockets = [];
  class ScriptedSocket {
    constructor(url, protocols) {
      Object.assign(this, { url, protocols, sent: [], readyState: 0, created: Date.now() });
      sockets.push(this);
    }
    send(text) { this.sent.push(JSON.parse(text)); }
    close() { this.readyState = 3; }
    open() { this.readyState = 1; this.onopen(); }
    receive(frame) { this.onmessage({ data: JSON.stringify(frame) }); }
    drop(code) { this.readyState = 3; this.onclose({ code, reason: "" }); }
  }
  const until = async (done) => {
    const deadline = Date.now() + 5000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error("timed out");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  // Drop the newest socket, as a network failure would; open the one the client makes next.
  const reconnect = async () => {
    const count = sockets.length;
    sockets.at(-1).drop(1006);
    await until(() => sockets.length > count);
    const socket = sockets.at(-1);
    socket.open();
    return socket;
  };
  const options = { WebSocket: ScriptedSocket, minDelay: 1, maxDelay: 4 };
  const calls = [];
  const record = (name) => (action, data, info) => calls.push([name, action, data, info]);
  const subscribes = (socket) => socket.sent.filter((frame) => frame.type === "subscribe");
  const model = "todos.Todo";
  const snapshot = (id, pks, position) => ({
    type: "snapshot", id, model, instances: pks.map((pk) => ({ title: `todo ${pk}` })), pks,
    truncated: false, position,
  });
  const broadcast = (id, action, pk, position, more) => ({
    type: "broadcast", id, model, action, pk, position, ...(more ? { more: true } : {}),
    instance: action === "DELETED" ? { id: pk, pk } : { title: `todo ${pk}` },
  });
"""


def script(body: str) -> str:
    """A page function: HARNESS, then `body`, which returns what the test checks."""
    return f"async (argument) => {{\n{HARNESS}\n{body}\n}}"


CLIENT_SCRIPT = script("""
  const statuses = [], errors = [], refused = [];
  const live = new LiveClient("/ws/subscribe/", { ...options, token: "k3y", maxDelay: 8 });
  live.on("status", (status) => statuses.push(status));
  live.on("error", (error) => errors.push(error));
  live.subscribe({ model: "todos.Todo", action: "list", snapshot: true }, record("list"));
  const stopOne = live.subscribe(
    { model: "todos.Todo", action: "retrieve", lookup_by: 5 }, record("one"),
    (error) => refused.push(error),
  );
  const [first] = sockets;
  const queued = first.sent.length;
  first.open();
  const firstSubscribes = first.sent.slice();
  first.receive({ type: "snapshot", id: 1, model: "todos.Todo", instances: [{ id: 1 }],
                  truncated: true });
  first.receive({ type: "broadcast", id: 2, model: "todos.Todo", action: "CREATED",
                  instance: { id: 5 } });
  first.drop(1006);
  await until(() => sockets.length === 2);
  const second = sockets[1];
  second.open();
  const resubscribes = second.sent.slice();
  stopOne();
  const afterStop = second.sent.slice(resubscribes.length);
  second.receive({ type: "broadcast", id: 2, model: "todos.Todo", action: "UPDATED",
                   instance: { id: 5 } });  // in flight when it stopped: dropped
  live.subscribe({ model: "nope.Nope", action: "list" }, record("bad"),
                 (error) => refused.push(error));
  second.receive({ type: "error", id: 3, code: 404, message: "No live view" });
  second.receive({ type: "error", id: null, code: 400, message: "not JSON" });
  second.drop(4003);
  // Far longer than maxDelay: a reconnect, had one been scheduled, would have happened.
  await new Promise((resolve) => setTimeout(resolve, 100));
  return {
    url: first.url, protocols: first.protocols, queued, firstSubscribes, resubscribes,
    afterStop, calls, statuses, errors, refused, sockets: sockets.length, status: live.status,
    urls: [socketUrl("https://example.com/ws/"), socketUrl("wss://example.com/ws/")],
  };
""")


def test_the_client_handles_the_protocol(page):
    result = page.evaluate(CLIENT_SCRIPT)
    host = ORIGIN.removeprefix("http://")

    assert result["url"] == f"ws://{host}/ws/subscribe/"
    assert result["protocols"] == ["rest-live", "rest-live.token.k3y"]
    assert result["urls"] == ["wss://example.com/ws/", "wss://example.com/ws/"]
    # Held until the socket opens, then sent with ids the client picked.
    assert result["queued"] == 0
    assert result["firstSubscribes"] == [
        {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list", "snapshot": True},
        {"type": "subscribe", "id": 2, "model": "todos.Todo", "action": "retrieve",
         "lookup_by": 5, "snapshot": False},
    ]  # fmt: skip
    # After a reconnect every subscription asks for a snapshot.
    assert [(frame["id"], frame["snapshot"]) for frame in result["resubscribes"]] == [
        (1, True),
        (2, True),
    ]
    assert result["afterStop"] == [{"type": "unsubscribe", "id": 2}]
    # Frames as a server before protocol 2 sent them (no pk, pks or position): the instance's id.
    assert result["calls"] == [
        ["list", "SNAPSHOT", [{"id": 1}], {"truncated": True, "pks": [1], "position": None}],
        ["one", "CREATED", {"id": 5}, {"pk": 5, "position": None}],
    ]
    assert result["refused"] == [{"id": 3, "code": 404, "message": "No live view"}]
    # A frame error no subscription owns, then the refusal that ends the connection for good.
    assert result["errors"] == [
        {"id": None, "code": 400, "message": "not JSON"},
        {"id": None, "code": 4003, "message": "Sign in to connect."},
    ]
    assert result["statuses"] == ["connecting", "open", "reconnecting", "open", "closed"]
    assert result["status"] == "closed" and result["sockets"] == 2


# docs/protocol.md, "Close codes": after these the same connection would be refused again...
FINAL_CODES = [1009, 4001, 4003, 4009]
# ...and after these (and any other) the client reconnects and subscribes again with a snapshot.
RECONNECT_CODES = [1000, 1001, 1006, 1011, 1012, 4008, 4029, 4999]

CLOSE_SCRIPT = script("""
  const statuses = [], errors = [];
  const live = new LiveClient("/ws/", { ...options, maxDelay: 40 });
  live.on("status", (status) => statuses.push(status));
  live.on("error", (error) => errors.push(error));
  live.subscribe({ model: "todos.Todo", action: "list" }, () => {});
  sockets[0].open();
  const dropped = Date.now();
  sockets[0].drop(argument);  // the close code
  // Far longer than maxDelay: a reconnect, had one been scheduled, has happened by then.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const waited = sockets.length > 1 ? sockets[1].created - dropped : null;
  if (sockets.length > 1) sockets[1].open();
  return { statuses, errors, waited, sockets: sockets.length, resent: sockets[1]?.sent ?? [] };
""")


@pytest.mark.parametrize("code", FINAL_CODES)
def test_the_client_stops_after_a_final_close_code(page, code):
    result = page.evaluate(CLOSE_SCRIPT, code)
    assert result["sockets"] == 1, "it reconnected"
    assert result["statuses"] == ["connecting", "open", "closed"]
    assert [error["code"] for error in result["errors"]] == [code]
    assert result["errors"][0]["message"]


@pytest.mark.parametrize("code", RECONNECT_CODES)
def test_the_client_reconnects_and_resyncs_after_any_other_close_code(page, code):
    result = page.evaluate(CLOSE_SCRIPT, code)
    assert result["sockets"] == 2
    assert result["statuses"] == ["connecting", "open", "reconnecting", "open"]
    assert result["errors"] == []
    assert result["resent"] == [
        {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list", "snapshot": True}
    ]


RESYNC_SCRIPT = script("""
  const errors = [], refused = [];
  const live = new LiveClient("/ws/", options);
  live.on("error", (error) => errors.push(error));
  live.subscribe({ model: "todos.Todo", action: "list" }, record("list"));
  const [socket] = sockets;
  socket.open();
  socket.receive({ type: "broadcast", id: 1, model: "todos.Todo", action: "CREATED",
                   instance: { id: 1 } });
  socket.receive({ type: "reset", id: 1, model: "todos.Todo", message: "re-sync" });
  const afterReset = socket.sent.slice(1);
  // Sent before the server handled the unsubscribe: older than the snapshot on its way.
  socket.receive({ type: "broadcast", id: 1, model: "todos.Todo", action: "UPDATED",
                   instance: { id: 1, stale: true } });
  socket.receive({ type: "snapshot", id: 1, model: "todos.Todo", instances: [{ id: 1 }, { id: 2 }],
                   truncated: false });
  socket.receive({ type: "broadcast", id: 1, model: "todos.Todo", action: "CREATED",
                   instance: { id: 3 } });

  live.subscribe({ model: "todos.Todo", action: "retrieve", lookup_by: 9 }, record("one"),
                 (error) => refused.push(error));
  const sentBefore = socket.sent.length;
  socket.receive({ type: "error", id: 2, code: 500, message: "not started" });
  await until(() => socket.sent.length > sentBefore);
  const retried = socket.sent.slice(sentBefore);
  socket.receive({ type: "error", id: 2, code: 404, message: "gone" });
  return {
    afterReset, errors, refused, retried,
    calls: calls.map(([name, action, data]) => [name, action, data]),  // what it checks: no info
  };
""")


def test_the_client_resyncs_after_a_reset_and_retries_a_failed_subscribe(page):
    result = page.evaluate(RESYNC_SCRIPT)
    assert result["afterReset"] == [
        {"type": "unsubscribe", "id": 1},
        {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list", "snapshot": True},
    ]
    # The broadcast sent before the re-sync is dropped; the snapshot replaces the state.
    assert result["calls"] == [
        ["list", "CREATED", {"id": 1}],
        ["list", "SNAPSHOT", [{"id": 1}, {"id": 2}]],
        ["list", "CREATED", {"id": 3}],
    ]
    # A 5xx is not the end of the subscription: it is heard of, and sent again.
    assert result["errors"] == [
        {"id": 2, "code": 500, "message": "not started",
         "retrying": True},
    ]  # fmt: skip
    assert result["retried"] == [
        {"type": "subscribe", "id": 2, "model": "todos.Todo", "action": "retrieve",
         "lookup_by": 9, "snapshot": False},
    ]  # fmt: skip
    # A refusal still ends it.
    assert result["refused"] == [{"id": 2, "code": 404, "message": "gone"}]


def test_the_client_backs_off_when_the_server_is_full(page):
    result = page.evaluate(CLOSE_SCRIPT, 4013)
    assert result["sockets"] == 2
    assert result["errors"] == [
        {"id": None, "code": 4013, "message": "The server is full.", "retrying": True}
    ]
    # The delay of a fifth failure in a row (half to all of min(40, 1 * 2**5) ms), where any
    # other close waits for the first one's (half to all of 1 ms).
    assert 16 <= result["waited"] <= 60, result["waited"]
    assert result["resent"][0]["snapshot"] is True


# --- protocol 2: identity, transactions, positions and resuming, hello ------------------------

IDENTITY_SCRIPT = script("""
  const live = new LiveClient("/ws/", options);
  const todos = new LiveMap();
  live.subscribe({ model, action: "list", snapshot: true }, (action, data, info) => {
    record("list")(action, data, info);
    todos.apply(action, data, info);
  });
  const [socket] = sockets;
  socket.open();
  // The view's serializer shows no id: `fields = ["title"]`.
  socket.receive(snapshot(1, [10, 11], "e.1"));
  socket.receive(broadcast(1, "UPDATED", 11, "e.2"));
  socket.receive(broadcast(1, "CREATED", "9f3c", "e.3"));
  socket.receive(broadcast(1, "DELETED", 10, "e.4"));
  socket.receive(broadcast(1, "DELETED", 99, "e.5"));  // one it never had
  return { calls, todos: [...todos] };
""")


def test_the_client_keys_objects_by_pk_when_the_serializer_shows_none(page):
    result = page.evaluate(IDENTITY_SCRIPT)
    assert result["calls"] == [
        ["list", "SNAPSHOT", [{"title": "todo 10"}, {"title": "todo 11"}],
         {"truncated": False, "pks": [10, 11], "position": "e.1"}],
        ["list", "UPDATED", {"title": "todo 11"}, {"pk": 11, "position": "e.2"}],
        ["list", "CREATED", {"title": "todo 9f3c"}, {"pk": "9f3c", "position": "e.3"}],
        ["list", "DELETED", {"id": 10, "pk": 10}, {"pk": 10, "position": "e.4"}],
        ["list", "DELETED", {"id": 99, "pk": 99}, {"pk": 99, "position": "e.5"}],
    ]  # fmt: skip
    # LiveMap keeps the state by pk, in the order the objects came.
    assert result["todos"] == [[11, {"title": "todo 11"}], ["9f3c", {"title": "todo 9f3c"}]]


TRANSACTION_SCRIPT = script("""
  const live = new LiveClient("/ws/", options);
  // Which task each callback ran in: the counter goes up once per task the page runs.
  let task = 0;
  const nextTask = () => new Promise((resolve) => setTimeout(() => { task += 1; resolve(); }, 0));
  const seen = [];
  const note = (name) => (action, data, info) => seen.push([name, action, info.pk, task]);
  live.subscribe({ model, action: "list" }, note("list"));
  live.subscribe({ model, action: "retrieve", lookup_by: 2 }, note("one"));
  const done = { model, action: "list", query_params: { done: true } };
  const stop = live.subscribe(done, note("done"));
  live.on("transaction", ({ position, frames }) => {
    seen.push(["transaction", position, frames.map((frame) => [frame.id, frame.pk]), task]);
  });
  const [socket] = sockets;
  socket.open();
  // One transaction, its frames in three tasks (three network reads), for two subscriptions.
  socket.receive(broadcast(1, "CREATED", 1, "e.7", true));
  await nextTask();
  socket.receive(broadcast(2, "UPDATED", 2, "e.7", true));
  socket.receive(broadcast(3, "UPDATED", 2, "e.7", true));
  stop();  // in flight when it stopped: dropped
  await nextTask();
  const beforeLast = seen.length;
  socket.receive(broadcast(1, "DELETED", 3, "e.7"));
  const lastTask = task;
  await nextTask();
  // A transaction of one frame is applied when it comes.
  socket.receive(broadcast(1, "UPDATED", 1, "e.8"));
  return { seen, beforeLast, lastTask };
""")


def test_a_transaction_reaches_the_callbacks_at_once_in_one_task(page):
    result = page.evaluate(TRANSACTION_SCRIPT)
    assert result["beforeLast"] == 0, "a callback ran before the transaction's last frame came"
    last = result["lastTask"]
    assert result["seen"] == [
        ["list", "CREATED", 1, last],
        ["one", "UPDATED", 2, last],
        ["list", "DELETED", 3, last],
        ["transaction", "e.7", [[1, 1], [2, 2], [1, 3]], last],
        ["list", "UPDATED", 1, last + 1],
        ["transaction", "e.8", [[1, 1]], last + 1],
    ]


RESUME_SCRIPT = script("""
  const live = new LiveClient("/ws/", options);
  live.subscribe({ model, action: "list", snapshot: true }, record("list"));
  live.subscribe({ model, action: "retrieve", lookup_by: 2 }, record("one"));  // no snapshot
  const first = sockets[0];
  first.open();
  first.receive(snapshot(1, [1], "e.1"));
  first.receive(broadcast(1, "CREATED", 2, "e.2"));
  first.receive(broadcast(2, "UPDATED", 2, "e.3"));  // another subscription's: the socket's latest
  first.receive(broadcast(1, "UPDATED", 1, null));  // a change the log does not hold
  first.receive(broadcast(1, "UPDATED", 1, "e.4", true));  // cut off by the close: dropped
  const second = await reconnect();
  // A subscription first sent on this socket: its positions start with its own snapshot.
  live.subscribe({ model, action: "list", snapshot: true }, record("new"));
  second.receive(snapshot(3, [5], "e.9"));
  second.receive(broadcast(3, "CREATED", 6, "e.10"));
  // Subscription 1's resume was not answered before this socket went too: the same again.
  const third = await reconnect();
  return {
    calls: calls.map(([name, action, , info]) => [name, action, info.pk ?? info.pks]),
    first: subscribes(first), second: subscribes(second), third: subscribes(third),
  };
""")


def test_the_client_resumes_from_the_latest_position_after_a_reconnect(page):
    result = page.evaluate(RESUME_SCRIPT)
    assert result["calls"] == [
        ["list", "SNAPSHOT", [1]],
        ["list", "CREATED", 2],
        ["one", "UPDATED", 2],
        ["list", "UPDATED", 1],
        ["new", "SNAPSHOT", [5]],
        ["new", "CREATED", 6],
    ]
    list_, one = {"model": "todos.Todo", "action": "list"}, {
        "model": "todos.Todo", "action": "retrieve", "lookup_by": 2,
    }  # fmt: skip
    assert result["first"] == [
        {"type": "subscribe", "id": 1, **list_, "snapshot": True},
        {"type": "subscribe", "id": 2, **one, "snapshot": False},
    ]
    # From e.3: the last position of a whole transaction, whichever subscription it was for. The
    # retrieve had no snapshot, so it has no state to resume: it asks for one.
    assert result["second"] == [
        {"type": "subscribe", "id": 1, **list_, "snapshot": True, "resume": "e.3"},
        {"type": "subscribe", "id": 2, **one, "snapshot": True},
        {"type": "subscribe", "id": 3, **list_, "snapshot": True},
    ]
    assert result["third"] == [
        {"type": "subscribe", "id": 1, **list_, "snapshot": True, "resume": "e.3"},
        {"type": "subscribe", "id": 2, **one, "snapshot": True},
        {"type": "subscribe", "id": 3, **list_, "snapshot": True, "resume": "e.10"},
    ]


RESUMED_SCRIPT = script("""
  const live = new LiveClient("/ws/", options);
  const todos = new LiveMap();
  live.subscribe({ model, action: "list", snapshot: true }, (action, data, info) => {
    record("list")(action, data, info);
    todos.apply(action, data, info);
  });
  live.subscribe({ model, action: "retrieve", lookup_by: 4, snapshot: true }, record("one"));
  const transactions = [];
  live.on("transaction", (transaction) => transactions.push(transaction));
  const first = sockets[0];
  first.open();
  first.receive(snapshot(1, [1, 2, 3], "e.1"));
  first.receive(snapshot(2, [4], "e.1"));
  const second = await reconnect();
  const sent = subscribes(second);
  calls.length = 0;
  // Each catch-up is one frame, applied in one step.
  const change = (action, pk) => ({ action, pk, instance: { id: pk, pk } });
  const beforeResumed = calls.length;
  second.receive({
    type: "resumed", id: 1, model, position: "e.6",
    broadcasts: [change("UPDATED", 2), change("DELETED", 3), change("CREATED", 7)],
  });
  second.receive({
    type: "resumed", id: 2, model, position: "e.6",
    broadcasts: [{ action: "DELETED", pk: 4, instance: { id: 4, pk: 4 } }],
  });
  second.receive(broadcast(1, "UPDATED", 1, "e.8"));  // live from there
  const third = await reconnect();
  return { sent, beforeResumed, calls, transactions, todos: [...todos.keys()],
           third: subscribes(third).map((frame) => frame.resume) };
""")


def test_resumed_applies_the_catch_up_without_a_snapshot(page):
    result = page.evaluate(RESUMED_SCRIPT)
    assert [frame["resume"] for frame in result["sent"]] == ["e.1", "e.1"]
    assert result["beforeResumed"] == 0
    assert [(name, action, info) for name, action, _, info in result["calls"]] == [
        ("list", "UPDATED", {"pk": 2, "position": "e.6", "resumed": True}),
        ("list", "DELETED", {"pk": 3, "position": "e.6", "resumed": True}),
        ("list", "CREATED", {"pk": 7, "position": "e.6", "resumed": True}),
        ("one", "DELETED", {"pk": 4, "position": "e.6", "resumed": True}),
        ("list", "UPDATED", {"pk": 1, "position": "e.8"}),
    ]
    assert [
        (transaction["position"], [frame["pk"] for frame in transaction["frames"]])
        for transaction in result["transactions"]
    ] == [("e.6", [2, 3, 7]), ("e.6", [4]), ("e.8", [1])]
    assert result["todos"] == [1, 2, 7]
    assert result["third"] == ["e.8", "e.8"]


RESUME_FAILED_SCRIPT = script("""
  const live = new LiveClient("/ws/", options);
  const todos = new LiveMap();
  live.subscribe({ model, action: "list", snapshot: true }, (action, data, info) => {
    record("list")(action, data, info);
    todos.apply(action, data, info);
  });
  const first = sockets[0];
  first.open();
  first.receive(snapshot(1, [1, 2], "e.1"));
  const second = await reconnect();
  second.receive(broadcast(1, "DELETED", 1, "e.3", true));  // held: then the resume failed
  second.receive({ type: "resume_failed", id: 1, model, reason: "expired", message: "Too old." });
  second.receive(snapshot(1, [2, 5], "e.4"));
  second.receive(broadcast(1, "CREATED", 6, "e.5"));
  const third = await reconnect();
  return {
    sent: subscribes(second), third: subscribes(third),
    calls: calls.map(([, action, , info]) => [action, info.pk ?? info.pks]),
    todos: [...todos.keys()],
  };
""")


def test_a_failed_resume_is_followed_by_a_snapshot_that_replaces_the_state(page):
    result = page.evaluate(RESUME_FAILED_SCRIPT)
    assert result["sent"][0]["resume"] == "e.1"
    assert result["calls"] == [["SNAPSHOT", [1, 2]], ["SNAPSHOT", [2, 5]], ["CREATED", 6]]
    assert result["todos"] == [2, 5, 6]
    assert result["third"][0]["resume"] == "e.5"


RESET_SCRIPT = script("""
  const live = new LiveClient("/ws/", options);
  live.subscribe({ model, action: "list", snapshot: true }, record("list"));
  const first = sockets[0];
  first.open();
  first.receive(snapshot(1, [1], "e.1"));
  first.receive(broadcast(1, "CREATED", 2, "e.2"));
  first.receive({ type: "reset", id: 1, model, message: "re-sync" });
  const afterReset = first.sent.slice(1);
  // Down before the re-sync's snapshot came: what it holds may be wrong, so no resume.
  const second = await reconnect();
  second.receive(snapshot(1, [1, 2], "e.5"));
  const third = await reconnect();
  return { afterReset, second: subscribes(second), third: subscribes(third) };
""")


def test_after_a_reset_the_client_resyncs_with_a_snapshot_not_a_resume(page):
    result = page.evaluate(RESET_SCRIPT)
    subscribe = {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list"}
    assert result["afterReset"] == [
        {"type": "unsubscribe", "id": 1},
        {**subscribe, "snapshot": True},
    ]
    assert result["second"] == [{**subscribe, "snapshot": True}]
    # Once the snapshot is in, it resumes again.
    assert result["third"] == [{**subscribe, "snapshot": True, "resume": "e.5"}]


NO_RESUME_SCRIPT = script("""
  const live = new LiveClient("/ws/", { ...options, resume: argument });
  live.subscribe({ model, action: "list", snapshot: true }, record("list"));
  const first = sockets[0];
  first.open();
  first.receive(snapshot(1, [1], "e.1"));
  const second = await reconnect();
  second.receive(snapshot(1, [1, 2], "e.2"));
  return { second: subscribes(second), calls: calls.map(([, action, , info]) => [action, info]) };
""")


def test_the_resume_option_false_always_asks_for_a_snapshot(page):
    result = page.evaluate(NO_RESUME_SCRIPT, False)
    assert result["second"] == [
        {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list", "snapshot": True}
    ]
    # The positions are still there to see.
    assert result["calls"] == [
        ["SNAPSHOT", {"truncated": False, "pks": [1], "position": "e.1"}],
        ["SNAPSHOT", {"truncated": False, "pks": [1, 2], "position": "e.2"}],
    ]
    assert page.evaluate(NO_RESUME_SCRIPT, True)["second"][0]["resume"] == "e.1"


HELLO_SCRIPT = script("""
  const live = new LiveClient("/ws/", options);
  const heard = [];
  live.on("hello", (frame) => heard.push(frame.protocol));
  live.subscribe({ model, action: "list" }, record("list"));
  const answer = live.hello();  // before the socket opens: asked once it does
  const first = sockets[0];
  first.open();
  const asked = first.sent.slice();
  const second = await reconnect();  // unanswered on the first socket: asked again
  const hello = {
    type: "hello", protocol: 2, server: "rest_live", position: "e.3",
    limits: { snapshot_limit: 1000 }, models: { "todos.Todo": ["list", "retrieve"] },
  };
  second.receive(hello);
  const answered = await answer;
  const third = await reconnect();  // answered: not asked again
  live.close();
  const afterClose = await live.hello().then(() => "resolved", (error) => error.message);
  return { asked, second: second.sent, third: third.sent, answered, heard, afterClose };
""")


def test_hello_asks_the_server_only_when_called(page):
    result = page.evaluate(HELLO_SCRIPT)
    subscribe = {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list"}
    assert result["asked"] == [{"type": "hello"}, {**subscribe, "snapshot": False}]
    assert result["second"] == [{"type": "hello"}, {**subscribe, "snapshot": True}]
    assert result["third"] == [{**subscribe, "snapshot": True}]
    assert result["answered"]["protocol"] == 2
    assert result["answered"]["models"] == {"todos.Todo": ["list", "retrieve"]}
    assert result["heard"] == [2]
    assert result["afterClose"] == "The client is closed."
