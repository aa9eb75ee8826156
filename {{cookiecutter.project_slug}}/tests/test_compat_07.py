"""What django-rest-live 0.7's own test suite found when run against this `rest_live`, and what was
decided for each (docs/protocol.md, "Differences from django-rest-live 0.7"): a subscribe's
errors come in 0.7's order, a view is registered once per router, and settings without
ROOT_URLCONF (as 0.7's test settings have) pass the system checks.

The example app's 0.7 behaviour is in todos/tests/test_compat.py; this file needs only
`auth.Group`, so it runs in every bake.
"""

from io import StringIO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import SimpleTestCase, override_settings

from rest_live.checks import check_live_views_are_routed
from rest_live.routers import RealtimeRouter
from tests.groups import GroupViewSet, served_at
from tests.live import LiveTestCase


class ErrorPrecedenceTests(LiveTestCase):
    """Which error a subscribe with several faults gets (docs/protocol.md, "error")."""

    application = served_at("ws/")
    path = "/ws/"

    async def test_an_unknown_model_is_404_whatever_else_is_wrong(self):
        # 0.7's test_subscribe_to_unknown_model sends no action (and a `value` 0.7 ignored).
        socket = await self.connect()
        for fields in [
            {"value": 1},
            {"action": "destroy"},
            {"action": "retrieve"},  # no lookup_by
            {"action": "list", "lookup_by": 1, "query_params": [], "snapshot": "yes"},
            {"action": "list", "view_kwargs": {"pk": {"in": [1]}}, "resume": 7},
        ]:
            await socket.send_json_to(
                {"type": "subscribe", "id": 1337, "model": "blah.Model", **fields}
            )
            error = await self.assertError(socket, 404, id=1337)
            self.assertEqual(error["message"], "No live view serves model 'blah.Model'.")

    async def test_a_served_model_with_a_fault_is_400(self):
        # 0.7's test_no_value_in_request: a known model without an action.
        socket = await self.connect()
        await socket.send_json_to({"type": "subscribe", "id": 1337, "model": "auth.Group"})
        error = await self.assertError(socket, 400, id=1337)
        self.assertIn("'action'", error["message"])

    async def test_without_a_model_it_is_400(self):
        # 0.7's test_no_model_in_request.
        socket = await self.connect()
        for fields in [{"value": 1}, {"model": 7, "action": "list"}, {"model": ""}]:
            await socket.send_json_to({"type": "subscribe", "id": 1337, **fields})
            error = await self.assertError(socket, 400, id=1337)
            self.assertIn("'model'", error["message"])

    async def test_the_frame_and_its_id_come_before_the_model(self):
        socket = await self.connect()
        await socket.send_json_to({"type": "subscribe", "model": "blah.Model"})
        await self.assertError(socket, 400, id=None)
        await socket.send_json_to({"type": "publish", "id": 1, "model": "blah.Model"})
        await self.assertError(socket, 400, id=1)

    async def test_an_unknown_model_comes_before_the_sockets_own_refusals(self):
        socket = await self.connect()
        sub = await self.subscribe(socket, "auth.Group")
        # The id is in use, which alone would be a 400: the model is reported first.
        await socket.send_json_to(
            {"type": "subscribe", "id": sub, "model": "blah.Model", "action": "list"}
        )
        await self.assertError(socket, 404, id=sub)
        with override_settings(REST_LIVE_MAX_SUBSCRIPTIONS=1):  # full, which alone would be a 429
            await socket.send_json_to(
                {"type": "subscribe", "id": "x", "model": "blah.Model", "action": "list"}
            )
            await self.assertError(socket, 404, id="x")
            await socket.send_json_to(
                {"type": "subscribe", "id": "y", "model": "auth.Group", "action": "list"}
            )
            await self.assertError(socket, 429, id="y")


class RegisteringTwiceTests(SimpleTestCase):
    def test_the_same_view_twice_on_one_router_is_refused(self):
        # 0.7's test_model_has_two_views registers one view twice, and expects it refused.
        router = RealtimeRouter()
        router.register(GroupViewSet)
        with self.assertRaisesMessage(
            ImproperlyConfigured, "GroupViewSet is already registered on this router"
        ):
            router.register(GroupViewSet)
        with self.assertRaisesMessage(ImproperlyConfigured, "already registered"):
            router.register_all([GroupViewSet])
        self.assertEqual(router.views(), [(GroupViewSet.get_live_model(), GroupViewSet)])

    def test_the_same_view_on_two_routers_is_fine(self):
        first, second = RealtimeRouter(), RealtimeRouter(public=False)
        first.register(GroupViewSet)
        second.register(GroupViewSet)
        self.assertEqual(first.view_for("auth.Group"), second.view_for("auth.Group"))


class NoRootUrlconfTests(SimpleTestCase):
    # `check` runs Django's checks too, and on Django 6 one of them queries the database.
    databases = {"default"}

    @override_settings()
    def test_settings_without_root_urlconf_pass_the_checks(self):
        del settings.ROOT_URLCONF  # 0.7's test settings have none
        self.assertFalse(hasattr(settings, "ROOT_URLCONF"))
        # No URLconf, so no view in it to find unrouted: skipped, as Django's URL checks are.
        self.assertEqual(check_live_views_are_routed(None), [])
        call_command("check", stdout=StringIO(), stderr=StringIO())  # raised AttributeError

    @override_settings(ROOT_URLCONF="")
    def test_an_empty_root_urlconf_is_skipped_too(self):
        self.assertEqual(check_live_views_are_routed(None), [])
