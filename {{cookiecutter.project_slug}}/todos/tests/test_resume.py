"""A client that was away resumes from its position: it gets what REST shows it now of the todos
that changed, whatever changed them (a tag renamed, a tag added, a raw UPDATE), and nothing
else (docs/protocol.md, "Resuming")."""

from django.db import connection

from rest_live.testing import ClientState
from tests.live import LiveTestCase
from todos.models import Tag, Todo

MODEL = "todos.Todo"


class ResumeTests(LiveTestCase):
    async def rest(self):
        response = await self.db(self.client.get, "/api/todos/")
        return {todo["id"]: todo for todo in response.json()}

    async def test_related_rows_and_raw_sql_changed_while_away(self):
        home = await self.db(Tag.objects.create, name="home")
        todos = [await self.db(Todo.objects.create, title=f"todo {i}") for i in range(20)]
        await self.db(todos[0].tags.add, home)
        state = ClientState()
        socket = await self.connect()
        state.apply(await self.subscribe_with_snapshot(socket, MODEL, id=1))
        await socket.disconnect()

        home.name = "house"
        await self.db(home.save)  # todo 0 shows it
        await self.db(todos[1].tags.add, home)

        def raw_update():
            with connection.cursor() as cursor:
                cursor.execute("UPDATE todos_todo SET done = %s WHERE id = %s", [True, todos[2].pk])

        await self.db(raw_update)
        await self.db(Todo.objects.filter(pk=todos[3].pk).delete)

        socket = await self.connect()
        frame = {"type": "subscribe", "id": 1, "model": MODEL, "action": "list"}
        await socket.send_json_to({**frame, "resume": state.position})
        resumed = await self.receive(socket)
        self.assertEqual(resumed["type"], "resumed", resumed)
        changed = sorted(item["pk"] for item in resumed["broadcasts"])
        self.assertEqual(changed, [todo.pk for todo in todos[:4]])  # the 16 others: nothing
        state.apply(resumed)
        self.assertEqual(state.of(1), await self.rest())


if connection.vendor == "postgresql":  # SQLite has no TRUNCATE

    class TruncateTests(LiveTestCase):
        async def test_one_reset_however_many_tables_a_truncate_empties(self):
            home = await self.db(Tag.objects.create, name="home")
            todo = await self.db(Todo.objects.create, title="milk")
            await self.db(todo.tags.add, home)
            socket = await self.connect()
            request_id = await self.subscribe(socket, MODEL)

            def truncate():
                with connection.cursor() as cursor:
                    cursor.execute("TRUNCATE todos_todo CASCADE")  # and todos_todo_tags

            await self.db(truncate)
            await self.assertReset(socket, request_id)
            await self.assertNothing(socket, timeout=0.5)
