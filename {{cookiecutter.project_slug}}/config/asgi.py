"""ASGI entry point: HTTP goes to Django, websockets to the live subscription routes."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Set Django up before anything below imports models.
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.routing import websocket_urlpatterns  # noqa: E402
from rest_live.auth import TokenAuthMiddleware  # noqa: E402
from rest_live.origins import AllowedOriginsValidator  # noqa: E402

routes = URLRouter(websocket_urlpatterns)
# Importable on its own so tests can drive websockets without the HTTP stack. A socket that
# presents a DRF token is that token's user, from any origin (scripts, apps, other sites); any
# other socket is the session cookie's user, and must come from an allowed origin (ALLOWED_HOSTS
# or WEBSOCKET_ALLOWED_ORIGINS), since a browser sends the cookie whichever page opens the socket.
# See rest_live/auth.py and rest_live/origins.py.
websocket_application = TokenAuthMiddleware(
    routes, otherwise=AllowedOriginsValidator(AuthMiddlewareStack(routes))
)

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": websocket_application,
    }
)

# What exists now (modules, classes, settings, URL patterns: some 100,000 objects) lives as long
# as the process. Frozen, it is left out of CPython's full collections, which stop every socket
# while they scan the heap.
gc.collect()
gc.freeze()
