"""LiveTestCase, the base class for tests of live views (examples: todos/tests/test_live.py)."""

import contextlib
import inspect
import itertools

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import TransactionTestCase
from django.test.utils import CaptureQueriesContext

from rest_live.testing import async_test, open_socket, subscribe_frame


class LiveTestCase(TransactionTestCase):
    """A TransactionTestCase (so `on_commit` broadcasts fire) for websocket tests.

    Every `async def test_*` runs `asyncSetUp()`, the test and `asyncTearDown()` in its own event
    loop; sockets opened with `connect()` are closed for you. `self.client` stays Django's. The
    assertions are the sockets' own (`rest_live.testing.APICommunicator`), which pytest tests
    use too (rest_live/pytest_plugin.py).
    """

    reset_sequences = True  # pks start at 1 in every test, so tests can name them
    application = None  # defaults to config.asgi.application, the project's real ASGI app
    path = "/ws/subscribe/"
    timeout = 3

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name, method in list(vars(cls).items()):
            if name.startswith("test") and inspect.iscoroutinefunction(method):
                setattr(cls, name, async_test(method))

    async def asyncSetUp(self):
        self._sockets = []
        self._request_ids = itertools.count(1)

    async def asyncTearDown(self):
        for socket in self._sockets:
            await socket.close()  # quietly, when a timed-out assertion has ended it already

    async def connect(self, user=None, path=None, headers=(), subprotocols=None):
        """An open socket, anonymous or logged in as `user`; `.subprotocol` is the accepted one."""
        application = self.application
        if application is None:
            from config.asgi import application
        socket = await open_socket(
            application, path or self.path, user, headers, subprotocols, self.timeout
        )
        self._sockets.append(socket)
        return socket

    async def subscribe(self, socket, model, action="list", **fields):
        """Subscribe and return the subscription id, once the server says it is live (ack)."""
        request_id = fields.pop("id", None) or next(self._request_ids)
        return await socket.subscribe(model, action, id=request_id, timeout=self.timeout, **fields)

    async def subscribe_with_snapshot(self, socket, model, action="list", **fields):
        """Subscribe with `"snapshot": true` and return the snapshot frame; its `id` is the sub's.

        The snapshot is the first reply, so its arrival also proves the subscription is set up.
        """
        request_id = fields.pop("id", None) or next(self._request_ids)
        return await socket.subscribe_with_snapshot(
            model, action, id=request_id, timeout=self.timeout, **fields
        )

    async def unsubscribe(self, socket, request_id):
        """Unsubscribe, and return once the server says nothing more will come for it (ack)."""
        await socket.unsubscribe(request_id, timeout=self.timeout)

    async def receive(self, socket):
        """The next frame; fails clearly if none comes in time or the consumer died."""
        return await socket.receive_frame(self.timeout)

    async def assertBroadcast(self, socket, action, instance=None, id=None):
        """The next frame is a broadcast of `action`; `instance` items must match. Returns it."""
        return await socket.expect_broadcast(action, instance, id, timeout=self.timeout)

    def assertSnapshot(self, snapshot, values, field="title", truncated=False):
        """The snapshot's instances have these `field` values, in this order."""
        self.assertEqual([item[field] for item in snapshot["instances"]], list(values), snapshot)
        self.assertIs(snapshot["truncated"], truncated, snapshot)

    async def assertReset(self, socket, id):
        """The next frame tells subscription `id` to re-sync (docs/protocol.md, reset)."""
        message = await self.receive(socket)
        self.assertEqual((message.get("type"), message.get("id")), ("reset", id), message)
        return message

    async def resync(self, socket, request_id, model, action="list", **fields):
        """Re-sync a subscription as a client does after a reset; returns the fresh snapshot.

        Frames still on their way for it are skipped, as the protocol says to.
        """
        message = await self.resubscribe(socket, request_id, model, action, **fields)
        self.assertEqual(message.get("type"), "snapshot", message)
        return message

    async def resubscribe(self, socket, request_id, model, action="list", **fields):
        """Re-sync as `resync` does, and return the answer: the snapshot, or the error that
        refuses the subscription now (after a reset for a login that ended, say)."""
        await socket.send_json_to({"type": "unsubscribe", "id": request_id})
        await socket.send_json_to(
            subscribe_frame(request_id, model, action, snapshot=True, **fields)
        )
        while True:
            message = await self.receive(socket)
            if message.get("id") == request_id and message.get("type") != "broadcast":
                return message

    async def assertError(self, socket, code, id=None):
        message = await self.receive(socket)
        self.assertEqual(message.get("type"), "error", message)
        self.assertEqual(message["code"], code, message)
        self.assertEqual(message["id"], id, message)
        return message

    async def assertClosed(self, socket, code):
        """The server closes the socket with `code`."""
        try:
            message = await socket.receive_output(timeout=self.timeout)
        except TimeoutError:
            raise AssertionError(f"the socket was not closed within {self.timeout} s") from None
        self.assertEqual((message["type"], message.get("code")), ("websocket.close", code), message)

    async def assertNothing(self, socket, timeout=0.2):
        """Nothing arrives within `timeout`, and the consumer is still alive."""
        await socket.expect_nothing(timeout)

    async def create_user(self, username, **fields):
        return await database_sync_to_async(get_user_model().objects.create_user)(
            username=username, **fields
        )

    @contextlib.asynccontextmanager
    async def captureQueries(self):
        """Collect, into the list it yields, the SQL that the test and the consumers run inside
        the block, less the change log's reads: the feed's timed polls make those at any moment,
        so counting them would make a count flaky."""
        captured = CaptureQueriesContext(connection)
        statements = []
        # `connection` is each thread's own: capture in the database thread, which the test's
        # `db()` calls and the consumers' ORM work share.
        await self.db(captured.__enter__)
        try:
            yield statements
        finally:
            await self.db(captured.__exit__, None, None, None)
            statements.extend(await self.db(_outside_the_change_log, captured))

    @staticmethod
    async def db(function, *args, **kwargs):
        """Run ORM code from an async test."""
        return await database_sync_to_async(function)(*args, **kwargs)


def _outside_the_change_log(captured):
    return [
        query["sql"]
        for query in captured.captured_queries
        if '"rest_live_change"' not in query["sql"]
    ]
