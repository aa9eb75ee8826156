"""The project's ASGI application plus a private router at /ws/private/ (copied into a bake).

A RealtimeRouter(public=False) behind the same authentication as config/asgi.py, so the template's
boundary tests can see how real servers close anonymous and inactive sockets on it.
"""

from config.asgi import django_application  # sets Django up before the imports below

from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.urls import path

from config.routing import websocket_urlpatterns
from rest_live.auth import TokenAuthMiddleware
from rest_live.origins import AllowedOriginsValidator
from rest_live.routers import RealtimeRouter
from todos.views import TodoViewSet

private = RealtimeRouter(public=False)
private.register(TodoViewSet)
routes = URLRouter([*websocket_urlpatterns, path("ws/private/", private.as_consumer().as_asgi())])

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": TokenAuthMiddleware(
            routes, otherwise=AllowedOriginsValidator(AuthMiddlewareStack(routes))
        ),
    }
)
