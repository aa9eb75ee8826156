"""What django-rest-live 0.7 clients and views rely on (docs/protocol.md, "Differences from
django-rest-live 0.7")."""

from django.test import SimpleTestCase

from tests.live import LiveTestCase
from todos.models import Todo
from todos.tests import views
from todos.views import TodoViewSet

MODEL = "todos.Todo"


class PackageNamesTests(SimpleTestCase):
    def test_actions_import_from_the_package_as_in_0_7(self):
        from rest_live import CREATED, DELETED, UPDATED

        self.assertEqual((CREATED, UPDATED, DELETED), ("CREATED", "UPDATED", "DELETED"))


class DeletedPayloadTests(LiveTestCase):
    async def test_deleted_carries_the_pk_as_pk_and_as_id(self):
        todo = await self.db(Todo.objects.create, title="milk")
        pk = todo.pk
        socket = await self.connect()
        listing = await self.subscribe(socket, MODEL)
        single = await self.subscribe(socket, MODEL, "retrieve", lookup_by=pk)
        await self.db(todo.delete)
        for _ in range(2):
            message = await self.assertBroadcast(socket, "DELETED")
            self.assertIn(message["id"], {listing, single})
            self.assertEqual(message["instance"], {"id": pk, "pk": pk})


class RendererTests(LiveTestCase):
    application = views.application

    async def test_deleted_is_rendered_by_the_views_renderer(self):
        socket = await self.connect(path="/ws/camel-case/")
        sub = await self.subscribe(socket, MODEL)
        todo = await self.db(Todo.objects.create, title="milk")
        created = await self.assertBroadcast(socket, "CREATED", {"title": "milk"}, id=sub)
        self.assertIn("createdAt", created["instance"])

        pk = todo.pk
        await self.db(todo.delete)
        deleted = await self.assertBroadcast(socket, "DELETED", id=sub)
        self.assertEqual(set(deleted["instance"]), {"id", "pk", "createdAt"})
        self.assertEqual((deleted["instance"]["id"], deleted["instance"]["pk"]), (pk, pk))


class BareGenericViewTests(LiveTestCase):
    """A GenericAPIView with neither action is served both, through its queryset and filters."""

    application = views.application
    path = "/ws/bare/"

    async def test_list_through_get_queryset_and_filter_queryset(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL, query_params={"search": "milk"})
        await self.db(Todo.objects.create, title="bread")
        todo = await self.db(Todo.objects.create, title="milk")
        await self.assertBroadcast(socket, "CREATED", {"id": todo.pk, "title": "milk"}, id=sub)

        todo.done = True  # the view lists open todos only
        await self.db(todo.save)
        message = await self.assertBroadcast(socket, "DELETED", id=sub)
        self.assertEqual(message["instance"], {"id": todo.pk, "pk": todo.pk})
        await self.assertNothing(socket)

    async def test_retrieve_by_the_lookup_field(self):
        todo = await self.db(Todo.objects.create, title="milk")
        await self.db(Todo.objects.create, title="bread")
        socket = await self.connect()
        sub = await self.subscribe(socket, MODEL, "retrieve", lookup_by=todo.pk)

        todo.done = True  # still retrievable: only lists leave done todos out
        await self.db(todo.save)
        await self.assertBroadcast(socket, "UPDATED", {"id": todo.pk, "done": True}, id=sub)
        pk = todo.pk
        await self.db(todo.delete)
        await self.assertBroadcast(socket, "DELETED", {"id": pk, "pk": pk}, id=sub)
        await self.assertNothing(socket)

    async def test_snapshot(self):
        await self.db(Todo.objects.create, title="milk")
        await self.db(Todo.objects.create, title="bread", done=True)
        socket = await self.connect()
        self.assertSnapshot(await self.subscribe_with_snapshot(socket, MODEL), ["milk"])


class OneActionViewTests(LiveTestCase):
    """A view with one of the two actions serves that one only, as over REST."""

    application = views.application

    async def test_a_list_view_refuses_retrieve_and_serves_list(self):
        socket = await self.connect(path="/ws/listed/")
        await socket.send_json_to(
            {"type": "subscribe", "id": 1, "model": MODEL, "action": "retrieve", "lookup_by": 1}
        )
        error = await self.assertError(socket, 400, id=1)
        self.assertIn("use 'list'", error["message"])

        sub = await self.subscribe(socket, MODEL, id=2)
        await self.db(Todo.objects.create, title="milk")
        await self.assertBroadcast(socket, "CREATED", {"title": "milk"}, id=sub)
        await self.assertNothing(socket)  # the refused subscription got nothing

    async def test_a_retrieve_view_refuses_list_and_serves_retrieve(self):
        socket = await self.connect(path="/ws/retrieved/")
        await socket.send_json_to({"type": "subscribe", "id": 1, "model": MODEL, "action": "list"})
        error = await self.assertError(socket, 400, id=1)
        self.assertIn("use 'retrieve'", error["message"])

        sub = await self.subscribe(socket, MODEL, "retrieve", id=2, lookup_by=1)
        await self.db(Todo.objects.create, title="milk")
        await self.assertBroadcast(socket, "CREATED", {"id": 1, "title": "milk"}, id=sub)
        await self.assertNothing(socket)


class LiveActionsTests(SimpleTestCase):
    def test_the_actions_a_view_has_or_both_when_it_has_neither(self):
        cases = [
            (TodoViewSet, ("list", "retrieve")),
            (views.ListedTodoView, ("list",)),
            (views.RetrievedTodoView, ("retrieve",)),
            (views.BareTodoView, ("list", "retrieve")),
        ]
        for view, actions in cases:
            with self.subTest(view=view.__name__):
                self.assertEqual(view.get_live_actions(), actions)
