"""Views that exist only for the tests: private, staff-only, object-permission and paged todos.

Each is served by its own router (one view per model per router), all under `application`.
"""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path
from rest_framework import pagination, permissions, serializers, viewsets

from rest_live.mixins import RealtimeMixin
from rest_live.routers import RealtimeRouter
from todos.models import Todo
from todos.serializers import TodoSerializer


class StaffTodoSerializer(TodoSerializer):
    owner_email = serializers.ReadOnlyField(source="owner.email", default=None)

    class Meta(TodoSerializer.Meta):
        fields = [*TodoSerializer.Meta.fields, "owner_email"]


class MyTodoViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    """Each user's own todos; staff get a serializer with more fields."""

    model = Todo  # no `queryset`, so the model is named
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return Todo.objects.filter(owner=self.request.user)

    def get_serializer_class(self):
        return StaffTodoSerializer if self.request.user.is_staff else TodoSerializer


class StaffTodoViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Todo.objects.all()
    serializer_class = TodoSerializer
    permission_classes = [permissions.IsAdminUser]


class IsOwner(permissions.BasePermission):
    def has_object_permission(self, request, view, obj):
        return obj.owner_id is not None and obj.owner_id == request.user.pk


class OwnedTodoViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    """Everyone may list; only the owner may retrieve (an object permission)."""

    queryset = Todo.objects.all()
    serializer_class = TodoSerializer
    permission_classes = [IsOwner]


class PairsPagination(pagination.PageNumberPagination):
    page_size = 2
    page_size_query_param = "page_size"


class PagedTodoViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Todo.objects.all()
    serializer_class = TodoSerializer
    pagination_class = PairsPagination


private_router = RealtimeRouter(public=False)
private_router.register(MyTodoViewSet)
staff_router = RealtimeRouter()
staff_router.register(StaffTodoViewSet)
owned_router = RealtimeRouter()
owned_router.register(OwnedTodoViewSet)
paged_router = RealtimeRouter()
paged_router.register(PagedTodoViewSet)

websocket_urlpatterns = [
    path("ws/private/", private_router.as_consumer().as_asgi()),
    path("ws/staff/", staff_router.as_consumer().as_asgi()),
    path("ws/owned/", owned_router.as_consumer().as_asgi()),
    path("ws/paged/", paged_router.as_consumer().as_asgi()),
]

application = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
