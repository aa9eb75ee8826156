# The distinct-subscription benchmark's application (benchmarks/distinct.py): bench_asgi.py's, plus
# a view of one's own todos, `get_queryset` filtered by `request.user`, served on its own router at
# /ws/mine/ (token sockets, as the project's own routes take them; a socket without one is closed).
# First: bench_asgi (config.asgi) sets Django up, which the imports below need.
from bench_asgi import django_application, websocket as bench_websocket

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path
from rest_framework import permissions

from rest_live.auth import TokenAuthMiddleware
from rest_live.origins import AllowedOriginsValidator
from rest_live.routers import RealtimeRouter
from todos.views import TodoViewSet


class MineViewSet(TodoViewSet):
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        queryset = super().get_queryset()
        if not self.request.user.is_authenticated:
            return queryset.none()
        return queryset.filter(owner=self.request.user)


mine_router = RealtimeRouter(public=False)
mine_router.register(MineViewSet)
mine_routes = URLRouter([path("ws/mine/", mine_router.as_consumer().as_asgi())])
mine = TokenAuthMiddleware(
    mine_routes, otherwise=AllowedOriginsValidator(AuthMiddlewareStack(mine_routes))
)


async def websocket(scope, receive, send):
    app = mine if scope["path"] == "/ws/mine/" else bench_websocket
    return await app(scope, receive, send)


application = ProtocolTypeRouter({"http": django_application, "websocket": websocket})
