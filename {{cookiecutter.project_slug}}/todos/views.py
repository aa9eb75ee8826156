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

    def perform_create(self, serializer):
        serializer.save(owner=self.request.user)
