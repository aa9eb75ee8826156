"""rest_live on its own: configuration errors, a live model outside the example app, faults."""

from channels.auth import AuthMiddlewareStack
from channels.layers import InMemoryChannelLayer
from channels.routing import URLRouter
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Value
from django.db.models.functions import Concat
from django.test import SimpleTestCase, TransactionTestCase, override_settings
from django.urls import path
from rest_framework import serializers, viewsets
from rest_framework.test import APIRequestFactory

from rest_live.apps import RestLiveConfig
from rest_live.checks import check_settings
from rest_live.mixins import RealtimeMixin
from rest_live.routers import RealtimeRouter
from tests.groups import GroupSerializer, GroupViewSet, served_at
from tests.live import LiveTestCase


class GroupsByNameViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    model = Group
    serializer_class = GroupSerializer
    permission_classes = []
    lookup_field = "name"

    def get_queryset(self):
        return Group.objects.all()


group_router = RealtimeRouter()
group_router.register(GroupViewSet)
by_name_router = RealtimeRouter()
by_name_router.register(GroupsByNameViewSet)
application = AuthMiddlewareStack(
    URLRouter(
        [
            path("ws/groups/", group_router.as_consumer().as_asgi()),
            path("ws/groups-by-name/", by_name_router.as_consumer().as_asgi()),
        ]
    )
)
router_in_settings = group_router


class RouterConfigurationTests(SimpleTestCase):
    def test_a_view_without_the_mixin_is_refused(self):
        class PlainViewSet(viewsets.ReadOnlyModelViewSet):
            queryset = Group.objects.all()

        with self.assertRaisesMessage(ImproperlyConfigured, "add RealtimeMixin to its bases"):
            RealtimeRouter().register(PlainViewSet)

    def test_something_that_is_not_a_view_is_refused(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "must be a DRF GenericAPIView"):
            RealtimeRouter().register(GroupSerializer)

    def test_two_views_for_one_model_on_one_router_are_refused(self):
        router = RealtimeRouter()
        router.register(GroupViewSet)
        with self.assertRaisesMessage(ImproperlyConfigured, "one view per model per router"):
            router.register(GroupsByNameViewSet)

    def test_the_same_view_twice_on_one_router_is_refused(self):
        # As Django's admin refuses a model registered twice (tests/test_compat_07.py has 0.7's).
        router = RealtimeRouter()
        router.register(GroupViewSet)
        with self.assertRaisesMessage(ImproperlyConfigured, "register each view once"):
            router.register(GroupViewSet)

    def test_a_view_whose_model_cannot_be_determined_is_refused(self):
        class NoModelViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
            def get_queryset(self):
                return Group.objects.all()

        with self.assertRaisesMessage(ImproperlyConfigured, "Set `model = YourModel`"):
            RealtimeRouter().register(NoModelViewSet)

    def test_register_all(self):
        router = RealtimeRouter()
        router.register_all([GroupViewSet])
        self.assertEqual(router.view_for("AUTH.group"), (Group, GroupViewSet))

    def test_each_router_has_its_own_consumer(self):
        self.assertIsNot(group_router.as_consumer().router, by_name_router.as_consumer().router)

    def test_unimportable_router_setting_fails_at_startup(self):
        config = RestLiveConfig.create("rest_live")
        with override_settings(REST_LIVE_ROUTERS=["config.routing.nothing_here"]):
            with self.assertRaisesMessage(ImproperlyConfigured, "which cannot be imported"):
                config.ready()
        with override_settings(REST_LIVE_ROUTERS=["tests.test_rest_live.GroupViewSet"]):
            with self.assertRaisesMessage(ImproperlyConfigured, "not a RealtimeRouter instance"):
                config.ready()
        with override_settings(REST_LIVE_ROUTERS="tests.test_rest_live.router_in_settings"):
            with self.assertRaisesMessage(ImproperlyConfigured, "must be a list of dotted paths"):
                config.ready()
        with override_settings(REST_LIVE_ROUTERS=["tests.test_rest_live.router_in_settings"]):
            config.ready()


class SettingsCheckTests(SimpleTestCase):
    def test_the_snapshot_limit_must_be_a_positive_whole_number(self):
        for value in [0, -1, "100", 2.5, True]:
            with override_settings(REST_LIVE_SNAPSHOT_LIMIT=value):
                self.assertIn("rest_live.E002", [problem.id for problem in check_settings(None)])
        with override_settings(REST_LIVE_SNAPSHOT_LIMIT=50):
            self.assertNotIn("rest_live.E002", [problem.id for problem in check_settings(None)])

    def test_the_slow_close_time_must_be_a_number_above_0(self):
        for value in [0, -1, "10", None, True]:
            with override_settings(REST_LIVE_SLOW_CLOSE_SECONDS=value):
                problems = [p for p in check_settings(None) if p.id == "rest_live.E002"]
                self.assertIn("REST_LIVE_SLOW_CLOSE_SECONDS", problems[0].msg)
        with override_settings(REST_LIVE_SLOW_CLOSE_SECONDS=2.5):
            self.assertNotIn("rest_live.E002", [problem.id for problem in check_settings(None)])

    def test_the_publish_timeout_must_be_a_number_above_0(self):
        for value in [0, -1, "5", None, True]:
            with override_settings(REST_LIVE_PUBLISH_TIMEOUT_SECONDS=value):
                problems = [p for p in check_settings(None) if p.id == "rest_live.E002"]
                self.assertIn("REST_LIVE_PUBLISH_TIMEOUT_SECONDS", problems[0].msg)
        with override_settings(REST_LIVE_PUBLISH_TIMEOUT_SECONDS=0.5):
            self.assertNotIn("rest_live.E002", [problem.id for problem in check_settings(None)])

    def test_the_allowed_origins_must_be_a_list_of_strings(self):
        for value in ["https://app.example.com", [1], {"https://app.example.com": True}]:
            with override_settings(WEBSOCKET_ALLOWED_ORIGINS=value):
                problems = [p for p in check_settings(None) if p.id == "rest_live.E002"]
                self.assertIn("WEBSOCKET_ALLOWED_ORIGINS", problems[0].msg)
        for value in [[], None, ["https://app.example.com"], ("example.com",)]:
            with override_settings(WEBSOCKET_ALLOWED_ORIGINS=value):
                ids = [problem.id for problem in check_settings(None)]
                self.assertNotIn("rest_live.E002", ids)

    def test_an_empty_router_list_is_a_warning(self):
        for value in [[], None]:
            with override_settings(REST_LIVE_ROUTERS=value):
                self.assertIn("rest_live.W001", [problem.id for problem in check_settings(None)])


class GroupLiveTests(LiveTestCase):
    application = application

    async def test_a_model_outside_the_example_app(self):
        socket = await self.connect(path="/ws/groups/")
        sub = await self.subscribe(socket, "auth.Group")
        group = await self.db(Group.objects.create, name="editors")
        await self.assertBroadcast(socket, "CREATED", {"id": group.pk, "name": "editors"}, id=sub)

    async def test_deleted_carries_a_lookup_field_other_than_the_pk(self):
        group = await self.db(Group.objects.create, name="editors")
        socket = await self.connect(path="/ws/groups-by-name/")
        listing = await self.subscribe(socket, "auth.Group")
        single = await self.subscribe(socket, "auth.Group", "retrieve", lookup_by="editors")
        pk = group.pk
        await self.db(group.delete)
        for _ in range(2):
            message = await self.assertBroadcast(socket, "DELETED")
            self.assertIn(message["id"], {listing, single})
            self.assertEqual(message["instance"], {"id": pk, "pk": pk, "name": "editors"})

    async def test_retrieve_by_a_lookup_field_follows_renames(self):
        group = await self.db(Group.objects.create, name="editors")
        socket = await self.connect(path="/ws/groups-by-name/")
        sub = await self.subscribe(socket, "auth.Group", "retrieve", lookup_by="editors")
        group.name = "writers"
        await self.db(group.save)
        message = await self.assertBroadcast(socket, "DELETED", id=sub)
        self.assertEqual(message["instance"], {"id": group.pk, "pk": group.pk, "name": "editors"})
        await self.db(Group.objects.create, name="editors")
        await self.assertBroadcast(socket, "CREATED", {"name": "editors"}, id=sub)


class GroupSnapshotTests(LiveTestCase):
    application = application

    async def test_snapshots_by_a_lookup_field_other_than_the_pk(self):
        editors = await self.db(Group.objects.create, name="editors")
        await self.db(Group.objects.create, name="writers")
        socket = await self.connect(path="/ws/groups-by-name/")
        listing = await self.subscribe_with_snapshot(socket, "auth.Group")
        self.assertEqual({item["name"] for item in listing["instances"]}, {"editors", "writers"})
        single = await self.subscribe_with_snapshot(
            socket, "auth.Group", "retrieve", lookup_by="editors"
        )
        self.assertSnapshot(single, ["editors"], field="name")

        editors.name = "readers"
        await self.db(editors.save)
        await self.assertBroadcast(socket, "UPDATED", {"name": "readers"}, id=listing["id"])
        message = await self.assertBroadcast(socket, "DELETED", id=single["id"])
        self.assertEqual(
            message["instance"], {"id": editors.pk, "pk": editors.pk, "name": "editors"}
        )


IN_MEMORY = "channels.layers.InMemoryChannelLayer"


class ShapedGroupSerializer(GroupSerializer):
    """Says whether it renders a list's item or one object, as serializers that show less in a
    list than on an object's own page do."""

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["shown_in"] = (
            "list" if isinstance(self.parent, serializers.ListSerializer) else "detail"
        )
        return data


class ShapedGroupViewSet(GroupViewSet):
    serializer_class = ShapedGroupSerializer


def rest_data(action, **kwargs):
    """What REST shows an anonymous visitor: `ShapedGroupViewSet`'s `action` answer's data."""
    request = APIRequestFactory().get("/")
    return ShapedGroupViewSet.as_view({"get": action})(request, **kwargs).data


class RenderingTests(LiveTestCase):
    application = served_at("ws/shaped/", ShapedGroupViewSet)
    path = "/ws/shaped/"

    async def test_each_object_is_shown_as_the_rest_view_shows_it(self):
        a = await self.db(Group.objects.create, name="a")
        await self.db(Group.objects.create, name="b")
        listing, detail = await self.connect(), await self.connect()
        await self.subscribe(listing, "auth.Group")
        await self.subscribe(detail, "auth.Group", "retrieve", lookup_by=a.pk)
        await self.db(Group.objects.update, name=Concat("name", Value("!")))  # both, at once
        listed = [(await self.assertBroadcast(listing, "UPDATED"))["instance"] for _ in "ab"]
        shown = (await self.assertBroadcast(detail, "UPDATED"))["instance"]
        self.assertCountEqual(listed, await self.db(rest_data, "list"))
        self.assertEqual(shown, await self.db(rest_data, "retrieve", pk=a.pk))
        self.assertEqual(shown["shown_in"], "detail")


class UnreachableLayer(InMemoryChannelLayer):
    async def group_send(self, group, message):
        raise ConnectionError("the channel layer is down")


class ChannelLayerDownTests(TransactionTestCase):
    @override_settings(
        CHANNEL_LAYERS={"default": {"BACKEND": "tests.test_rest_live.UnreachableLayer"}}
    )
    def test_writes_succeed_and_the_outage_is_logged_once(self):
        with self.assertLogs("rest_live", "DEBUG") as logs:
            Group.objects.create(name="kept")
            Group.objects.create(name="kept too")
        self.assertEqual(Group.objects.filter(name__startswith="kept").count(), 2)
        errors = [record for record in logs.records if record.levelname == "ERROR"]
        self.assertEqual(len(errors), 1, logs.output)
        self.assertIn("cannot reach the channel layer", errors[0].getMessage())
        self.assertIn("could not announce a change", errors[0].getMessage())
        self.assertIsNone(errors[0].exc_info)  # one line, no traceback

        with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": IN_MEMORY}}):
            with self.assertLogs("rest_live", "WARNING") as logs:
                Group.objects.create(name="after")
        self.assertEqual(len(logs.output), 1, logs.output)
        self.assertIn("reached the channel layer again after", logs.output[0])
        self.assertIn("2 changes could not be announced", logs.output[0])
