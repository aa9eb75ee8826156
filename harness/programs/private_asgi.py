# An ASGI application serving the project's own, plus a RealtimeRouter(public=False) of
# todos.tests.views at /ws/private/, and its REST twin (private_urls.py): copied into a folder on
# PYTHONPATH by tests/test_login_ends.py.
from channels.auth import AuthMiddlewareStack
from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings
from django.urls import path

from config.asgi import django_application
from rest_live.auth import TokenAuthMiddleware
from rest_live.origins import AllowedOriginsValidator
from todos.tests.views import reused_router

# Read per request: the project's URLs, and the private view's REST twin beside them.
settings.ROOT_URLCONF = "private_urls"
routes = URLRouter([path("ws/private/", reused_router.as_consumer().as_asgi())])
application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": TokenAuthMiddleware(
            routes, otherwise=AllowedOriginsValidator(AuthMiddlewareStack(routes))
        ),
    }
)
