"""Views that exist only for the tests: private, staff-only, object-permission and paged todos,
and views as django-rest-live 0.7 projects wrote them (test_compat.py).

Each is served by its own router (one view per model per router), all under `application`.
"""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path
from rest_framework import (
    filters,
    generics,
    pagination,
    permissions,
    renderers,
    serializers,
    viewsets,
)

from rest_live.mixins import RealtimeMixin
from rest_live.routers import RealtimeRouter
from todos.models import Tag, Todo
from todos.serializers import TodoSerializer


class StaffTodoSerializer(TodoSerializer):
    owner_email = serializers.ReadOnlyField(source="owner.email", default=None)

    class Meta(TodoSerializer.Meta):
        fields = [*TodoSerializer.Meta.fields, "owner_email"]


class MyTodoViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    """Each user's own todos; staff get a serializer with more fields."""

    model = Todo  # no `queryset`, so the model is named
    permission_classes = [permissions.IsAuthenticated]
    # Its serializer depends on the user: say what either one shows of other tables.
    live_dependencies = ["owner__username", "owner__email", "tags__name"]

    def get_queryset(self):
        return Todo.objects.filter(owner=self.request.user)

    def get_serializer_class(self):
        return StaffTodoSerializer if self.request.user.is_staff else TodoSerializer


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "name"]


class TagViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    queryset = Tag.objects.all()
    serializer_class = TagSerializer


class ReusedMyTodoViewSet(MyTodoViewSet):
    """MyTodoViewSet, its subscriptions reusing their view and queryset."""

    live_cache_queryset = True


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


class BareTodoView(RealtimeMixin, generics.GenericAPIView):
    """Neither a list nor a retrieve action, as django-rest-live 0.7 served: lists show the open
    todos, any todo can be retrieved (reading `self.action`, which 0.7 set)."""

    serializer_class = TodoSerializer
    filter_backends = [filters.SearchFilter]
    search_fields = ["title"]
    model = Todo

    def get_queryset(self):
        todos = Todo.objects.all()
        return todos.filter(done=False) if self.action == "list" else todos


class ListedTodoView(RealtimeMixin, generics.ListAPIView):
    queryset = Todo.objects.all()
    serializer_class = TodoSerializer


class RetrievedTodoView(RealtimeMixin, generics.RetrieveAPIView):
    queryset = Todo.objects.all()
    serializer_class = TodoSerializer


def camel_case(data):
    """`data` with every key in camelCase, as djangorestframework-camel-case renders it."""
    if isinstance(data, dict):
        return {camel_case_key(key): camel_case(value) for key, value in data.items()}
    if isinstance(data, list):
        return [camel_case(item) for item in data]
    return data


def camel_case_key(key):
    first, *rest = str(key).split("_")
    return first + "".join(word.capitalize() for word in rest)


class ActiveOwnersTodoViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    """Todos of active users: the queryset filters on a row of another table."""

    queryset = Todo.objects.filter(owner__is_active=True)
    serializer_class = TodoSerializer


class CamelCaseJSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        return super().render(camel_case(data), accepted_media_type, renderer_context)


class CamelCaseTodoViewSet(RealtimeMixin, viewsets.ReadOnlyModelViewSet):
    """Rendered in camelCase; looked up by `created_at`, a name with an underscore, so the
    renderer shows in DELETED payloads too."""

    queryset = Todo.objects.all()
    serializer_class = TodoSerializer
    renderer_classes = [CamelCaseJSONRenderer]
    lookup_field = "created_at"


private_router = RealtimeRouter(public=False)
private_router.register(MyTodoViewSet)
both_router = RealtimeRouter()  # tags and the todos that show them, on one socket
both_router.register(TagViewSet)
both_router.register(ListedTodoView)
reused_router = RealtimeRouter(public=False)
reused_router.register(ReusedMyTodoViewSet)
staff_router = RealtimeRouter()
staff_router.register(StaffTodoViewSet)
owned_router = RealtimeRouter()
owned_router.register(OwnedTodoViewSet)
paged_router = RealtimeRouter()
paged_router.register(PagedTodoViewSet)
bare_router = RealtimeRouter()
bare_router.register(BareTodoView)
listed_router = RealtimeRouter()
listed_router.register(ListedTodoView)
retrieved_router = RealtimeRouter()
retrieved_router.register(RetrievedTodoView)
camel_case_router = RealtimeRouter()
camel_case_router.register(CamelCaseTodoViewSet)
active_owners_router = RealtimeRouter()
active_owners_router.register(ActiveOwnersTodoViewSet)

websocket_urlpatterns = [
    path("ws/private/", private_router.as_consumer().as_asgi()),
    path("ws/tags-and-todos/", both_router.as_consumer().as_asgi()),
    path("ws/private-reused/", reused_router.as_consumer().as_asgi()),
    path("ws/staff/", staff_router.as_consumer().as_asgi()),
    path("ws/owned/", owned_router.as_consumer().as_asgi()),
    path("ws/paged/", paged_router.as_consumer().as_asgi()),
    path("ws/bare/", bare_router.as_consumer().as_asgi()),
    path("ws/listed/", listed_router.as_consumer().as_asgi()),
    path("ws/retrieved/", retrieved_router.as_consumer().as_asgi()),
    path("ws/camel-case/", camel_case_router.as_consumer().as_asgi()),
    path("ws/active-owners/", active_owners_router.as_consumer().as_asgi()),
]

application = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
