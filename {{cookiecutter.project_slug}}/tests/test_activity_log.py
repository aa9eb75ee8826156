"""The activity log (`rest_live.activity`, DEBUG): why a client did or did not get a change."""

from django.contrib.auth.models import Group
from rest_framework import permissions

from tests.groups import GroupViewSet, served_at
from tests.live import LiveTestCase


class NotSecret(permissions.BasePermission):
    def has_object_permission(self, request, view, obj):
        return not obj.name.startswith("secret")


class GuardedGroupViewSet(GroupViewSet):
    permission_classes = [NotSecret]


class ActivityLogTests(LiveTestCase):
    application = served_at("ws/", GuardedGroupViewSet)
    path = "/ws/"

    async def activity(self, action):
        """The activity lines logged while `action()` runs (awaited) and the frames settle."""
        with self.assertLogs("rest_live.activity", "DEBUG") as logs:
            await action()
        return [record.getMessage() for record in logs.records]

    async def test_each_outcome_of_a_change_is_logged_per_distinct_subscription(self):
        first, second = await self.connect(), await self.connect()
        group = await self.db(Group.objects.create, name="open")

        async def subscribe_both():
            await self.subscribe(first, "auth.Group", "retrieve", lookup_by=group.pk)
            await self.subscribe(second, "auth.Group", "retrieve", lookup_by=group.pk)

        lines = await self.activity(subscribe_both)
        self.assertEqual(
            [line for line in lines if "subscribed" in line],
            [f"socket 127.0.0.1:{s.scope['client'][1]} (anonymous) subscribed {n}: auth.Group "
             f"retrieve {group.pk!r} as anonymous" for n, s in enumerate((first, second), 1)],
        )  # fmt: skip

        async def rename(name):
            group.name = name
            await self.db(group.save)
            for socket in (first, second):
                await self.assertBroadcast(socket, "DELETED" if "secret" in name else "UPDATED")

        lines = await self.activity(lambda: rename("still open"))
        change = next(line for line in lines if line.startswith("change ") and "from" in line)
        self.assertRegex(
            change, r"^change \d+: auth\.Group \[\d+\], from the change log, for 2 sockets"
        )
        self.assertIn(f"sent UPDATED pk {group.pk} to 2 sockets", "\n".join(lines))

        lines = await self.activity(lambda: rename("secret now"))
        # As over REST, an anonymous user refused is told to authenticate.
        self.assertIn(
            f"refused by the object permissions of pk {group.pk}: Authentication credentials",
            "\n".join(lines),
        )

        async def another_group():
            await self.db(Group.objects.create, name="elsewhere")
            await first.receive_nothing(0.2)

        lines = await self.activity(another_group)
        self.assertIn("not visible before or after", "\n".join(lines))

    async def test_refusals_and_closes_name_the_socket_and_the_reason(self):
        socket = await self.connect()

        async def refused():
            frame = {"type": "subscribe", "id": 9, "model": "auth.Nothing", "action": "list"}
            await socket.send_json_to(frame)
            await self.receive(socket)

        lines = await self.activity(refused)
        self.assertRegex(
            lines[-1], r"^socket 127\.0\.0\.1:\d+ \(anonymous\): request 9 refused: 404 No live"
        )
        lines = await self.activity(socket.disconnect)
        self.assertRegex(lines[-1], r"^socket 127\.0\.0\.1:\d+ \(anonymous\) closed \(code \d+\)")
        self._sockets.remove(socket)
