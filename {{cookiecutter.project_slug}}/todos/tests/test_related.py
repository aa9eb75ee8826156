"""What REST shows of other rows reaches live subscribers too: a todo shows its owner's name and
its tags' names, so renaming either, or tagging a todo, changes the todo as REST shows it. And
every way of writing is seen, signals or not: the database's capture logs each change."""

from unittest import mock

from django.db import connection
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.live import LiveTestCase
from todos.models import Tag, Todo
from todos.tests import views
from todos.views import TodoViewSet

MODEL = "todos.Todo"
# Writes that send no signal wake no server: they arrive at the next poll of the change log.
QUICK_POLL = {"REST_LIVE_CHANGE_POLL_SECONDS": 0.1}


class ManyToManyTests(LiveTestCase):
    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.todo = await self.db(Todo.objects.create, title="milk")
        self.home = await self.db(Tag.objects.create, name="home")
        self.shop = await self.db(Tag.objects.create, name="shop")
        self.socket = await self.connect()
        self.sub = await self.subscribe(self.socket, MODEL)

    async def assertTags(self, names):
        message = await self.assertBroadcast(self.socket, "UPDATED", id=self.sub)
        self.assertEqual(message["instance"]["tags"], names)
        await self.assertNothing(self.socket)  # one frame per change

    async def test_add_remove_set_and_clear(self):
        await self.db(self.todo.tags.add, self.home)
        await self.assertTags(["home"])
        await self.db(self.todo.tags.add, self.shop)
        await self.assertTags(["home", "shop"])
        await self.db(self.todo.tags.remove, self.home)
        await self.assertTags(["shop"])
        await self.db(self.todo.tags.set, [self.home])
        await self.assertTags(["home"])
        await self.db(self.todo.tags.clear)
        await self.assertTags([])

    async def test_the_reverse_side_too(self):
        await self.db(self.home.todos.add, self.todo)
        await self.assertTags(["home"])

    async def test_renaming_a_tag_updates_the_todos_that_show_it_and_no_others(self):
        await self.db(Todo.objects.create, title="untagged")
        await self.assertBroadcast(self.socket, "CREATED", {"title": "untagged"}, id=self.sub)
        await self.db(self.todo.tags.add, self.home)
        await self.assertTags(["home"])
        self.home.name = "house"
        await self.db(self.home.save)
        await self.assertTags(["house"])

    @override_settings(**QUICK_POLL)
    async def test_deleting_a_tag_or_renaming_it_in_sql(self):
        await self.db(self.todo.tags.add, self.home, self.shop)
        await self.assertTags(["home", "shop"])
        await self.db(Tag.objects.filter(pk=self.shop.pk).update, name="store")
        await self.assertTags(["home", "store"])
        await self.db(self.home.delete)
        await self.assertTags(["store"])


class CostTests(LiveTestCase):
    async def test_finding_the_todos_a_tag_rename_touches_costs_one_query_for_any_subscribers(self):
        tag = await self.db(Tag.objects.create, name="home")
        for title in ("milk", "bread", "eggs"):
            todo = await self.db(Todo.objects.create, title=title)
            await self.db(todo.tags.add, tag)
        finding = {count: await self.queries_finding_todos(tag, count) for count in (1, 10)}
        self.assertEqual(finding, {1: 1, 10: 1})

    async def queries_finding_todos(self, tag, count):
        """Queries that looked for the todos showing `tag`, with `count` distinct subscriptions
        (each its own search) watching them."""
        sockets = [await self.connect() for _ in range(count)]
        for number, socket in enumerate(sockets):
            # A parameter the view ignores: the subscriptions differ, what they see does not.
            await self.subscribe(socket, MODEL, query_params={"unused": str(number)})
        async with self.captureQueries() as queries:
            tag.name = f"{tag.name}!"
            await self.db(tag.save)
            for socket in sockets:
                for _ in range(3):
                    await self.assertBroadcast(socket, "UPDATED")
        for socket in sockets:
            await socket.disconnect()
        return sum('"tag_id" IN' in sql for sql in queries)


class OwnerTests(LiveTestCase):
    async def test_renaming_the_owner_updates_their_todos(self):
        ada = await self.create_user("ada")
        await self.db(Todo.objects.create, title="milk", owner=ada)
        await self.db(Todo.objects.create, title="nobody's")
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL)

        ada.username = "ada.lovelace"
        await self.db(ada.save)
        await self.assertBroadcast(
            socket, "UPDATED", {"title": "milk", "owner": "ada.lovelace"}, id=sub
        )
        await self.assertNothing(socket)

    async def test_a_change_the_todos_do_not_show_sends_nothing(self):
        ada = await self.create_user("ada")
        await self.db(Todo.objects.create, title="milk", owner=ada)
        socket = await self.connect()
        await self.subscribe(socket, MODEL)
        ada.email = "ada@example.com"  # the serializer shows the username only
        await self.db(ada.save)
        await self.assertNothing(socket, timeout=0.5)


class FilteredOnOwnerTests(LiveTestCase):
    application = views.application
    path = "/ws/active-owners/"

    async def test_a_filter_on_the_owner_decides_entering_and_leaving(self):
        ada = await self.create_user("ada")
        await self.db(Todo.objects.create, title="milk", owner=ada)
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL)

        ada.is_active = False
        await self.db(ada.save)
        await self.assertBroadcast(socket, "DELETED", {"id": 1}, id=sub)
        ada.is_active = True
        await self.db(ada.save)
        await self.assertBroadcast(socket, "CREATED", {"title": "milk"}, id=sub)


@override_settings(**QUICK_POLL)
class WritePathTests(LiveTestCase):
    """Writes that send no signal, seen by the database's capture alone."""

    async def test_bulk_create_and_bulk_update(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL)
        created = await self.db(Todo.objects.bulk_create, [Todo(title="a"), Todo(title="b")])
        received = [await self.assertBroadcast(socket, "CREATED", id=sub) for _ in created]
        self.assertEqual({m["instance"]["title"] for m in received}, {"a", "b"})

        def finish_all():
            todos = list(Todo.objects.all())
            for todo in todos:
                todo.done = True
            Todo.objects.bulk_update(todos, ["done"])

        await self.db(finish_all)
        received = [await self.assertBroadcast(socket, "UPDATED", id=sub) for _ in created]
        self.assertTrue(all(m["instance"]["done"] for m in received))
        await self.assertNothing(socket)

    async def test_raw_sql(self):
        todo = await self.db(Todo.objects.create, title="milk")
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL)

        def rename():
            with connection.cursor() as cursor:
                cursor.execute("UPDATE todos_todo SET title = %s WHERE id = %s", ["oat", todo.pk])

        await self.db(rename)
        await self.assertBroadcast(socket, "UPDATED", {"title": "oat"}, id=sub)

        def delete():
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM todos_todo WHERE id = %s", [todo.pk])

        await self.db(delete)
        await self.assertBroadcast(socket, "DELETED", {"id": todo.pk}, id=sub)


class RestWriteTests(LiveTestCase):
    """A REST write that sets tags: the client ends with the tags, whether the view writes them
    in one transaction (TodoViewSet) or in several."""

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.user = await self.create_user("ada")
        token = await self.db(Token.objects.create, user=self.user)
        self.api = APIClient()
        self.api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        await self.db(Tag.objects.create, name="home")
        await self.db(Tag.objects.create, name="shop")

    async def last_state(self, socket, sub, until):
        """Apply broadcasts until the todo shows `until`; return it and the frames seen."""
        frames, state = [], {}
        while state.get("tags") != until:
            frames.append(await self.receive(socket))
            self.assertEqual(frames[-1]["id"], sub)
            state = frames[-1]["instance"]
        return state, frames

    async def post_then_patch(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL)
        response = await self.db(
            self.api.post, "/api/todos/", {"title": "milk", "tags": ["home"]}, format="json"
        )
        self.assertEqual(response.status_code, 201, response.content)
        state, created = await self.last_state(socket, sub, ["home"])
        self.assertEqual(state, response.json())
        todo = response.json()["id"]
        response = await self.db(
            self.api.patch, f"/api/todos/{todo}/", {"tags": ["home", "shop"]}, format="json"
        )
        state, updated = await self.last_state(socket, sub, ["home", "shop"])
        self.assertEqual(state, response.json())
        self.assertEqual(created[0]["action"], "CREATED")
        return created, updated

    async def test_in_one_transaction_each_write_is_one_frame(self):
        created, updated = await self.post_then_patch()
        self.assertEqual((len(created), len(updated)), (1, 1))

    async def test_written_in_several_transactions_the_client_still_ends_right(self):
        # The todo commits before its tags are set, so it may arrive first without them.
        def create(view, serializer):
            serializer.save(owner=view.request.user)

        with (
            mock.patch.object(TodoViewSet, "perform_create", create),
            mock.patch.object(TodoViewSet, "perform_update", lambda view, s: s.save()),
        ):
            await self.post_then_patch()

    async def test_with_atomic_requests_each_write_is_one_frame(self):
        with mock.patch.dict(connection.settings_dict, ATOMIC_REQUESTS=True):
            created, updated = await self.post_then_patch()
        self.assertEqual((len(created), len(updated)), (1, 1))
