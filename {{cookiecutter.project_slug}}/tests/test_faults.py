"""Faults stay contained: a failing evaluation, and sockets that come and go by the thousand."""

from channels.auth import AuthMiddlewareStack
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from django.contrib.auth.models import Group
from django.db import OperationalError
from django.urls import path
from rest_framework import viewsets

from rest_live import subscriptions
from rest_live.mixins import RealtimeMixin
from rest_live.routers import RealtimeRouter
from tests.groups import GroupSerializer
from tests.live import LiveTestCase


class FragileGroupViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    """Its queries fail, as if the database went away, for subscriptions that ask for it."""

    queryset = Group.objects.all()
    serializer_class = GroupSerializer
    permission_classes = []
    failing = False

    def get_queryset(self):
        if self.failing and "fragile" in self.request.query_params:
            raise OperationalError("the database went away")
        return super().get_queryset()


router = RealtimeRouter()
router.register(FragileGroupViewSet)
application = AuthMiddlewareStack(URLRouter([path("ws/", router.as_consumer().as_asgi())]))


class FaultTests(LiveTestCase):
    application = application
    path = "/ws/"

    def tearDown(self):
        FragileGroupViewSet.failing = False
        super().tearDown()

    async def test_a_failing_evaluation_affects_that_subscription_only(self):
        socket = await self.connect()
        other_socket = await self.connect()
        fragile = await self.subscribe(socket, "auth.Group", query_params={"fragile": "1"})
        sound = await self.subscribe(socket, "auth.Group")
        elsewhere = await self.subscribe(other_socket, "auth.Group")

        FragileGroupViewSet.failing = True
        with self.assertLogs("rest_live", "ERROR"):
            group = await self.db(Group.objects.create, name="editors")
            replies = {(await self.receive(socket))["id"]: None for _ in range(2)}
        self.assertEqual(set(replies), {fragile, sound})
        await self.assertBroadcast(other_socket, "CREATED", {"id": group.pk}, id=elsewhere)

        FragileGroupViewSet.failing = False
        group.name = "writers"
        await self.db(group.save)
        received = {}
        for _ in range(2):
            message = await self.receive(socket)
            received[message["id"]] = message
        self.assertEqual(received[sound]["action"], "UPDATED")
        # The failed evaluation changed nothing it knew, so the object is still new to it.
        self.assertEqual(received[fragile]["action"], "CREATED")

    async def test_the_error_frame_for_a_failed_evaluation(self):
        socket = await self.connect()
        fragile = await self.subscribe(socket, "auth.Group", query_params={"fragile": "1"})
        FragileGroupViewSet.failing = True
        with self.assertLogs("rest_live", "ERROR") as logs:
            await self.db(Group.objects.create, name="editors")
            error = await self.assertError(socket, 500, id=fragile)
        self.assertIn("could not evaluate a change", logs.output[0])
        self.assertEqual(error["message"], "A change could not be evaluated.")

    async def test_a_thousand_sockets_come_and_go_and_leave_nothing_behind(self):
        layer = get_channel_layer()
        for number in range(1000):
            socket = await self.connect()
            await self.subscribe(socket, "auth.Group", query_params={"n": str(number % 7)})
            await socket.disconnect()
            self._sockets.remove(socket)
        self.assertEqual(layer.groups, {})
        self.assertEqual(subscriptions.shared_count(), 0)
        # Still serving: a new socket gets broadcasts.
        socket = await self.connect()
        sub = await self.subscribe(socket, "auth.Group")
        await self.db(Group.objects.create, name="after")
        await self.assertBroadcast(socket, "CREATED", {"name": "after"}, id=sub)
