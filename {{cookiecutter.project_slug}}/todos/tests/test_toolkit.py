"""The documented test samples, run against the project's real ASGI application."""

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.test import TransactionTestCase

from config.asgi import application
from rest_live.testing import APICommunicator, async_test, get_headers_for_user
from todos.models import Todo


class SampleTests(TransactionTestCase):
    reset_sequences = True  # the sample watches lookup_by "1", the first todo's pk

    async def test_subscribe(self):
        client = APICommunicator(application, "/ws/subscribe/")
        connected, _ = await client.connect()
        self.assertTrue(connected)
        await client.send_json_to(
            {
                "type": "subscribe",
                "id": 1337,
                "model": "todos.Todo",
                "action": "retrieve",
                "lookup_by": "1",
            }
        )
        self.assertTrue(await client.receive_nothing())
        todo = await database_sync_to_async(Todo.objects.create)(title="x")
        self.assertEqual(todo.pk, 1)
        response = await client.receive_json_from()
        self.assertEqual(response["type"], "broadcast")
        self.assertEqual(response["id"], 1337)
        self.assertEqual(response["model"], "todos.Todo")
        self.assertEqual(response["action"], "CREATED")
        self.assertEqual(response["instance"]["title"], "x")
        await client.disconnect()


class AsyncSetUpSampleTests(TransactionTestCase):
    async def asyncSetUp(self):
        self.user = await database_sync_to_async(get_user_model().objects.create_user)("alice")
        headers = await get_headers_for_user(self.user)
        self.client_ws = APICommunicator(application, "/ws/subscribe/", headers=headers)
        connected, _ = await self.client_ws.connect()
        self.assertTrue(connected)

    async def asyncTearDown(self):
        await self.client_ws.disconnect()

    @async_test
    async def test_subscribe_as_user(self):
        await self.client_ws.send_json_to(
            {"type": "subscribe", "id": 1, "model": "todos.Todo", "action": "list"}
        )
        self.assertTrue(await self.client_ws.receive_nothing())
        await database_sync_to_async(Todo.objects.create)(title="mine", owner=self.user)
        response = await self.client_ws.receive_json_from()
        self.assertEqual(response["action"], "CREATED")
        self.assertEqual(response["instance"]["owner"], "alice")

    @async_test
    async def test_the_socket_carries_the_session_user(self):
        self.assertEqual(self.client_ws.scope["headers"][0][0], b"host")
        self.assertTrue(any(name == b"cookie" for name, _ in self.client_ws.scope["headers"]))


class CommunicatorTests(TransactionTestCase):
    async def test_receive_nothing_fails_once_the_consumer_is_dead(self):
        client = APICommunicator(application, "/ws/subscribe/")
        await client.connect()
        with self.assertRaises(TimeoutError):
            await client.receive_output(timeout=0.1)  # cancels the application, as asgiref does
        with self.assertRaises(AssertionError):
            await client.receive_nothing()

    async def test_a_foreign_origin_is_refused(self):
        client = APICommunicator(
            application, "/ws/subscribe/", headers=[(b"origin", b"http://evil.example")]
        )
        with self.assertLogs("rest_live.origins", "INFO"):  # the refusal is logged, not shown
            connected, _ = await client.connect()
        self.assertFalse(connected)
