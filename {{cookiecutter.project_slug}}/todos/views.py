from django.db import transaction
from rest_framework import filters, permissions, viewsets

from rest_live.mixins import RealtimeMixin
from todos.models import Todo
from todos.serializers import TodoSerializer


class TodoViewSet(RealtimeMixin, viewsets.ModelViewSet):
    """Todos: anyone may read, signed-in users may write. Live at /ws/subscribe/."""

    queryset = Todo.objects.select_related("owner").prefetch_related("tags")
    serializer_class = TodoSerializer
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["title"]
    ordering_fields = ["created_at", "title", "done"]
    # The queryset and its filters read only the request, and the serializer shows everyone the
    # same: live subscriptions may reuse their compiled queryset and share renderings (mixins.py).
    live_cache_queryset = True
    live_render_once = True

    # One transaction for a todo and its tags, which DRF sets after saving the row: live
    # subscribers are sent what commits, so they get one frame that shows both.
    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save(owner=self.request.user)

    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save()
