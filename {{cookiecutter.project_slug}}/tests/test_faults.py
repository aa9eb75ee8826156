"""Faults stay contained: failing evaluations (retried once on a fresh connection, then the client
is told to re-sync), and sockets that come and go by the thousand."""

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
    """For subscriptions that ask for it, its next `failures` queries fail, as if the database
    went away."""

    queryset = Group.objects.all()
    serializer_class = GroupSerializer
    permission_classes = []
    failures = 0

    def get_queryset(self):
        if FragileGroupViewSet.failures and "fragile" in self.request.query_params:
            FragileGroupViewSet.failures -= 1
            raise OperationalError("the database went away")
        return super().get_queryset()


class BrokenSerializer(GroupSerializer):
    """Raises for one group, as a serializer with a bug does."""

    def to_representation(self, instance):
        if instance.name == "breaks the serializer":
            raise ValueError("a bug in the serializer")
        return super().to_representation(instance)


class BrokenSerializerViewSet(FragileGroupViewSet):
    serializer_class = BrokenSerializer


router = RealtimeRouter()
router.register(FragileGroupViewSet)
broken_router = RealtimeRouter()
broken_router.register(BrokenSerializerViewSet)
application = AuthMiddlewareStack(
    URLRouter(
        [
            path("ws/", router.as_consumer().as_asgi()),
            path("ws/broken/", broken_router.as_consumer().as_asgi()),
        ]
    )
)
ALWAYS = 10**6


class FaultTests(LiveTestCase):
    application = application
    path = "/ws/"

    def tearDown(self):
        FragileGroupViewSet.failures = 0
        super().tearDown()

    async def test_a_failing_evaluation_affects_that_subscription_only(self):
        socket = await self.connect()
        other_socket = await self.connect()
        fragile = await self.subscribe(socket, "auth.Group", query_params={"fragile": "1"})
        sound = await self.subscribe(socket, "auth.Group")
        elsewhere = await self.subscribe(other_socket, "auth.Group")

        FragileGroupViewSet.failures = ALWAYS
        with self.assertLogs("rest_live", "ERROR"):
            group = await self.db(Group.objects.create, name="editors")
            replies = {}
            for _ in range(2):
                reply = await self.receive(socket)
                replies[reply["id"]] = reply["type"]
        self.assertEqual(replies, {fragile: "reset", sound: "broadcast"})
        await self.assertBroadcast(other_socket, "CREATED", {"id": group.pk}, id=elsewhere)

        FragileGroupViewSet.failures = 0
        group.name = "writers"
        await self.db(group.save)
        received = {}
        for _ in range(2):
            message = await self.receive(socket)
            received[message["id"]] = message
        self.assertEqual(received[sound]["action"], "UPDATED")
        # The failed evaluation changed nothing it knew, so the object is still new to it: the
        # subscription stayed live, for clients that do not re-sync.
        self.assertEqual(received[fragile]["action"], "CREATED")

    async def test_a_failed_evaluation_tells_the_client_to_resync(self):
        socket = await self.connect()
        fragile = await self.subscribe(socket, "auth.Group", query_params={"fragile": "1"})
        FragileGroupViewSet.failures = ALWAYS
        with self.assertLogs("rest_live", "ERROR") as logs:
            await self.db(Group.objects.create, name="editors")
            reset = await self.assertReset(socket, fragile)
        self.assertIn("could not evaluate a change", logs.output[0])
        self.assertEqual(
            reset,
            {
                "type": "reset",
                "id": fragile,
                "model": "auth.Group",
                "message": "A change could not be evaluated; re-sync.",
            },
        )
        FragileGroupViewSet.failures = 0
        snapshot = await self.resync(socket, fragile, "auth.Group", query_params={"fragile": "1"})
        self.assertSnapshot(snapshot, ["editors"], field="name")

    async def test_a_dropped_connection_is_retried_once_on_a_fresh_one(self):
        socket = await self.connect()
        fragile = await self.subscribe(socket, "auth.Group", query_params={"fragile": "1"})
        FragileGroupViewSet.failures = 1
        group = await self.db(Group.objects.create, name="editors")
        await self.assertBroadcast(socket, "CREATED", {"id": group.pk}, id=fragile)
        self.assertEqual(FragileGroupViewSet.failures, 0)

    async def test_a_serializer_that_raises_for_one_row_resets_and_spares_the_rest(self):
        socket = await self.connect(path="/ws/broken/")
        sub = await self.subscribe(socket, "auth.Group")
        with self.assertLogs("rest_live", "ERROR") as logs:
            await self.db(Group.objects.create, name="breaks the serializer")
            await self.assertReset(socket, sub)
        self.assertIn("ValueError: a bug in the serializer", "\n".join(logs.output))
        await self.db(Group.objects.create, name="fine")
        await self.assertBroadcast(socket, "CREATED", {"name": "fine"}, id=sub)

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
