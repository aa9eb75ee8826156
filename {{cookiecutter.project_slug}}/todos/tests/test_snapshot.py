"""Snapshots: `"snapshot": true` answers a subscribe with the state now; every broadcast after it
is newer, so a page can load and listen without a gap (docs/protocol.md)."""

from unittest import mock

from django.test import override_settings

from rest_live import broadcast, subscriptions
from rest_live.capture import install
from rest_live.subscriptions import LiveSubscription
from tests.live import LiveTestCase
from todos.models import Todo
from todos.tests import views

MODEL = "todos.Todo"


def unannounced(write, *args, **kwargs):
    """`write` made with the change capture removed: a change rest_live never hears of."""
    install.remove()
    try:
        return write(*args, **kwargs)
    finally:
        install.install()


class ListSnapshotTests(LiveTestCase):
    async def test_the_list_as_rest_shows_it_then_its_changes(self):
        for title in ["milk", "bread", "eggs"]:
            await self.db(Todo.objects.create, title=title)
        socket = await self.connect()
        snapshot = await self.subscribe_with_snapshot(socket, MODEL)
        self.assertEqual(snapshot["model"], MODEL)
        self.assertSnapshot(snapshot, ["milk", "bread", "eggs"])
        rest = await self.db(self.client.get, "/api/todos/")
        self.assertEqual(snapshot["instances"], rest.json())
        await self.assertNothing(socket)

        todo = await self.db(Todo.objects.get, title="bread")
        todo.done = True
        await self.db(todo.save)
        await self.assertBroadcast(socket, "UPDATED", {"id": todo.pk, "done": True})

    async def test_query_params_filter_and_order_it(self):
        for title in ["milk", "bread", "oat milk"]:
            await self.db(Todo.objects.create, title=title)
        socket = await self.connect()
        params = {"search": "milk", "ordering": "-title"}
        snapshot = await self.subscribe_with_snapshot(socket, MODEL, query_params=params)
        self.assertSnapshot(snapshot, ["oat milk", "milk"])
        await self.db(Todo.objects.create, title="rye")
        await self.assertNothing(socket)
        await self.db(Todo.objects.create, title="rice milk")
        await self.assertBroadcast(socket, "CREATED", {"title": "rice milk"})

    async def test_without_the_flag_nothing_is_sent(self):
        await self.db(Todo.objects.create, title="milk")
        socket = await self.connect()
        await self.subscribe(socket, MODEL, snapshot=False)  # fails on any reply
        await self.assertNothing(socket)


class RetrieveSnapshotTests(LiveTestCase):
    async def test_the_watched_todo(self):
        todo = await self.db(Todo.objects.create, title="milk")
        socket = await self.connect()
        snapshot = await self.subscribe_with_snapshot(socket, MODEL, "retrieve", lookup_by=todo.pk)
        self.assertSnapshot(snapshot, ["milk"])
        rest = await self.db(self.client.get, f"/api/todos/{todo.pk}/")
        self.assertEqual(snapshot["instances"], [rest.json()])
        pk = todo.pk
        await self.db(todo.delete)
        await self.assertBroadcast(socket, "DELETED", {"id": pk}, id=snapshot["id"])

    async def test_a_missing_todo_is_empty_until_it_appears(self):
        socket = await self.connect()
        snapshot = await self.subscribe_with_snapshot(socket, MODEL, "retrieve", lookup_by=1)
        self.assertSnapshot(snapshot, [])
        await self.db(Todo.objects.create, title="first")
        await self.assertBroadcast(socket, "CREATED", {"id": 1, "title": "first"})


class PerUserSnapshotTests(LiveTestCase):
    application = views.application

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.alice = await self.create_user("alice", email="alice@example.com", is_staff=True)
        self.bob = await self.create_user("bob", email="bob@example.com")
        await self.db(Todo.objects.create, title="alice's", owner=self.alice)
        await self.db(Todo.objects.create, title="bob's", owner=self.bob)

    async def test_each_user_sees_their_own_with_their_serializer(self):
        alice = await self.connect(self.alice, path="/ws/private/")
        bob = await self.connect(self.bob, path="/ws/private/")
        mine = await self.subscribe_with_snapshot(alice, MODEL)
        theirs = await self.subscribe_with_snapshot(bob, MODEL)
        self.assertSnapshot(mine, ["alice's"])
        self.assertEqual(mine["instances"][0]["owner_email"], "alice@example.com")
        self.assertSnapshot(theirs, ["bob's"])
        self.assertNotIn("owner_email", theirs["instances"][0])

    async def test_object_permissions_apply_to_a_retrieve(self):
        owner = await self.connect(self.alice, path="/ws/owned/")
        other = await self.connect(self.bob, path="/ws/owned/")
        self.assertSnapshot(
            await self.subscribe_with_snapshot(owner, MODEL, "retrieve", lookup_by=1),
            ["alice's"],
        )
        self.assertSnapshot(
            await self.subscribe_with_snapshot(other, MODEL, "retrieve", lookup_by=1), []
        )

    async def test_a_refused_subscription_gets_only_the_error(self):
        socket = await self.connect(self.bob, path="/ws/staff/")
        await socket.send_json_to(
            {"type": "subscribe", "id": 1, "model": MODEL, "action": "list", "snapshot": True}
        )
        await self.assertError(socket, 403, id=1)
        await self.assertNothing(socket)


class TruncatedSnapshotTests(LiveTestCase):
    application = views.application

    async def asyncSetUp(self):
        await super().asyncSetUp()
        for title in ["a", "b", "c"]:
            await self.db(Todo.objects.create, title=title)

    @override_settings(REST_LIVE_SNAPSHOT_LIMIT=2)
    async def test_a_list_longer_than_the_limit_is_cut_and_says_so(self):
        socket = await self.connect(path="/ws/owned/")  # lists everything, unpaginated
        snapshot = await self.subscribe_with_snapshot(socket, MODEL)
        self.assertSnapshot(snapshot, ["a", "b"], truncated=True)
        # The subscription still watches the whole list, past the cut.
        todo = await self.db(Todo.objects.get, title="c")
        todo.done = True
        await self.db(todo.save)
        await self.assertBroadcast(socket, "UPDATED", {"title": "c", "done": True})

    @override_settings(REST_LIVE_SNAPSHOT_LIMIT=3)
    async def test_a_list_as_long_as_the_limit_is_whole(self):
        socket = await self.connect(path="/ws/owned/")
        snapshot = await self.subscribe_with_snapshot(socket, MODEL)
        self.assertSnapshot(snapshot, ["a", "b", "c"], truncated=False)

    async def test_a_paginated_view_sends_its_first_page(self):
        socket = await self.connect(path="/ws/paged/")
        snapshot = await self.subscribe_with_snapshot(socket, MODEL)
        self.assertSnapshot(snapshot, ["a", "b"], truncated=True)
        bigger = await self.subscribe_with_snapshot(socket, MODEL, query_params={"page_size": 3})
        self.assertSnapshot(bigger, ["a", "b", "c"], truncated=False)
        # Page numbers do not move the snapshot: it is the start of the list.
        later = await self.subscribe_with_snapshot(socket, MODEL, query_params={"page": 2})
        self.assertSnapshot(later, ["a", "b"], truncated=True)


class NoLostChangeTests(LiveTestCase):
    """Every change reaches the socket in its snapshot, in a broadcast after it, or in both."""

    async def test_a_write_right_after_an_empty_snapshot_follows_it(self):
        socket = await self.connect()
        snapshot = await self.subscribe_with_snapshot(socket, MODEL)
        self.assertSnapshot(snapshot, [])
        await self.db(Todo.objects.create, title="milk")
        await self.assertBroadcast(socket, "CREATED", {"title": "milk"}, id=snapshot["id"])

    async def test_a_write_racing_the_subscribe_is_not_lost(self):
        socket = await self.connect()
        await socket.send_json_to(
            {"type": "subscribe", "id": 1, "model": MODEL, "action": "list", "snapshot": True}
        )
        todo = await self.db(Todo.objects.create, title="milk")  # before or after the snapshot
        snapshot = await self.receive(socket)
        self.assertEqual(snapshot["type"], "snapshot", snapshot)
        await socket.send_json_to({"type": "unsubscribe", "id": 1})
        await socket.send_json_to({"type": "unsubscribe", "id": "end"})
        later = []
        while (message := await self.receive(socket))["type"] != "error":
            later.append(message)
        self.assertEqual(message["id"], "end", message)
        # Seen in the snapshot, or in a broadcast after it; a broadcast, if any, is as new.
        seen = [*snapshot["instances"], *(message["instance"] for message in later)]
        self.assertTrue(seen, "the write was lost")
        self.assertEqual(seen[-1]["title"], "milk")
        self.assertEqual({item["id"] for item in seen}, {todo.pk})
        self.assertTrue(all(message["action"] in ("CREATED", "UPDATED") for message in later))

    async def test_a_change_committed_as_the_snapshot_is_taken_follows_it(self):
        todo = await self.db(Todo.objects.create, title="milk")
        socket = await self.connect()

        async def change_first(live, subscriber, limit):
            # The socket has joined the model's group: this change is on its way to it.
            todo.title = "oat milk"
            await self.db(todo.save)
            return await take_snapshot(live, subscriber, limit)

        take_snapshot = LiveSubscription.snapshot
        with mock.patch.object(LiveSubscription, "snapshot", change_first):
            snapshot = await self.subscribe_with_snapshot(socket, MODEL)
        self.assertSnapshot(snapshot, ["oat milk"])
        message = await self.assertBroadcast(socket, "UPDATED", {"id": todo.pk})
        self.assertEqual(message["instance"], snapshot["instances"][0])  # not older
        await self.assertNothing(socket)

    async def test_an_outcome_older_than_the_snapshot_is_not_sent(self):
        todo = await self.db(Todo.objects.create, title="milk")
        first = await self.connect()
        await self.subscribe(first, MODEL)
        second = await self.connect()

        async def evaluated_before_the_snapshot(live, subscriber, limit):
            # Both sockets now hold the shared subscription, and this change reaches both.
            todo.title = "oat milk"
            await self.db(todo.save)
            await self.assertBroadcast(first, "UPDATED", {"title": "oat milk"})  # evaluated now
            # Newer than that outcome (left unannounced, so nothing else is on its way).
            await self.db(unannounced, Todo.objects.filter(pk=todo.pk).update, title="rice milk")
            return await take_snapshot(live, subscriber, limit)

        take_snapshot = LiveSubscription.snapshot
        with mock.patch.object(LiveSubscription, "snapshot", evaluated_before_the_snapshot):
            snapshot = await self.subscribe_with_snapshot(second, MODEL)
        self.assertSnapshot(snapshot, ["rice milk"])
        await self.assertNothing(second)  # not the older "oat milk"
        self.assertEqual(subscriptions.shared_count(), 1)

    async def test_a_shared_record_behind_the_database_is_not_overwritten(self):
        todo = await self.db(Todo.objects.create, title="milk")
        params = {"search": "milk"}
        first = await self.connect()
        await self.subscribe(first, MODEL, query_params=params)
        # An unannounced write: the shared subscription still thinks "milk" matches.
        await self.db(unannounced, Todo.objects.filter(pk=todo.pk).update, title="bread")
        second = await self.connect()
        snapshot = await self.subscribe_with_snapshot(second, MODEL, query_params=params)
        self.assertSnapshot(snapshot, [])

        await self.db(broadcast, todo)  # announced late: the first socket must still hear of it
        await self.assertBroadcast(first, "DELETED", {"id": todo.pk})
        await self.assertNothing(second)  # its snapshot never had it
        await self.db(Todo.objects.create, title="more milk")
        await self.assertBroadcast(first, "CREATED", {"title": "more milk"})
        await self.assertBroadcast(second, "CREATED", {"title": "more milk"})


class SnapshotErrorTests(LiveTestCase):
    async def test_snapshot_must_be_a_boolean(self):
        socket = await self.connect()
        for request_id, value in enumerate(["yes", 1, None, [], {}], start=1):
            await socket.send_json_to(
                {"type": "subscribe", "id": request_id, "model": MODEL, "action": "list"}
                | {"snapshot": value}
            )
            message = await self.assertError(socket, 400, id=request_id)
            self.assertIn("'snapshot' must be true or false", message["message"])
        snapshot = await self.subscribe_with_snapshot(socket, MODEL, id=1)  # the id is still free
        self.assertSnapshot(snapshot, [])
