"""rest-live.js in Chromium against scripted sockets: no server, so every frame and close is chosen.

The module is served to the page straight from the template (it is copied into bakes unrendered),
through Playwright's request routing, at a made-up origin.
"""

from __future__ import annotations

import pytest

from tests.combos import TEMPLATE_DIR

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


CLIENT_SCRIPT = """
async () => {
  const { LiveClient, socketUrl } = await import("/static/rest_live/rest-live.js");
  const sockets = [];
  class ScriptedSocket {
    constructor(url, protocols) {
      Object.assign(this, { url, protocols, sent: [], readyState: 0 });
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
  const statuses = [], calls = [], errors = [], refused = [];
  const live = new LiveClient("/ws/subscribe/", {
    WebSocket: ScriptedSocket, token: "k3y", minDelay: 1, maxDelay: 8,
  });
  live.on("status", (status) => statuses.push(status));
  live.on("error", (error) => errors.push(error));
  const record = (name) => (action, data, info) => calls.push([name, action, data, info]);
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
}
"""


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
    assert result["calls"] == [
        ["list", "SNAPSHOT", [{"id": 1}], {"truncated": True}],
        ["one", "CREATED", {"id": 5}, {}],
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

CLOSE_SCRIPT = """
async (code) => {
  const { LiveClient } = await import("/static/rest_live/rest-live.js");
  const sockets = [];
  class ScriptedSocket {
    constructor(url, protocols) {
      Object.assign(this, { sent: [], readyState: 0, created: Date.now() });
      sockets.push(this);
    }
    send(text) { this.sent.push(JSON.parse(text)); }
    close() { this.readyState = 3; }
    open() { this.readyState = 1; this.onopen(); }
    drop(code) { this.readyState = 3; this.onclose({ code, reason: "" }); }
  }
  const statuses = [], errors = [];
  const live = new LiveClient("/ws/", { WebSocket: ScriptedSocket, minDelay: 1, maxDelay: 40 });
  live.on("status", (status) => statuses.push(status));
  live.on("error", (error) => errors.push(error));
  live.subscribe({ model: "todos.Todo", action: "list" }, () => {});
  sockets[0].open();
  const dropped = Date.now();
  sockets[0].drop(code);
  // Far longer than maxDelay: a reconnect, had one been scheduled, has happened by then.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const waited = sockets.length > 1 ? sockets[1].created - dropped : null;
  if (sockets.length > 1) sockets[1].open();
  return { statuses, errors, waited, sockets: sockets.length, resent: sockets[1]?.sent ?? [] };
}
"""


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


RESYNC_SCRIPT = """
async () => {
  const { LiveClient } = await import("/static/rest_live/rest-live.js");
  const sockets = [];
  class ScriptedSocket {
    constructor() { Object.assign(this, { sent: [], readyState: 0 }); sockets.push(this); }
    send(text) { this.sent.push(JSON.parse(text)); }
    close() { this.readyState = 3; }
    open() { this.readyState = 1; this.onopen(); }
    receive(frame) { this.onmessage({ data: JSON.stringify(frame) }); }
  }
  const until = async (done) => {
    const deadline = Date.now() + 5000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error("timed out");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  const calls = [], errors = [], refused = [];
  const live = new LiveClient("/ws/", { WebSocket: ScriptedSocket, minDelay: 1, maxDelay: 4 });
  live.on("error", (error) => errors.push(error));
  const record = (name) => (action, data) => calls.push([name, action, data]);
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
  return { afterReset, calls, errors, refused, retried };
}
"""


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
