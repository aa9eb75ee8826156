"""Live subscriptions to todos, written with LiveTestCase: copy these when you add a live view."""

import asyncio

from django.db import transaction

from tests.live import LiveTestCase
from todos.models import Todo
from todos.tests import views

MODEL = "todos.Todo"


class TodoLiveTests(LiveTestCase):
    """The README's example, kept here so it stays true."""

    async def test_owner_sees_new_todo(self):
        alice = await self.create_user("alice")
        socket = await self.connect(alice)
        sub = await self.subscribe(socket, "todos.Todo", "list")
        await self.db(Todo.objects.create, title="milk", owner=alice)
        await self.assertBroadcast(socket, "CREATED", {"title": "milk", "owner": "alice"}, id=sub)
        await self.assertNothing(socket)


class RetrieveTests(LiveTestCase):
    async def test_update_and_delete_of_the_watched_todo(self):
        todo = await self.db(Todo.objects.create, title="milk")
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL, "retrieve", lookup_by=todo.pk)

        todo.title = "oat milk"
        await self.db(todo.save)
        await self.assertBroadcast(socket, "UPDATED", {"id": todo.pk, "title": "oat milk"}, id=sub)

        pk = todo.pk
        await self.db(todo.delete)
        message = await self.assertBroadcast(socket, "DELETED", id=sub)
        self.assertEqual(message["instance"], {"id": pk, "pk": pk})

    async def test_other_todos_send_nothing(self):
        todo = await self.db(Todo.objects.create, title="milk")
        socket = await self.connect()
        await self.subscribe(socket, MODEL, "retrieve", lookup_by=todo.pk)
        await self.db(Todo.objects.create, title="bread")
        await self.assertNothing(socket)

    async def test_a_lookup_given_as_a_string_watches_the_integer_pk(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL, "retrieve", lookup_by="1")
        todo = await self.db(Todo.objects.create, title="first")
        self.assertEqual(todo.pk, 1)
        await self.assertBroadcast(socket, "CREATED", {"id": 1, "title": "first"}, id=sub)


class ListTests(LiveTestCase):
    async def test_create_update_delete(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL)
        todo = await self.db(Todo.objects.create, title="milk")
        await self.assertBroadcast(socket, "CREATED", {"title": "milk", "done": False}, id=sub)
        todo.done = True
        await self.db(todo.save)
        await self.assertBroadcast(socket, "UPDATED", {"done": True}, id=sub)
        pk = todo.pk
        await self.db(todo.delete)
        await self.assertBroadcast(socket, "DELETED", {"id": pk}, id=sub)

    async def test_query_params_decide_entering_and_leaving(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL, query_params={"search": "milk"})
        todo = await self.db(Todo.objects.create, title="bread")
        await self.assertNothing(socket)

        todo.title = "milk"
        await self.db(todo.save)
        await self.assertBroadcast(socket, "CREATED", {"title": "milk"}, id=sub)

        todo.title = "bread again"
        await self.db(todo.save)
        message = await self.assertBroadcast(socket, "DELETED", id=sub)
        self.assertEqual(message["instance"], {"id": todo.pk, "pk": todo.pk})

        await self.db(todo.delete)
        await self.assertNothing(socket)

    async def test_rolled_back_writes_send_nothing(self):
        socket = await self.connect()
        await self.subscribe(socket, MODEL)

        def write_then_fail():
            with transaction.atomic():
                Todo.objects.create(title="never")
                raise RuntimeError("rollback")

        with self.assertRaises(RuntimeError):
            await self.db(write_then_fail)
        await self.assertNothing(socket)
        self.assertFalse(await self.db(Todo.objects.exists))

    async def test_queryset_update_needs_no_broadcast(self):
        first = await self.db(Todo.objects.create, title="a")
        second = await self.db(Todo.objects.create, title="b")
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL)

        await self.db(Todo.objects.update, done=True)  # no signals: the database's capture sees it
        received = [await self.assertBroadcast(socket, "UPDATED", id=sub) for _ in range(2)]
        self.assertEqual(
            {(m["instance"]["id"], m["instance"]["done"]) for m in received},
            {(first.pk, True), (second.pk, True)},
        )
        await self.assertNothing(socket)

    async def test_several_subscriptions_on_one_socket(self):
        todo = await self.db(Todo.objects.create, title="milk")
        socket = await self.connect()
        listing = await self.subscribe(socket, MODEL)
        single = await self.subscribe(socket, MODEL, "retrieve", lookup_by=todo.pk)
        todo.done = True
        await self.db(todo.save)
        received = {(await self.receive(socket))["id"] for _ in range(2)}
        self.assertEqual(received, {listing, single})

    async def test_unsubscribe_stops_broadcasts(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL)
        await self.unsubscribe(socket, sub)
        await self.db(Todo.objects.create, title="milk")
        await self.assertNothing(socket)

    async def test_one_change_costs_the_same_queries_for_50_identical_subscribers(self):
        todo = await self.db(Todo.objects.create, title="milk")
        one = await self.queries_for_one_change(todo, subscribers=1)
        fifty = await self.queries_for_one_change(todo, subscribers=50)
        self.assertEqual(one, fifty)
        # The write and one evaluation (the todo, then its tags), and nothing per socket.
        self.assertEqual(one, 3)

    async def queries_for_one_change(self, todo, subscribers):
        sockets = [await self.connect() for _ in range(subscribers)]
        await asyncio.gather(*(self.subscribe(socket, MODEL) for socket in sockets))
        async with self.captureQueries() as queries:
            todo.done = not todo.done
            await self.db(todo.save)
            for socket in sockets:
                await self.assertBroadcast(socket, "UPDATED", {"done": todo.done})
        for socket in sockets:
            await socket.disconnect()
        return len(queries)


class PerUserTests(LiveTestCase):
    application = views.application

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.alice = await self.create_user("alice", email="alice@example.com")
        self.bob = await self.create_user("bob", email="bob@example.com")

    async def test_owner_based_visibility(self):
        socket = await self.connect(self.alice, path="/ws/private/")
        sub = await self.subscribe(socket, MODEL)
        await self.db(Todo.objects.create, title="bob's", owner=self.bob)
        await self.assertNothing(socket)

        todo = await self.db(Todo.objects.create, title="alice's", owner=self.alice)
        await self.assertBroadcast(socket, "CREATED", {"title": "alice's"}, id=sub)

        todo.owner = self.bob
        await self.db(todo.save)
        await self.assertBroadcast(socket, "DELETED", {"id": todo.pk}, id=sub)

        todo.owner = self.alice
        await self.db(todo.save)
        await self.assertBroadcast(socket, "CREATED", {"id": todo.pk}, id=sub)

    async def test_private_router_closes_anonymous_sockets(self):
        socket = await self.connect(path="/ws/private/")
        closed = await socket.receive_output(timeout=self.timeout)
        self.assertEqual(closed, {"type": "websocket.close", "code": 4003})

    async def test_serializer_per_user(self):
        self.alice.is_staff = True
        await self.db(self.alice.save)
        staff = await self.connect(self.alice, path="/ws/private/")
        plain = await self.connect(self.bob, path="/ws/private/")
        await self.subscribe(staff, MODEL)
        await self.subscribe(plain, MODEL)
        await self.db(Todo.objects.create, title="a", owner=self.alice)
        await self.db(Todo.objects.create, title="b", owner=self.bob)
        staff_view = await self.assertBroadcast(staff, "CREATED", {"title": "a"})
        plain_view = await self.assertBroadcast(plain, "CREATED", {"title": "b"})
        self.assertEqual(staff_view["instance"]["owner_email"], "alice@example.com")
        self.assertNotIn("owner_email", plain_view["instance"])

    async def test_view_permission_is_checked_at_subscribe_and_at_every_change(self):
        self.alice.is_staff = True
        await self.db(self.alice.save)
        refused = await self.connect(self.bob, path="/ws/staff/")
        await refused.send_json_to({"type": "subscribe", "id": 1, "model": MODEL, "action": "list"})
        await self.assertError(refused, 403, id=1)

        socket = await self.connect(self.alice, path="/ws/staff/")
        sub = await self.subscribe(socket, MODEL)
        todo = await self.db(Todo.objects.create, title="milk")
        await self.assertBroadcast(socket, "CREATED", id=sub)

        self.alice.is_staff = False
        await self.db(self.alice.save)
        todo.done = True
        await self.db(todo.save)
        await self.assertBroadcast(socket, "DELETED", {"id": todo.pk}, id=sub)
        await self.db(Todo.objects.create, title="bread")
        await self.assertNothing(socket)

    async def test_object_permissions_on_retrieve(self):
        todo = await self.db(Todo.objects.create, title="alice's", owner=self.alice)
        owner = await self.connect(self.alice, path="/ws/owned/")
        other = await self.connect(self.bob, path="/ws/owned/")
        await self.subscribe(owner, MODEL, "retrieve", lookup_by=todo.pk)
        await self.subscribe(other, MODEL, "retrieve", lookup_by=todo.pk)
        todo.done = True
        await self.db(todo.save)
        await self.assertBroadcast(owner, "UPDATED", {"done": True})
        await self.assertNothing(other)

        todo.owner = self.bob
        await self.db(todo.save)
        await self.assertBroadcast(owner, "DELETED", {"id": todo.pk})
        await self.assertBroadcast(other, "CREATED", {"id": todo.pk})


class ErrorTests(LiveTestCase):
    async def send_raw(self, socket, text):
        await socket.send_to(text_data=text)

    async def test_malformed_frames_get_400_and_the_socket_stays_usable(self):
        socket = await self.connect()
        for frame in [
            "not json",
            "[1, 2]",
            '"subscribe"',
            '{"type": "subscribe"}',
            '{"type": "subscribe", "id": true, "model": "todos.Todo", "action": "list"}',
            '{"type": "subscribe", "id": {}, "model": "todos.Todo", "action": "list"}',
        ]:
            await self.send_raw(socket, frame)
            await self.assertError(socket, 400, id=None)
        await socket.send_to(bytes_data=b"\x00\x01")
        await self.assertError(socket, 400, id=None)

        for request_id, fields in enumerate(
            [
                {"type": "publish"},
                {"type": "subscribe", "model": MODEL, "action": "destroy"},
                {"type": "subscribe", "model": 7, "action": "list"},
                {"type": "subscribe", "model": MODEL, "action": "retrieve"},
                {"type": "subscribe", "model": MODEL, "action": "retrieve", "lookup_by": [1]},
                {
                    "type": "subscribe",
                    "model": MODEL,
                    "action": "retrieve",
                    "lookup_by": {"title__startswith": ""},  # no dicts into filter(**...)
                },
                {
                    "type": "subscribe",
                    "model": MODEL,
                    "action": "retrieve",
                    "lookup_by": "abc",
                },
                {"type": "subscribe", "model": MODEL, "action": "list", "lookup_by": 1},
                {"type": "subscribe", "model": MODEL, "action": "list", "query_params": []},
                {
                    "type": "subscribe",
                    "model": MODEL,
                    "action": "list",
                    "query_params": {"search": {"$gt": 1}},
                },
                {
                    "type": "subscribe",
                    "model": MODEL,
                    "action": "list",
                    "view_kwargs": {"pk": {"in": [1]}},
                },
            ],
            start=1,
        ):
            await socket.send_json_to({"id": request_id, **fields})
            await self.assertError(socket, 400, id=request_id)

        sub = await self.subscribe(socket, MODEL, id=3)  # ids refused above are free
        await self.db(Todo.objects.create, title="milk")
        await self.assertBroadcast(socket, "CREATED", id=sub)

    async def test_unknown_and_unregistered_models_are_404(self):
        socket = await self.connect()
        for model in ["todos.Nothing", "auth.User", "nonsense"]:
            await socket.send_json_to(
                {"type": "subscribe", "id": model, "model": model, "action": "list"}
            )
            await self.assertError(socket, 404, id=model)

    async def test_unsubscribe_unknown_id_is_404(self):
        socket = await self.connect()
        await socket.send_json_to({"type": "unsubscribe", "id": 9})
        await self.assertError(socket, 404, id=9)

    async def test_a_reused_id_is_refused_and_the_first_subscription_kept(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL)
        await socket.send_json_to(
            {
                "type": "subscribe",
                "id": sub,
                "model": MODEL,
                "action": "retrieve",
                "lookup_by": 1,
            }
        )
        await self.assertError(socket, 400, id=sub)
        await self.db(Todo.objects.create, title="milk")
        await self.assertBroadcast(socket, "CREATED", id=sub)
        await self.assertNothing(socket)

    async def test_model_label_is_case_insensitive(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, "todos.todo")
        await self.db(Todo.objects.create, title="milk")
        message = await self.assertBroadcast(socket, "CREATED", id=sub)
        self.assertEqual(message["model"], MODEL)
