"""Live subscriptions to todos with pytest fixtures (rest_live/pytest_plugin.py): the pytest
twins of test_live.py. Run with `pytest`; `python manage.py test` leaves this file alone."""

import pytest
from asgiref.sync import sync_to_async
from django.db import transaction

from rest_live import broadcast
from todos.models import Todo
from todos.tests import views

MODEL = "todos.Todo"


async def test_owner_sees_new_todo(live_client_for, django_user_model):
    """The README's example, kept here so it stays true."""
    alice = await django_user_model.objects.acreate_user("alice")
    client = await live_client_for(alice)
    sub = await client.subscribe("todos.Todo", "list")
    await Todo.objects.acreate(title="milk", owner=alice)
    await client.expect_broadcast("CREATED", {"title": "milk", "owner": "alice"}, id=sub)
    await client.expect_nothing()


# --- retrieve ---------------------------------------------------------------------------------


async def test_update_and_delete_of_the_watched_todo(live_client):
    todo = await Todo.objects.acreate(title="milk")
    sub = await live_client.subscribe(MODEL, "retrieve", lookup_by=todo.pk)

    todo.title = "oat milk"
    await todo.asave()
    await live_client.expect_broadcast("UPDATED", {"id": todo.pk, "title": "oat milk"}, id=sub)

    pk = todo.pk
    await todo.adelete()
    message = await live_client.expect_broadcast("DELETED", id=sub)
    assert message["instance"] == {"id": pk, "pk": pk}


async def test_other_todos_send_nothing(live_client):
    todo = await Todo.objects.acreate(title="milk")
    await live_client.subscribe(MODEL, "retrieve", lookup_by=todo.pk)
    await Todo.objects.acreate(title="bread")
    await live_client.expect_nothing()


async def test_a_lookup_given_as_a_string_watches_the_integer_pk(
    live_client, django_db_reset_sequences
):
    sub = await live_client.subscribe(MODEL, "retrieve", lookup_by="1")
    todo = await Todo.objects.acreate(title="first")
    assert todo.pk == 1
    await live_client.expect_broadcast("CREATED", {"id": 1, "title": "first"}, id=sub)


# --- list -------------------------------------------------------------------------------------


async def test_create_update_delete(live_client):
    sub = await live_client.subscribe(MODEL)
    todo = await Todo.objects.acreate(title="milk")
    await live_client.expect_broadcast("CREATED", {"title": "milk", "done": False}, id=sub)
    todo.done = True
    await todo.asave()
    await live_client.expect_broadcast("UPDATED", {"done": True}, id=sub)
    pk = todo.pk
    await todo.adelete()
    await live_client.expect_broadcast("DELETED", {"id": pk}, id=sub)


async def test_query_params_decide_entering_and_leaving(live_client):
    sub = await live_client.subscribe(MODEL, query_params={"search": "milk"})
    todo = await Todo.objects.acreate(title="bread")
    await live_client.expect_nothing()

    todo.title = "milk"
    await todo.asave()
    await live_client.expect_broadcast("CREATED", {"title": "milk"}, id=sub)

    todo.title = "bread again"
    await todo.asave()
    message = await live_client.expect_broadcast("DELETED", id=sub)
    assert message["instance"] == {"id": todo.pk, "pk": todo.pk}

    await todo.adelete()
    await live_client.expect_nothing()


async def test_rolled_back_writes_send_nothing(live_client):
    await live_client.subscribe(MODEL)

    def write_then_fail():
        with transaction.atomic():
            Todo.objects.create(title="never")
            raise RuntimeError("rollback")

    with pytest.raises(RuntimeError):
        await sync_to_async(write_then_fail)()
    await live_client.expect_nothing()
    assert not await Todo.objects.aexists()


async def test_bulk_update_announced_with_broadcast(live_client):
    first = await Todo.objects.acreate(title="a")
    second = await Todo.objects.acreate(title="b")
    sub = await live_client.subscribe(MODEL)

    def finish_all():
        queryset = Todo.objects.all()
        queryset.update(done=True)  # QuerySet.update sends no signals
        broadcast(queryset)

    await sync_to_async(finish_all)()
    received = [await live_client.expect_broadcast("UPDATED", id=sub) for _ in range(2)]
    assert {(m["instance"]["id"], m["instance"]["done"]) for m in received} == {
        (first.pk, True),
        (second.pk, True),
    }


async def test_several_subscriptions_on_one_socket(live_client):
    todo = await Todo.objects.acreate(title="milk")
    listing = await live_client.subscribe(MODEL)
    single = await live_client.subscribe(MODEL, "retrieve", lookup_by=todo.pk)
    todo.done = True
    await todo.asave()
    received = {(await live_client.receive_frame())["id"] for _ in range(2)}
    assert received == {listing, single}


async def test_unsubscribe_stops_broadcasts(live_client):
    sub = await live_client.subscribe(MODEL)
    await live_client.unsubscribe(sub)
    await Todo.objects.acreate(title="milk")
    await live_client.expect_nothing()


async def test_a_snapshot_then_the_changes_after_it(live_client):
    await Todo.objects.acreate(title="milk")
    snapshot = await live_client.subscribe_with_snapshot(MODEL)
    assert [item["title"] for item in snapshot["instances"]] == ["milk"]
    await Todo.objects.acreate(title="bread")
    await live_client.expect_broadcast("CREATED", {"title": "bread"}, id=snapshot["id"])


# --- per user: the test views of todos/tests/views.py -----------------------------------------


class TestPerUser:
    @pytest.fixture
    def live_application(self):
        return views.application

    @pytest.fixture
    async def alice(self, django_user_model, transactional_db):
        return await django_user_model.objects.acreate_user("alice", email="alice@example.com")

    @pytest.fixture
    async def bob(self, django_user_model, transactional_db):
        return await django_user_model.objects.acreate_user("bob", email="bob@example.com")

    async def test_owner_based_visibility(self, live_client_for, alice, bob):
        client = await live_client_for(alice, path="/ws/private/")
        sub = await client.subscribe(MODEL)
        await Todo.objects.acreate(title="bob's", owner=bob)
        await client.expect_nothing()

        todo = await Todo.objects.acreate(title="alice's", owner=alice)
        await client.expect_broadcast("CREATED", {"title": "alice's"}, id=sub)

        todo.owner = bob
        await todo.asave()
        await client.expect_broadcast("DELETED", {"id": todo.pk}, id=sub)

        todo.owner = alice
        await todo.asave()
        await client.expect_broadcast("CREATED", {"id": todo.pk}, id=sub)

    async def test_private_router_closes_anonymous_sockets(self, live_client_for):
        client = await live_client_for(path="/ws/private/")
        closed = await client.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4003}

    async def test_serializer_per_user(self, live_client_for, alice, bob):
        alice.is_staff = True
        await alice.asave()
        staff = await live_client_for(alice, path="/ws/private/")
        plain = await live_client_for(bob, path="/ws/private/")
        await staff.subscribe(MODEL)
        await plain.subscribe(MODEL)
        await Todo.objects.acreate(title="a", owner=alice)
        await Todo.objects.acreate(title="b", owner=bob)
        staff_view = await staff.expect_broadcast("CREATED", {"title": "a"})
        plain_view = await plain.expect_broadcast("CREATED", {"title": "b"})
        assert staff_view["instance"]["owner_email"] == "alice@example.com"
        assert "owner_email" not in plain_view["instance"]

    async def test_view_permission_is_checked_at_subscribe_and_at_every_change(
        self, live_client_for, alice, bob
    ):
        alice.is_staff = True
        await alice.asave()
        refused = await live_client_for(bob, path="/ws/staff/")
        await refused.send_json_to({"type": "subscribe", "id": 1, "model": MODEL, "action": "list"})
        error = await refused.receive_frame()
        assert (error["type"], error["code"], error["id"]) == ("error", 403, 1)

        client = await live_client_for(alice, path="/ws/staff/")
        sub = await client.subscribe(MODEL)
        todo = await Todo.objects.acreate(title="milk")
        await client.expect_broadcast("CREATED", id=sub)

        alice.is_staff = False
        await alice.asave()
        todo.done = True
        await todo.asave()
        await client.expect_broadcast("DELETED", {"id": todo.pk}, id=sub)
        await Todo.objects.acreate(title="bread")
        await client.expect_nothing()

    async def test_object_permissions_on_retrieve(self, live_client_for, alice, bob):
        todo = await Todo.objects.acreate(title="alice's", owner=alice)
        owner = await live_client_for(alice, path="/ws/owned/")
        other = await live_client_for(bob, path="/ws/owned/")
        await owner.subscribe(MODEL, "retrieve", lookup_by=todo.pk)
        await other.subscribe(MODEL, "retrieve", lookup_by=todo.pk)
        todo.done = True
        await todo.asave()
        await owner.expect_broadcast("UPDATED", {"done": True})
        await other.expect_nothing()

        todo.owner = bob
        await todo.asave()
        await owner.expect_broadcast("DELETED", {"id": todo.pk})
        await other.expect_broadcast("CREATED", {"id": todo.pk})
