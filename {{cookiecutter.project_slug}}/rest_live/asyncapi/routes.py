"""Where a RealtimeRouter is served: the URL path its consumer is routed at, found in the URL
patterns and the ASGI application, as an AsyncAPI channel address with {parameters}."""

import re
from importlib import import_module

from django.conf import settings
from django.urls import URLPattern, URLResolver
from django.utils.module_loading import import_string
from rest_framework.schemas.generators import EndpointEnumerator


def router_address(dotted_path, router):
    """The path a router's consumer is routed at ("/ws/subscribe/"), or None if not found.

    Looked for in the URL patterns of the module that makes the router (config/routing.py's
    `websocket_urlpatterns`), then in the ASGI application (settings.ASGI_APPLICATION).
    """
    module = import_module(dotted_path.rpartition(".")[0])
    for value in list(vars(module).values()):
        if isinstance(value, list | tuple) or hasattr(value, "routes"):
            found = _find_route(value, router, "", set())
            if found is not None:
                return found
    asgi_path = getattr(settings, "ASGI_APPLICATION", None)
    if asgi_path:
        try:
            application = import_string(asgi_path)
        except ImportError:
            return None
        return _find_route(application, router, "", set())
    return None


def _find_route(node, router, prefix, seen, depth=8):
    """Search URL patterns, channels URLRouters and ASGI middleware wrapping them for the
    consumer of `router`; the route's path, made a URL path with {parameters}."""
    if depth < 0 or id(node) in seen or node is None or isinstance(node, str | bytes | type):
        return None
    seen.add(id(node))
    if isinstance(node, list | tuple):
        children = [(item, prefix) for item in node]
    elif isinstance(node, URLPattern):
        pattern = prefix + str(node.pattern)
        consumer = getattr(node.callback, "consumer_class", None)
        if getattr(consumer, "router", None) is router:
            return _url_path(pattern)
        children = [(node.callback, pattern)]
    elif isinstance(node, URLResolver):
        children = [(item, prefix + str(node.pattern)) for item in node.url_patterns]
    elif hasattr(node, "routes"):  # channels.routing.URLRouter
        children = [(node.routes, prefix)]
    elif isinstance(node, dict):
        children = [(item, prefix) for item in node.values()]
    elif callable(node) and hasattr(node, "__dict__"):
        # ASGI middleware (ProtocolTypeRouter, AuthMiddlewareStack...): what it wraps.
        children = [(item, prefix) for item in vars(node).values()]
    else:
        return None
    for child, child_prefix in children:
        found = _find_route(child, router, child_prefix, seen, depth - 1)
        if found is not None:
            return found
    return None


def _url_path(pattern):
    path = EndpointEnumerator().get_path_from_regex(pattern)  # "^ws/(?P<x>..)/$", "<int:x>": {x}
    return path if path.startswith("/") else "/" + path


def path_variables(path):
    """The names of a URL path's {parameters}."""
    return set(re.findall(r"{(\w+)}", path))
