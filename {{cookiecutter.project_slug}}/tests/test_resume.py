"""Positions, resuming, transactions, identity and hello (docs/protocol.md): what a client that
reconnects, or applies a transaction at once, or has no `id` in its serializer, relies on."""

import asyncio
import time
from unittest import mock

from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.test import override_settings
from rest_framework import permissions, serializers, viewsets

from rest_live import feed, positions
from rest_live.capture.install import log_database
from rest_live.changes import Change
from rest_live.hub import hub
from rest_live.mixins import RealtimeMixin
from rest_live.models import LogState
from rest_live.testing import ClientState
from tests.groups import GroupSerializer, GroupViewSet, served_at
from tests.live import LiveTestCase

MODEL = "auth.Group"


class NamesOnly(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["name"]  # no primary key among them


class GroupNamesViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Group.objects.all()
    serializer_class = NamesOnly
    permission_classes = []


class SignedInGroupsViewSet(GroupViewSet):
    permission_classes = [permissions.IsAuthenticated]


def rest_view():
    """What REST shows of the groups now, {pk: instance}."""
    return {group.pk: GroupSerializer(group).data for group in Group.objects.all()}


def number(position):
    return int(position.rpartition(".")[2])


class PositionTests(LiveTestCase):
    application = served_at("ws/groups/")
    path = "/ws/groups/"

    async def test_snapshots_and_broadcasts_carry_pks_and_rising_positions(self):
        first = await self.db(Group.objects.create, name="a")
        socket = await self.connect()
        snapshot = await self.subscribe_with_snapshot(socket, MODEL)
        self.assertEqual(snapshot["pks"], [first.pk])
        seen = [number(snapshot["position"])]
        for name in ["b", "c"]:
            group = await self.db(Group.objects.create, name=name)
            frame = await self.assertBroadcast(socket, "CREATED", {"name": name})
            self.assertEqual(frame["pk"], group.pk)
            self.assertNotIn("more", frame)
            seen.append(number(frame["position"]))
        self.assertEqual(seen, sorted(seen))
        self.assertLess(seen[0], seen[-1])

    async def test_one_transactions_frames_say_more_follow_but_the_last(self):
        socket = await self.connect()
        await self.subscribe_with_snapshot(socket, MODEL)

        def three():
            with transaction.atomic():
                for name in ["x", "y", "z"]:
                    Group.objects.create(name=name)

        await self.db(three)
        frames = [await self.receive(socket) for _ in range(3)]
        self.assertEqual([frame.get("more") for frame in frames], [True, True, None])
        self.assertEqual(len({frame["position"] for frame in frames}), 1)
        await self.assertNothing(socket)

    async def test_a_client_frame_ends_the_transaction_on_its_way_before_its_answer(self):
        """The hub hands a socket a transaction's changes one at a time; a frame the client sent
        meanwhile is answered after the frames already evaluated, the last of them without
        `more`: nothing of a subscription follows its `unsubscribed`."""
        groups = [await self.db(Group.objects.create, name=name) for name in ["a", "b"]]
        socket = await self.connect()
        request_id = await self.subscribe(socket, MODEL)
        (consumer,) = hub()._watchers[MODEL]
        change = Change(MODEL, tuple(group.pk for group in groups), "made up", through=1)
        consumer.begin_change(change)
        await consumer.take_change(change)  # the transaction's last change is still to come
        await socket.send_json_to({"type": "unsubscribe", "id": request_id, "ack": True})
        frames = [await self.receive(socket) for _ in range(3)]
        self.assertEqual(
            [(frame["type"], frame.get("more")) for frame in frames],
            [("broadcast", True), ("broadcast", None), ("unsubscribed", None)],
        )
        await consumer.end_transaction()
        await self.assertNothing(socket)


class LargeTransactionTests(LiveTestCase):
    application = served_at("ws/groups/")
    path = "/ws/groups/"
    timeout = 20

    async def test_a_transaction_too_long_for_one_network_read_is_still_one(self):
        """PostgreSQL: 2,000 statements' notifications (half a megabyte) reach the server in
        several reads; its commit marker keeps them one transaction (feed.py)."""
        socket = await self.connect()
        await self.subscribe_with_snapshot(socket, MODEL)

        def many():
            with transaction.atomic():
                for i in range(2000):
                    Group.objects.create(name=f"group {i:03} " + "x" * 100)

        await self.db(many)
        frames = [await self.receive(socket) for _ in range(2000)]
        ends = [i for i, frame in enumerate(frames) if not frame.get("more")]
        self.assertEqual(ends, [1999])
        await self.assertNothing(socket)


class IdentityTests(LiveTestCase):
    application = served_at("ws/names/", GroupNamesViewSet)
    path = "/ws/names/"

    async def test_a_serializer_without_the_key_still_names_each_object(self):
        group = await self.db(Group.objects.create, name="a")
        socket = await self.connect()
        snapshot = await self.subscribe_with_snapshot(socket, MODEL)
        self.assertEqual((snapshot["instances"], snapshot["pks"]), ([{"name": "a"}], [group.pk]))
        group.name = "b"
        await self.db(group.save)
        frame = await self.assertBroadcast(socket, "UPDATED", {"name": "b"})
        self.assertEqual(frame["pk"], group.pk)
        pk = group.pk
        await self.db(group.delete)
        frame = await self.assertBroadcast(socket, "DELETED")
        self.assertEqual(frame["pk"], pk)


class ResumeTests(LiveTestCase):
    application = served_at("ws/groups/")
    path = "/ws/groups/"

    async def away(self):
        """A client that subscribed with a snapshot and then lost its socket: its state."""
        for name in ["keep", "rename", "drop", *[f"still {i}" for i in range(5)]]:
            await self.db(Group.objects.create, name=name)
        state = ClientState()
        socket = await self.connect()
        state.apply(await self.subscribe_with_snapshot(socket, MODEL, id=1))
        await socket.disconnect()
        return state

    async def resume(self, position, **fields):
        socket = await self.connect()
        frame = {"type": "subscribe", "id": 1, "model": MODEL, "action": "list"}
        await socket.send_json_to({**frame, "resume": position, **fields})
        return socket, await self.receive(socket)

    async def test_a_client_catches_up_with_only_what_changed(self):
        state = await self.away()
        await self.db(Group.objects.filter(name="rename").update, name="renamed")
        await self.db(Group.objects.filter(name="drop").delete)
        await self.db(Group.objects.create, name="new")
        socket, resumed = await self.resume(state.position)
        self.assertEqual(resumed["type"], "resumed", resumed)
        actions = sorted(item["action"] for item in resumed["broadcasts"])
        self.assertEqual(actions, ["CREATED", "DELETED", "UPDATED"])  # none of the 5 unchanged
        state.apply(resumed)
        self.assertEqual(state.of(1), await self.db(rest_view))
        self.assertGreater(number(resumed["position"]), number(state.position) - 1)

        await self.db(Group.objects.filter(name="keep").update, name="kept")  # live from here
        state.apply(await self.assertBroadcast(socket, "UPDATED", {"name": "kept"}))
        self.assertEqual(state.of(1), await self.db(rest_view))

    @override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": "tests.test_change_log.LosingLayer"}},
        REST_LIVE_NOTIFY=False,
        REST_LIVE_CHANGE_POLL_SECONDS=60,
    )
    async def test_a_change_the_resumed_frame_carried_is_not_broadcast_again(self):
        # A server reading the log more than half a second behind: the catch-up reads the
        # changes before the feed does, which then hands them to the resumed socket too.
        state = await self.away()
        watching = await self.connect()  # the process's feed reads the log from here on
        await self.subscribe(watching, MODEL, id=1)
        await self.db(Group.objects.filter(name="rename").update, name="renamed")
        read = feed._read

        def read_late(*args):
            time.sleep(1)  # longer than a resume waits for the feed (hub._CATCH_UP_SECONDS)
            return read(*args)

        with mock.patch.object(feed, "_read", read_late):
            socket, resumed = await self.resume(state.position)
        self.assertEqual([item["instance"]["name"] for item in resumed["broadcasts"]], ["renamed"])
        state.apply(resumed)
        await self.assertBroadcast(watching, "UPDATED", {"name": "renamed"})  # read since

        await self.db(Group.objects.filter(name="keep").update, name="kept")
        hub().feed.wake()  # the wake-up the layer lost
        state.apply(await self.assertBroadcast(socket, "UPDATED", {"name": "kept"}))
        self.assertEqual(state.of(1), await self.db(rest_view))

    async def test_nothing_changed_resumes_with_nothing(self):
        state = await self.away()
        _socket, resumed = await self.resume(state.position)
        self.assertEqual((resumed["type"], resumed["broadcasts"]), ("resumed", []))

    async def test_a_deleted_object_the_view_no_longer_shows_carries_its_key_alone(self):
        state = await self.away()
        pk = (await self.db(Group.objects.get, name="drop")).pk
        await self.db(Group.objects.filter(pk=pk).delete)
        _socket, resumed = await self.resume(state.position)
        deleted = {"action": "DELETED", "pk": pk, "instance": {"id": pk, "pk": pk}}
        self.assertEqual(resumed["broadcasts"], [deleted])

    async def assertFellBack(self, position, reason):
        socket, failed = await self.resume(position)
        self.assertEqual(
            (failed["type"], failed["id"], failed["reason"]), ("resume_failed", 1, reason), failed
        )
        snapshot = await self.receive(socket)
        self.assertEqual(snapshot["type"], "snapshot", snapshot)
        state = ClientState()
        state.apply(snapshot)
        self.assertEqual(state.of(1), await self.db(rest_view))
        return socket

    async def test_a_position_from_another_log_gets_a_snapshot(self):
        state = await self.away()
        await self.db(LogState.objects.all().delete)  # as after a flush: a new epoch
        await self.db(Group.objects.create, name="after")
        await self.assertFellBack(state.position, "epoch")

    async def test_a_position_older_than_the_log_keeps_gets_a_snapshot(self):
        state = await self.away()
        await self.db(Group.objects.create, name="after")
        await self.db(positions.raise_floor, log_database(), number(state.position) + 1)
        await self.assertFellBack(state.position, "expired")

    async def test_a_position_ahead_of_the_log_or_made_up_gets_a_snapshot(self):
        state = await self.away()
        epoch = state.position.rpartition(".")[0]
        await self.assertFellBack(f"{epoch}.{number(state.position) + 1000}", "unknown")
        await self.assertFellBack("not a position", "unknown")

    async def test_more_changed_than_a_snapshot_carries_gets_a_snapshot(self):
        state = await self.away()
        await self.db(Group.objects.exclude(name="keep").delete)  # 7 changed, 1 left
        await self.assertFellBack(state.position, "too_many")

    if connection.vendor == "postgresql":

        @override_settings(REST_LIVE_CHANGE_POLL_SECONDS=0.05)
        async def test_a_rolled_back_write_does_not_make_resumes_send_more(self):
            state = await self.away()
            socket = await self.connect()
            state.apply(await self.subscribe_with_snapshot(socket, MODEL, id=1))

            def rolled_back():
                with transaction.atomic():
                    Group.objects.create(name="never")  # takes a change id, then rolls back
                    transaction.set_rollback(True)

            await self.db(rolled_back)
            await self.db(Group.objects.create, name="after")
            state.apply(await self.assertBroadcast(socket, "CREATED", {"name": "after"}))
            # The id the rolled-back write took is given up once its transaction has ended
            # (not after REST_LIVE_CHANGE_LOG_SECONDS): positions then pass it.
            head = await self.db(feed.log_head)
            deadline = time.monotonic() + 30  # unless another program's transactions stay open
            while hub().feed.through < head:
                self.assertLess(time.monotonic(), deadline, "the rolled-back id is still a gap")
                await asyncio.sleep(0.01)
            await self.db(Group.objects.create, name="last")
            state.apply(await self.assertBroadcast(socket, "CREATED", {"name": "last"}))
            await socket.disconnect()
            _socket, resumed = await self.resume(state.position)
            self.assertEqual((resumed["type"], resumed["broadcasts"]), ("resumed", []))
            self.assertEqual(state.of(1), await self.db(rest_view))

    async def test_a_resume_that_is_not_a_string_is_refused(self):
        socket = await self.connect()
        frame = {"type": "subscribe", "id": 3, "model": MODEL, "action": "list", "resume": 7}
        await socket.send_json_to(frame)
        await self.assertError(socket, 400, 3)


class HelloTests(LiveTestCase):
    application = served_at("ws/signed-in/", SignedInGroupsViewSet)
    path = "/ws/signed-in/"

    async def test_hello_names_the_version_limits_and_what_this_user_may_subscribe_to(self):
        socket = await self.connect()
        await socket.send_json_to({"type": "hello"})
        hello = await self.receive(socket)
        self.assertEqual((hello["type"], hello["protocol"]), ("hello", 2))
        self.assertEqual(hello["limits"]["max_subscriptions"], 100)
        self.assertIsNone(hello["position"])  # nothing watched on this process yet
        self.assertEqual(hello["models"], {})  # anonymous: the view's permissions refuse

        user = await self.create_user("ada")
        signed_in = await self.connect(user)
        await signed_in.send_json_to({"type": "hello"})
        hello = await self.receive(signed_in)
        self.assertEqual(hello["models"], {MODEL: ["list", "retrieve"]})

    async def test_a_client_that_does_not_ask_gets_no_hello(self):
        socket = await self.connect(await self.create_user("ada"))
        await self.subscribe(socket, MODEL)  # fails on any frame but the ack
        await self.assertNothing(socket)
