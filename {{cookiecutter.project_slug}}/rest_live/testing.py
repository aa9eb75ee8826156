"""Tools for testing live views: a communicator DRF views accept, which speaks the protocol
(subscribe, expect a broadcast, expect nothing); async setup; logged-in headers.

`tests.live.LiveTestCase` (unittest style) and `rest_live.pytest_plugin` (pytest fixtures) are both
built on these, so the two styles wait, match and fail the same way.
"""

import functools
import itertools

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

_client_ports = itertools.count(50000)

# Seconds a test waits for a frame it expects, and for a socket to be accepted.
TIMEOUT = 3


def _test_host():
    """A host name the project's origin validation accepts under the test runner."""
    hosts = [host for host in settings.ALLOWED_HOSTS if host != "*"]
    if "testserver" in hosts or not hosts:
        return "testserver"
    return hosts[0].lstrip(".")


class APICommunicator(WebsocketCommunicator):
    """A websocket test client with a scope complete enough for DRF views.

    It sends `Host` and `Origin` for a test host, so an `AllowedHostsOriginValidator`-wrapped
    application accepts it, plus any `headers` given (pairs of str or bytes).
    """

    def __init__(self, application, path, headers=None, subprotocols=None, spec_version=None):
        host = _test_host()
        given = [(_bytes(name).lower(), _bytes(value)) for name, value in headers or ()]
        names = {name for name, _ in given}
        defaults = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
        headers = [pair for pair in defaults if pair[0] not in names] + given
        super().__init__(application, path, headers, subprotocols, spec_version)
        self.scope["server"] = (host, 80)
        self.scope["client"] = ("127.0.0.1", next(_client_ports))
        self.subprotocol = None  # the one the server accepted, once connected by open_socket()
        self._request_ids = itertools.count(1)
        self._crash_reported = False

    # Channels waits 1 s for a connect or a frame by default: a loaded CI machine can take
    # longer to evaluate a change, and a test that waits longer costs nothing when it passes.
    async def connect(self, timeout=TIMEOUT):
        return await super().connect(timeout)

    async def receive_from(self, timeout=TIMEOUT):
        return await super().receive_from(timeout)

    async def receive_json_from(self, timeout=TIMEOUT):
        return await super().receive_json_from(timeout)

    # And 1 s for the consumer to finish disconnecting, then cancels it: on a loaded machine
    # that cut letting go of its subscriptions short, in the middle of a test.
    async def disconnect(self, code=1000, timeout=TIMEOUT):
        await super().disconnect(code, timeout)

    async def receive_nothing(self, timeout=0.1, interval=0.01):
        """True if nothing arrives in `timeout`; fails, rather than passing, if the app has died."""
        self.assert_alive()
        nothing = await super().receive_nothing(timeout, interval)
        self.assert_alive()
        return nothing

    def _crash(self):
        """The exception the application raised, if it crashed."""
        if self.future.done() and not self.future.cancelled():
            return self.future.exception()
        return None

    def assert_alive(self):
        if self.future.done():
            if self._crash() is not None:
                self._crash_reported = True
                raise AssertionError("The websocket application crashed.") from self._crash()
            raise AssertionError(
                "The websocket application has stopped (closed, or cancelled by a timed-out "
                "receive), so 'nothing arrived' would prove nothing."
            )

    async def close(self):
        """Disconnect, as a test's cleanup does, and raise what the application crashed with, so
        a test does not pass over a crash.

        An application a timed-out receive has cancelled (asgiref does that) is already gone:
        there is nothing to close, and the timeout has failed the test already, so this adds no
        second error (a `CancelledError`) to that failure. Nor does it raise a crash again that
        an assertion has reported.
        """
        if not self.future.done():
            await self.disconnect()
        elif self._crash() is not None and not self._crash_reported:
            raise self._crash()

    async def receive_frame(self, timeout=TIMEOUT):
        """The next JSON frame; fails clearly if none comes in `timeout` s or the consumer died."""
        __tracebackhide__ = True  # pytest shows the failing test's line, not these
        self.assert_alive()
        try:
            return await self.receive_json_from(timeout=timeout)
        except Exception as error:
            if self._crash() is not None:
                if error is self._crash() and isinstance(error.__context__, TimeoutError):
                    # asgiref re-raises the crash in handling its own timeout: not the story.
                    error.__suppress_context__ = True
                self.assert_alive()  # it crashed while we waited: say so, once
            if isinstance(error, TimeoutError):
                raise AssertionError(f"nothing arrived within {timeout} s") from None
            raise

    async def subscribe(self, model, action="list", *, timeout=TIMEOUT, **fields):
        """Subscribe and return the subscription id, once the server says it is live (ack).

        `id` is numbered for you unless given; other `fields` (`lookup_by`, `view_kwargs`,
        `query_params`) go into the frame as they are.
        """
        request_id = fields.pop("id", None) or next(self._request_ids)
        await self.send_json_to(subscribe_frame(request_id, model, action, ack=True, **fields))
        await self._acknowledged("subscribed", request_id, timeout)
        return request_id

    async def subscribe_with_snapshot(self, model, action="list", *, timeout=TIMEOUT, **fields):
        """Subscribe with `"snapshot": true` and return the snapshot frame; its `id` is the sub's.

        The snapshot is the first reply, so its arrival also proves the subscription is set up.
        """
        request_id = fields.pop("id", None) or next(self._request_ids)
        await self.send_json_to(subscribe_frame(request_id, model, action, snapshot=True, **fields))
        message = await self.receive_frame(timeout)
        if message.get("type") != "snapshot" or message.get("id") != request_id:
            raise AssertionError(
                f"expected the snapshot of subscription {request_id!r}, got {message}"
            )
        return message

    async def unsubscribe(self, request_id, *, timeout=TIMEOUT):
        """Unsubscribe, and return once the server says nothing more will come for it (ack)."""
        await self.send_json_to({"type": "unsubscribe", "id": request_id, "ack": True})
        await self._acknowledged("unsubscribed", request_id, timeout)

    async def _acknowledged(self, kind, request_id, timeout):
        """Wait for the ack of `request_id`, failing on any other frame, so no fixed sleep is
        needed and nothing unexpected slips by."""
        reply = await self.receive_frame(timeout)
        if reply != {"type": kind, "id": request_id}:
            raise AssertionError(f"expected {kind!r} for {request_id!r}, got {reply}")

    async def expect_broadcast(self, action, instance=None, id=None, *, timeout=TIMEOUT):
        """The next frame is a broadcast of `action` (CREATED, UPDATED or DELETED), for
        subscription `id` if given, whose instance has the items of `instance`. Returns it."""
        __tracebackhide__ = True
        message = await self.receive_frame(timeout)
        wanted = f"a {action} broadcast" + ("" if id is None else f" for subscription {id!r}")
        if (
            message.get("type") != "broadcast"
            or message.get("action") != action
            or (id is not None and message.get("id") != id)
        ):
            raise AssertionError(f"expected {wanted}, got {message}")
        for field, value in (instance or {}).items():
            if message["instance"].get(field) != value:
                raise AssertionError(
                    f"expected {wanted} with {field}={value!r}, "
                    f"got {field}={message['instance'].get(field)!r}: {message}"
                )
        return message

    async def expect_nothing(self, timeout=0.2):
        """Nothing arrives within `timeout` s, and the consumer is still alive (a dead one would
        send nothing too, so that fails)."""
        __tracebackhide__ = True
        if not await self.receive_nothing(timeout=timeout):
            raise AssertionError(f"unexpected frame: {await self.receive_json_from()}")


class ClientState:
    """What a client holds of its subscriptions, built only from the frames it received, as
    docs/protocol.md tells a client to: {subscription id: {pk: instance}}, and the position of
    the last frame applied. Frames of a transaction (`more`) are applied when its last one
    arrives; `dropped()` forgets those still held, as a closed socket does."""

    def __init__(self):
        self.objects = {}
        self.position = None
        self._pending = []

    def apply(self, frame):
        kind, request_id = frame.get("type"), frame.get("id")
        if kind == "broadcast":
            self._pending.append(frame)
            if frame.get("more"):
                return  # neither applied nor its position kept until the transaction ends
            pending, self._pending = self._pending, []
            for item in pending:
                self._apply_one(self.objects.setdefault(item["id"], {}), item)
        elif kind == "snapshot":
            self.objects[request_id] = dict(zip(frame["pks"], frame["instances"], strict=True))
        elif kind == "resumed":
            held = self.objects.setdefault(request_id, {})
            for item in frame["broadcasts"]:
                self._apply_one(held, item)
        elif kind == "resume_failed":
            self.objects.pop(request_id, None)  # a snapshot follows
        if frame.get("position") is not None:
            self.position = frame["position"]

    def dropped(self):
        """The socket closed: a transaction cut off with it is sent again on resuming."""
        self._pending = []

    def of(self, request_id):
        """{pk: instance} of subscription `request_id` (JSON keys: a pk is as the frame had it)."""
        return self.objects.get(request_id, {})

    @staticmethod
    def _apply_one(held, item):
        if item["action"] == "DELETED":
            held.pop(item["pk"], None)
        else:
            held[item["pk"]] = item["instance"]


async def open_socket(application, path, user=None, headers=(), subprotocols=None, timeout=TIMEOUT):
    """A connected `APICommunicator`, anonymous or logged in as `user`; fails if refused.

    `.subprotocol` is the one the server accepted. Disconnect it when done.
    """
    headers = list(headers)
    if user is not None:
        headers += await get_headers_for_user(user)
    socket = APICommunicator(application, path, headers, subprotocols)
    connected, subprotocol_or_code = await socket.connect(timeout=timeout)
    if not connected:
        raise AssertionError(f"the websocket was refused (close code {subprotocol_or_code})")
    socket.subprotocol = subprotocol_or_code
    return socket


def subscribe_frame(request_id, model, action, **fields):
    """A subscribe frame (docs/protocol.md); `fields` add `lookup_by`, `ack`, `snapshot`..."""
    return {"type": "subscribe", "id": request_id, "model": model, "action": action, **fields}


def _bytes(value):
    return value if isinstance(value, bytes) else str(value).encode("latin1")


def async_test(test):
    """Run `asyncSetUp()`, the test and `asyncTearDown()` in the test's own event loop."""

    @functools.wraps(test)
    async def run(self, *args, **kwargs):
        set_up = getattr(self, "asyncSetUp", None)
        if set_up is not None:
            await set_up()
        try:
            return await test(self, *args, **kwargs)
        finally:
            tear_down = getattr(self, "asyncTearDown", None)
            if tear_down is not None:
                await tear_down()

    return run


async def get_headers_for_user(user):
    """Headers carrying a logged-in session for `user`, for `APICommunicator(headers=...)`."""
    return await database_sync_to_async(_session_headers)(user)


def _session_headers(user):
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    return [(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie.value}".encode())]
