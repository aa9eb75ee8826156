"""The connection lifecycle (docs/protocol.md): acknowledgements, subscription ids, model labels,
and the first frame about a row created while its subscribe was being set up.

A subscribe is silent unless it asks for an ack, so these tests send their frames by hand rather
than through LiveTestCase.subscribe, which asks for one.
"""

from unittest import mock

from django.contrib.auth.models import Group

from rest_live.subscriber import Subscriber
from tests.groups import served_at
from tests.live import LiveTestCase


def subscribe_frame(request_id, **fields):
    return {
        "type": "subscribe",
        "id": request_id,
        "model": "auth.Group",
        "action": "list",
        **fields,
    }


class AcknowledgementTests(LiveTestCase):
    application = served_at("ws/")
    path = "/ws/"

    async def test_an_acked_subscribe_is_live_once_subscribed_arrives(self):
        socket = await self.connect()
        await socket.send_json_to(subscribe_frame(7, ack=True))
        self.assertEqual(await self.receive(socket), {"type": "subscribed", "id": 7})
        group = await self.db(Group.objects.create, name="right after the ack")
        await self.assertBroadcast(socket, "CREATED", {"id": group.pk}, id=7)

    async def test_with_a_snapshot_the_ack_follows_it(self):
        await self.db(Group.objects.create, name="before")
        socket = await self.connect()
        await socket.send_json_to(subscribe_frame("s", snapshot=True, ack=True))
        snapshot = await self.receive(socket)
        self.assertEqual((snapshot["type"], snapshot["id"]), ("snapshot", "s"))
        self.assertEqual(await self.receive(socket), {"type": "subscribed", "id": "s"})

    async def test_an_acked_unsubscribe_ends_the_broadcasts(self):
        socket = await self.connect()
        await socket.send_json_to(subscribe_frame(1, ack=True))
        await self.receive(socket)
        await socket.send_json_to({"type": "unsubscribe", "id": 1, "ack": True})
        self.assertEqual(await self.receive(socket), {"type": "unsubscribed", "id": 1})
        await self.db(Group.objects.create, name="after unsubscribing")
        await self.assertNothing(socket)

    async def test_without_ack_success_is_silent(self):
        socket = await self.connect()
        await socket.send_json_to(subscribe_frame(1))
        await self.assertNothing(socket)
        await socket.send_json_to({"type": "unsubscribe", "id": 1})
        await self.assertNothing(socket)

    async def test_ack_must_be_a_boolean(self):
        socket = await self.connect()
        await socket.send_json_to(subscribe_frame(1, ack="yes"))
        error = await self.assertError(socket, 400, id=1)
        self.assertIn("'ack' must be true or false", error["message"])
        await socket.send_json_to({"type": "unsubscribe", "id": 1, "ack": 1})
        await self.assertError(socket, 400, id=1)

    async def test_a_refused_subscribe_gets_its_error_and_no_ack(self):
        socket = await self.connect()
        await socket.send_json_to({**subscribe_frame(1, ack=True), "model": "nope.Nope"})
        await self.assertError(socket, 404, id=1)
        await self.assertNothing(socket)

    async def test_7_and_the_string_7_are_two_subscriptions_echoed_as_sent(self):
        socket = await self.connect()
        await self.subscribe(socket, "auth.Group", id=7)
        await self.subscribe(socket, "auth.Group", id="7")
        await self.db(Group.objects.create, name="twice")
        ids = [(await self.assertBroadcast(socket, "CREATED"))["id"] for _ in range(2)]
        self.assertCountEqual(ids, [7, "7"])

    async def test_the_model_is_echoed_as_its_label_whatever_the_spelling(self):
        socket = await self.connect()
        await self.subscribe(socket, "AUTH.group", id=1)
        await self.db(Group.objects.create, name="spelled")
        message = await self.assertBroadcast(socket, "CREATED", id=1)
        self.assertEqual(message["model"], "auth.Group")


def committing_first(method):
    """`method` of Subscriber, made to commit a new group just before it reads the database: a
    write that lands while a subscribe is being set up, every time."""

    def racing(subscriber, *args):
        Group.objects.create(name="raced")
        return method(subscriber, *args)

    return racing


class FirstFrameTests(LiveTestCase):
    application = AcknowledgementTests.application
    path = "/ws/"

    async def test_a_row_created_during_a_subscribe_is_created_to_it(self):
        socket = await self.connect()
        with mock.patch.object(Subscriber, "visible_now", committing_first(Subscriber.visible_now)):
            sub = await self.subscribe(socket, "auth.Group")
        # Its change reaches the socket after the subscription read the row as already there.
        await self.assertBroadcast(socket, "CREATED", {"name": "raced"}, id=sub)

    async def test_a_snapshot_that_has_the_row_gets_it_as_updated(self):
        socket = await self.connect()
        with mock.patch.object(Subscriber, "snapshot", committing_first(Subscriber.snapshot)):
            snapshot = await self.subscribe_with_snapshot(socket, "auth.Group")
        self.assertSnapshot(snapshot, ["raced"], field="name")
        # Newer than the snapshot or not, it must not show the client a second copy as new.
        await self.assertNothingOrUpdated(socket, snapshot["id"])

    async def assertNothingOrUpdated(self, socket, request_id):
        if await socket.receive_nothing(timeout=0.3):
            socket.assert_alive()
            return
        await self.assertBroadcast(socket, "UPDATED", {"name": "raced"}, id=request_id)
