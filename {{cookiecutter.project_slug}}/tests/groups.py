"""`auth.Group`, a model every bake has, is what rest_live's own tests serve live."""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.contrib.auth.models import Group
from django.urls import path
from rest_framework import serializers, viewsets

from rest_live.mixins import RealtimeMixin
from rest_live.routers import RealtimeRouter


class GroupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Group
        fields = ["id", "name"]


class GroupViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    """Every group, to anyone."""

    queryset = Group.objects.all()
    serializer_class = GroupSerializer
    permission_classes = []


# Registered at import, as config/routing.py's views are, so `migrate` (the test database's too)
# installs the change capture of what it reads.
RealtimeRouter().register(GroupViewSet)


def served_at(url, view=GroupViewSet):
    """An ASGI application that serves `view` live at `url` (e.g. "ws/"), with sessions."""
    router = RealtimeRouter()
    router.register(view)
    return AuthMiddlewareStack(URLRouter([path(url, router.as_consumer().as_asgi())]))
