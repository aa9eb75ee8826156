"""The pytest fixtures of rest_live/pytest_plugin.py: connected clients, signed-in clients, and
assertions that fail loudly (on the wrong frame, at their deadline, on a dead consumer).
"""

import pytest
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.contrib.auth.models import Group
from django.urls import path
from rest_framework import permissions

from rest_live.routers import RealtimeRouter
from tests.groups import GroupViewSet

MODEL = "auth.Group"


async def test_a_live_client_is_connected_to_the_project_application(live_client):
    # The project's origin check accepts it, and its consumer answers.
    await live_client.send_json_to({"type": "subscribe", "id": 1, "model": "no.Such"})
    assert (await live_client.receive_frame())["type"] == "error"
    await live_client.expect_nothing()


async def test_expect_nothing_fails_once_the_consumer_is_dead(live_client):
    with pytest.raises(TimeoutError):
        await live_client.receive_output(timeout=0.1)  # cancels the application, as asgiref does
    with pytest.raises(AssertionError, match="has stopped"):
        await live_client.expect_nothing()


class MembersGroupViewSet(GroupViewSet):
    permission_classes = [permissions.IsAuthenticated]


def _consumer(view):
    router = RealtimeRouter()
    router.register(view)
    return router.as_consumer().as_asgi()


class TestWithGroupsServedLive:
    """`auth.Group`, which every bake has, served to anyone and to members only."""

    @pytest.fixture
    def live_application(self):
        return AuthMiddlewareStack(
            URLRouter(
                [
                    path("ws/subscribe/", _consumer(GroupViewSet)),
                    path("ws/members/", _consumer(MembersGroupViewSet)),
                ]
            )
        )

    async def test_a_live_client_gets_broadcasts(self, live_client):
        sub = await live_client.subscribe(MODEL)
        group = await Group.objects.acreate(name="staff")
        pk = group.pk
        await live_client.expect_broadcast("CREATED", {"id": pk, "name": "staff"}, id=sub)
        await group.adelete()
        await live_client.expect_broadcast("DELETED", {"id": pk}, id=sub)
        await live_client.expect_nothing()

    async def test_a_client_signed_in_as_a_user(self, live_client_for, django_user_model):
        alice = await django_user_model.objects.acreate_user("alice")
        anonymous = await live_client_for(path="/ws/members/")
        await anonymous.send_json_to(
            {"type": "subscribe", "id": 1, "model": MODEL, "action": "list"}
        )
        assert (await anonymous.receive_frame())["code"] == 403

        member = await live_client_for(alice, path="/ws/members/")
        sub = await member.subscribe(MODEL)
        await Group.objects.acreate(name="staff")
        await member.expect_broadcast("CREATED", {"name": "staff"}, id=sub)

    async def test_expect_broadcast_says_what_it_expected_and_what_came(self, live_client):
        sub = await live_client.subscribe(MODEL)
        await Group.objects.acreate(name="staff")
        expected = f"expected a UPDATED broadcast for subscription {sub}, got .*'CREATED'"
        with pytest.raises(AssertionError, match=expected):
            await live_client.expect_broadcast("UPDATED", id=sub)

    async def test_expect_broadcast_compares_the_instance(self, live_client):
        sub = await live_client.subscribe(MODEL)
        await Group.objects.acreate(name="staff")
        with pytest.raises(AssertionError, match="with name='admins', got name='staff'"):
            await live_client.expect_broadcast("CREATED", {"name": "admins"}, id=sub)

    async def test_expect_broadcast_fails_at_its_deadline(self, live_client):
        await live_client.subscribe(MODEL)
        with pytest.raises(AssertionError, match=r"nothing arrived within 0\.1 s"):
            await live_client.expect_broadcast("CREATED", timeout=0.1)

    async def test_expect_nothing_fails_on_a_frame(self, live_client):
        await live_client.subscribe(MODEL)
        await Group.objects.acreate(name="staff")
        with pytest.raises(AssertionError, match="unexpected frame: .*'CREATED'"):
            await live_client.expect_nothing(timeout=5)  # returns when the frame arrives
