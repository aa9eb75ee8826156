"""Distinct subscriptions (each its own search, or its own user) are evaluated together: a
write costs the same few queries however many of them there are, and each client still holds
exactly what REST shows it."""

import asyncio
import json
import threading
from datetime import timedelta

from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.test import TestCase
from rest_framework.test import APIRequestFactory, force_authenticate

from rest_live import hub, multiplex, subscriptions
from rest_live.changes import Change
from tests.live import LiveTestCase
from todos.models import Tag, Todo
from todos.tests import views

MODEL = "todos.Todo"
HOUR = timedelta(hours=1)


class SeenTests(TestCase):
    def test_each_queryset_answers_for_itself_in_one_query_per_sql(self):
        milk, bread = Todo.objects.create(title="milk"), Todo.objects.create(title="bread")
        querysets = [
            Todo.objects.filter(title__contains="mi"),
            Todo.objects.filter(title__contains="re"),  # the same SQL, another parameter
            Todo.objects.filter(title="bread"),
            Todo.objects.filter(done=True),
            Todo.objects.none(),
        ]
        visibilities = [multiplex.Visibility.of(queryset) for queryset in querysets]
        with self.assertNumQueries(3):  # `.none()` asks nothing
            seen = multiplex.seen(visibilities, [milk.pk, bread.pk])
        self.assertEqual(seen, {0: {milk.pk}, 1: {bread.pk}, 2: {bread.pk}, 3: set(), 4: set()})

    def test_parameters_of_every_common_type_answer_as_each_queryset_would_alone(self):
        # On PostgreSQL each varying parameter goes as one typed array: strings, numbers,
        # booleans, times, and subscriptions whose parameters are all the same.
        ann, bob = (User.objects.create(username=name) for name in ("ann", "bob"))
        todos = [
            Todo.objects.create(title="milk", owner=ann),
            Todo.objects.create(title="bread", owner=bob, done=True),
            Todo.objects.create(title="eggs"),
        ]
        midpoint = Todo.objects.get(title="bread").created_at
        families = [
            [Todo.objects.filter(title__icontains=term) for term in ("MI", "re", "%", 'z"{},\\')],
            [Todo.objects.filter(owner=user) for user in (ann, bob, ann)],
            [Todo.objects.filter(done__in=[done]) for done in (True, False)],
            [Todo.objects.filter(created_at__gte=time) for time in (midpoint, midpoint - HOUR)],
            [Todo.objects.filter(done=False), Todo.objects.filter(done=False)],
            [
                Todo.objects.filter(owner__username__in=names)
                for names in (["ann", "bob"], ["bob", "x"])
            ],
        ]
        pks = [todo.pk for todo in todos]
        for querysets in families:
            with self.subTest(sql=str(querysets[0].query)):
                visibilities = [multiplex.Visibility.of(queryset) for queryset in querysets]
                with self.assertNumQueries(1):
                    seen = multiplex.seen(visibilities, pks)
                alone = {
                    i: set(queryset.filter(pk__in=pks).values_list("pk", flat=True))
                    for i, queryset in enumerate(querysets)
                }
                self.assertEqual(seen, alone)


class Client:
    """A subscriber's state, built only from the frames it received: {id: instance}."""

    def __init__(self, socket, sub, snapshot):
        self.socket, self.sub = socket, sub
        self.state = {instance["id"]: instance for instance in snapshot}

    def apply(self, frame):
        assert frame["type"] == "broadcast" and frame["id"] == self.sub, frame
        instance = frame["instance"]
        if frame["action"] == "DELETED":
            del self.state[instance["id"]]
        else:
            self.state[instance["id"]] = instance


class Converging(LiveTestCase):
    async def open(self, user=None, path=None, **fields):
        socket = await self.connect(user, path=path)
        snapshot = await self.subscribe_with_snapshot(socket, MODEL, **fields)
        return Client(socket, snapshot["id"], snapshot["instances"])

    async def assertConverges(self, clients, shown):
        """Every client reaches what REST shows it (`shown(client)`, awaited) from the frames it
        gets, within the socket timeout, and gets nothing more."""
        for client in clients:
            expected = await shown(client)
            while client.state != expected:
                client.apply(await self.receive(client.socket))
            await self.assertNothing(client.socket, timeout=0.05)


class DistinctSearchTests(Converging):
    """The example's TodoViewSet, each socket with a search of its own."""

    async def rest(self, client):
        response = await self.db(self.client.get, "/api/todos/", {"search": client.search})
        return {todo["id"]: todo for todo in response.json()}

    async def test_each_search_holds_what_rest_shows_it_through_every_kind_of_write(self):
        searches = ["milk", "bread", "eggs", "mi", "oat milk", "e"]
        clients = []
        for search in searches:
            client = await self.open(query_params={"search": [search]})
            client.search = search
            clients.append(client)
        tag = await self.db(Tag.objects.create, name="shop")
        milk = await self.db(Todo.objects.create, title="milk")
        await self.assertConverges(clients, self.rest)
        await self.db(Todo.objects.create, title="oat milk")
        await self.assertConverges(clients, self.rest)
        milk.title = "bread"  # leaves two searches, enters another
        await self.db(milk.save)
        await self.assertConverges(clients, self.rest)
        await self.db(milk.tags.add, tag)
        await self.assertConverges(clients, self.rest)
        await self.db(Todo.objects.filter(title__contains="milk").update, title="eggs")
        await self.assertConverges(clients, self.rest)
        await self.db(Todo.objects.bulk_create, [Todo(title="milk"), Todo(title="bread")])
        await self.assertConverges(clients, self.rest)
        await self.db(Todo.objects.filter(title="bread").delete)
        await self.assertConverges(clients, self.rest)

    async def test_a_write_costs_the_same_queries_for_40_distinct_searches_as_for_2(self):
        two = await self.queries_for_a_write_one_sees(2)
        forty = await self.queries_for_a_write_one_sees(40)
        self.assertEqual(two, forty)
        # The write, which searches see it (one query for all), then the todo and its tags,
        # read for the one that does.
        self.assertEqual(forty, 4)

    async def queries_for_a_write_one_sees(self, count):
        sockets = [await self.connect() for _ in range(count)]
        for number, socket in enumerate(sockets):
            await self.subscribe(socket, MODEL, query_params={"search": [f"item-{number}-"]})
        async with self.captureQueries() as queries:
            await self.db(Todo.objects.create, title=f"item-{count - 1}-")
            await self.assertBroadcast(sockets[-1], "CREATED", {"title": f"item-{count - 1}-"})
        for socket in sockets[:-1]:
            await self.assertNothing(socket, timeout=0.01)
        for socket in sockets:
            await socket.disconnect()
        return len(queries)

    async def test_signed_in_users_on_one_list_share_one_rendering(self):
        # Each signed-in socket is a distinct subscription (its login is part of it); the view
        # declares `live_render_once`, so the todo is read and rendered once for all of them.
        users = [await self.create_user(f"user{number}") for number in range(12)]
        few = await self.queries_for_a_write_all_see(users[:2])
        many = await self.queries_for_a_write_all_see(users[2:])
        self.assertEqual(few, many)

    async def queries_for_a_write_all_see(self, users):
        sockets = [await self.connect(user) for user in users]
        for socket in sockets:
            await self.subscribe(socket, MODEL)
        async with self.captureQueries() as queries:
            todo = await self.db(Todo.objects.create, title="for everyone")
            for socket in sockets:
                await self.assertBroadcast(socket, "CREATED", {"id": todo.pk, "tags": []})
        for socket in sockets:
            await socket.disconnect()
        return len(queries)


class ClosedSocketTests(Converging):
    async def test_subscriptions_closed_while_their_change_waits_are_not_evaluated(self):
        # A client that opens many subscriptions and leaves must not keep costing: a change
        # handed out while the database thread is busy waits there, and by the time it runs,
        # the subscriptions of the sockets that closed are skipped, the first socket's too,
        # whose turn is taken by that change.
        todo = await self.db(Todo.objects.create, title="word9")
        clients = [await self.open(query_params={"search": [f"word{i}"]}) for i in range(10)]
        *leaving, staying = clients
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        async with self.captureQueries() as queries:
            busy = threading.Event()
            holding = asyncio.ensure_future(database_sync_to_async(busy.wait)())
            try:
                change = Change(MODEL, (todo.pk,), 10**9)
                handing = asyncio.ensure_future(hub.hub().handle([change]))
                while not queued(loop, change.position):
                    self.assertLess(loop.time(), deadline, "the change was never handed out")
                    await asyncio.sleep(0)
                for client in leaving:
                    await client.socket.send_input({"type": "websocket.disconnect", "code": 1000})
                while subscriptions.shared_count() > 1:
                    self.assertLess(loop.time(), deadline, "closed sockets kept subscriptions")
                    await asyncio.sleep(0.01)
            finally:
                busy.set()
            await holding
            await handing
        for client in leaving:
            await client.socket.wait(self.timeout)  # their apps end once the thread is free
        staying.apply(await self.receive(staying.socket))
        self.assertEqual(staying.state[todo.pk]["title"], "word9")
        # One subscription left to evaluate: nothing to ask many of them together.
        self.assertFalse([sql for sql in queries if "rest_live_subscription" in sql], queries)


def queued(loop, change_id):
    """Whether the change's batch has left the event loop for the database thread."""
    begun = any(change_id in live._outcomes for live in subscriptions._by_loop[loop].values())
    return begun and not subscriptions._Batch._gathering.get(loop)


class PerUserTests(Converging):
    """A view whose get_queryset filters by request.user, and whose serializer depends on it:
    each user's subscription is asked with the others, and sees only their own todos."""

    application = views.application

    async def rest(self, client):
        def get():
            request = APIRequestFactory().get("/")
            force_authenticate(request, client.user)
            response = views.MyTodoViewSet.as_view({"get": "list"})(request)
            return json.loads(response.render().content)

        return {todo["id"]: todo for todo in await self.db(get)}

    async def test_each_user_holds_their_own_todos_and_nobody_elses(self):
        users = [await self.create_user(f"user{number}") for number in range(5)]
        users.append(await self.create_user("boss", is_staff=True))  # sees owner_email too
        clients = []
        for user in users:
            client = await self.open(user, path="/ws/private/")
            client.user = user
            clients.append(client)
        first, second, boss = users[0], users[1], users[-1]
        todo = await self.db(Todo.objects.create, title="mine", owner=first)
        await self.assertConverges(clients, self.rest)
        await self.db(Todo.objects.create, title="the boss's", owner=boss)
        await self.assertConverges(clients, self.rest)
        todo.owner = second  # leaves one user's list, enters another's
        await self.db(todo.save)
        await self.assertConverges(clients, self.rest)
        await self.db(Todo.objects.bulk_create, [Todo(title=u.username, owner=u) for u in users])
        await self.assertConverges(clients, self.rest)
        await self.db(Todo.objects.filter(owner=second).update, owner=boss)
        await self.assertConverges(clients, self.rest)
        await self.db(Todo.objects.filter(owner=boss).delete)
        await self.assertConverges(clients, self.rest)


class RelatedChangeTests(LiveTestCase):
    application = views.application

    async def test_a_tag_rename_reaches_the_tags_and_the_todos_that_show_it(self):
        # The todos hear the rename under the tag's change id: evaluated apart from the tags.
        tag = await self.db(Tag.objects.create, name="home")
        todo = await self.db(Todo.objects.create, title="sweep")
        await self.db(todo.tags.add, tag)
        socket = await self.connect(path="/ws/tags-and-todos/")
        tags = await self.subscribe(socket, "todos.Tag")
        todos = await self.subscribe(socket, MODEL)
        tag.name = "house"
        await self.db(tag.save)
        received = {}
        for _ in range(2):
            frame = await self.receive(socket)
            received[frame["id"]] = (frame["action"], frame["instance"])
        self.assertEqual(received[tags], ("UPDATED", {"id": tag.pk, "name": "house"}))
        self.assertEqual(received[todos][0], "UPDATED")
        self.assertEqual(received[todos][1]["tags"], ["house"])
        await self.assertNothing(socket)


class LoginCheckTests(LiveTestCase):
    """Every subscriber's login is checked at each change, for all of them at once."""

    application = views.application

    async def test_checking_12_signed_in_users_costs_the_same_queries_as_2(self):
        # MyTodoViewSet does not declare live_cache_queryset: each subscription's view is built
        # again at every change, on the login that identity.py vouched for.
        users = [await self.create_user(f"user{number}") for number in range(14)]
        self.assertEqual(
            await self.queries_for_a_write_to(users[:2]),
            await self.queries_for_a_write_to(users[2:]),
        )

    async def queries_for_a_write_to(self, users):
        sockets = [await self.connect(user, path="/ws/private/") for user in users]
        for socket in sockets:
            await self.subscribe(socket, MODEL)
        async with self.captureQueries() as queries:
            todo = await self.db(Todo.objects.create, title="mine", owner=users[-1])
            await self.assertBroadcast(sockets[-1], "CREATED", {"id": todo.pk})
        for socket in sockets[:-1]:
            await self.assertNothing(socket, timeout=0.01)
        for socket in sockets:
            await socket.disconnect()
        return len(queries)


class ReusedViewTests(LiveTestCase):
    """A view with `live_cache_queryset` reuses its view only while its subscriber's login holds."""

    application = views.application

    async def test_a_deactivated_user_loses_access_at_the_next_change(self):
        alice = await self.create_user("alice")
        socket = await self.connect(alice, path="/ws/private-reused/")
        sub = await self.subscribe(socket, MODEL)
        todo = await self.db(Todo.objects.create, title="private", owner=alice)
        await self.assertBroadcast(socket, "CREATED", {"id": todo.pk}, id=sub)
        alice.is_active = False
        await self.db(alice.save)
        todo.title = "still private"
        await self.db(todo.save)
        # Her view is built again, as nobody: her subscription re-syncs, and she is refused.
        await self.assertReset(socket, sub)
        reply = await self.resubscribe(socket, sub, MODEL)
        self.assertEqual((reply["type"], reply.get("code")), ("error", 403), reply)
        await self.assertNothing(socket)
