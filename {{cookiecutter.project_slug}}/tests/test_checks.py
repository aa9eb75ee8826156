"""rest_live.W002: a live view in the URLconf whose model no router serves is reported by
Django's system checks at startup, not by a client's subscription getting a 404. And every
check of rest_live's is in rest_live/checks.py."""

from django.contrib.auth.models import Group
from django.core import checks
from django.core.checks.registry import registry
from django.test import SimpleTestCase, override_settings
from django.urls import include, path
from rest_framework import generics, viewsets
from rest_framework.routers import SimpleRouter

from rest_live.mixins import RealtimeMixin
from rest_live.routers import RealtimeRouter
from tests.groups import GroupSerializer, GroupViewSet


class GroupListView(RealtimeMixin, generics.ListAPIView):
    """A live generic view, routed with as_view() inside nested includes."""

    queryset = Group.objects.all()
    serializer_class = GroupSerializer


class GroupDetailViewSet(GroupViewSet):
    """A subclass: live too, by inheritance."""


class PlainGroupViewSet(viewsets.ReadOnlyModelViewSet):
    """Not live (no RealtimeMixin): no router is expected to serve it."""

    queryset = Group.objects.all()
    serializer_class = GroupSerializer


api = SimpleRouter()
api.register("groups", GroupViewSet)
api.register("plain-groups", PlainGroupViewSet, basename="plain-group")

# This module is the URLconf of the tests below.
urlpatterns = [
    path("api/", include(api.urls)),
    path("v1/", include([path("lists/", include([path("groups/", GroupListView.as_view())]))])),
    path("group/<int:pk>/", GroupDetailViewSet.as_view({"get": "retrieve"})),
]

serves_groups = RealtimeRouter()
serves_groups.register(GroupViewSet)
serves_nothing = RealtimeRouter()


def routing_warnings():
    return [problem for problem in checks.run_checks() if problem.id == "rest_live.W002"]


@override_settings(ROOT_URLCONF=__name__)
class LiveViewRoutingCheckTests(SimpleTestCase):
    # run_checks() runs Django's checks too, and on Django 6 one of them queries the database.
    databases = {"default"}

    @override_settings(REST_LIVE_ROUTERS=[f"{__name__}.serves_nothing"])
    def test_a_live_view_no_router_serves_is_a_warning(self):
        warnings = routing_warnings()

        # Each live view once (the DRF router gives GroupViewSet two URLs), wherever it is
        # included, and not the view without RealtimeMixin.
        self.assertEqual(
            [warning.obj for warning in warnings],
            [GroupViewSet, GroupListView, GroupDetailViewSet],
        )
        warning = warnings[0]
        self.assertIsInstance(warning, checks.Warning)
        self.assertIn("GroupViewSet", warning.msg)
        self.assertIn("auth.Group", warning.msg)
        self.assertIn("404", warning.msg)
        self.assertIn("router.register(GroupViewSet)", warning.hint)

    @override_settings(REST_LIVE_ROUTERS=[f"{__name__}.serves_groups"])
    def test_a_registered_live_view_is_not(self):
        # Nor are the other live views of auth.Group: their subscriptions go to GroupViewSet,
        # so no client gets a 404.
        self.assertEqual(routing_warnings(), [])

    @override_settings(
        REST_LIVE_ROUTERS=[f"{__name__}.serves_nothing", f"{__name__}.serves_groups"]
    )
    def test_one_listed_router_serving_it_is_enough(self):
        self.assertEqual(routing_warnings(), [])

    def test_the_project_as_generated_has_no_such_warning(self):
        with override_settings(ROOT_URLCONF="config.urls"):
            self.assertEqual(routing_warnings(), [])


class CheckModuleTests(SimpleTestCase):
    def test_every_check_of_rest_live_is_in_its_checks_module(self):
        registered = [
            check
            for check in registry.get_checks(include_deployment_checks=True)
            if check.__module__.split(".")[0] == "rest_live"
        ]
        self.assertEqual(
            sorted(check.__name__ for check in registered),
            [
                "check_capture_installed",
                "check_live_views_are_followed",
                "check_live_views_are_routed",
                "check_settings",
            ],
        )
        self.assertEqual({check.__module__ for check in registered}, {"rest_live.checks"})
