"""The AsyncAPI document, assembled: one channel per router in REST_LIVE_ROUTERS, its messages,
the operations that receive and send them, and the components they refer to."""

import tomllib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.settings import spectacular_settings

from rest_live import conf
from rest_live.asyncapi.client_messages import ClientMessages
from rest_live.asyncapi.exceptions import AsyncAPIError
from rest_live.asyncapi.inspection import Inspector
from rest_live.asyncapi.messages import SCHEMAS, ref
from rest_live.asyncapi.routes import path_variables, router_address
from rest_live.asyncapi.server_messages import ServerMessages
from rest_live.protocol import VERSION
from rest_live.routers import RealtimeRouter

_ASYNCAPI_VERSION = "3.0.0"
_PROTOCOL_VERSION = str(VERSION)
# Where config/routing.py routes the router, and docs/protocol.md says clients connect.
_DEFAULT_ADDRESS = "/ws/subscribe/"
_MESSAGES = "#/components/messages/"


def build_document(router_paths=None, title=None, warnings=None):
    """The AsyncAPI 3.0.0 document, as a dict ready for JSON, of the routers named by
    `router_paths` (dotted paths; default: settings.REST_LIVE_ROUTERS).

    drf-spectacular's warnings (a field whose type it guessed) go to stderr, as its own
    `spectacular` command prints them, or to the list `warnings` if one is given. Its errors
    raise AsyncAPIError, which names the view.
    """
    if warnings is None:
        return _build_document(router_paths, title)
    with GENERATOR_STATS.silence():
        try:
            return _build_document(router_paths, title)
        finally:
            warnings.extend(GENERATOR_STATS._warn_cache)


def _build_document(router_paths, title):
    router_paths = list(conf.router_paths() if router_paths is None else router_paths)
    if not router_paths:
        raise AsyncAPIError(
            "REST_LIVE_ROUTERS is empty, so there is no live socket to describe. Set it to the "
            "dotted paths of your RealtimeRouters, e.g. ['config.routing.router']."
        )
    routers = []
    for dotted_path in router_paths:
        try:
            router = import_string(dotted_path)
        except ImportError as error:
            raise AsyncAPIError(f"Cannot import the router {dotted_path!r}: {error}") from None
        if not isinstance(router, RealtimeRouter):
            raise AsyncAPIError(
                f"{dotted_path!r} is a {type(router).__name__}, not a RealtimeRouter."
            )
        routers.append((dotted_path, router))

    inspector = Inspector()
    channels = []
    for dotted_path, router in routers:
        channel_id = "live" if len(routers) == 1 else dotted_path
        address = router_address(dotted_path, router)
        if address is None and len(routers) == 1:
            address = _DEFAULT_ADDRESS
        views = [inspector.inspect(model, view) for model, view in router.views()]
        channels.append(_Channel(channel_id, dotted_path, address, views))
    return _Document(title or _project_title(), channels, inspector.finish()).build()


def _project_title():
    """drf-spectacular's TITLE when the project sets one, else the project's name."""
    if spectacular_settings.TITLE:
        return str(spectacular_settings.TITLE)
    base = Path(getattr(settings, "BASE_DIR", None) or Path.cwd())
    try:
        with open(base / "pyproject.toml", "rb") as file:
            name = tomllib.load(file).get("project", {}).get("name")
    except (OSError, tomllib.TOMLDecodeError):
        name = None
    return name or base.name


@dataclass
class _Channel:
    """A router's socket: an AsyncAPI channel."""

    id: str
    router_path: str
    address: str | None
    views: list


_OPERATION_SUMMARIES = {
    ("receive", "subscribe"): "A client subscribes to a live view's object or list.",
    ("receive", "unsubscribe"): "A client ends a subscription.",
    ("receive", "hello"): "A client asks for the protocol version, position, limits and models.",
    ("send", "snapshot"): "The server sends what a subscription sees now.",
    ("send", "broadcast"): "The server sends a committed change a subscription sees.",
    ("send", "resumed"): "The server sends what changed since a resumed subscription's position.",
    ("send", "resume_failed"): "The server cannot resume; a snapshot follows.",
    ("send", "subscribed"): "The server acknowledges a subscribe.",
    ("send", "unsubscribed"): "The server acknowledges an unsubscribe.",
    ("send", "reset"): "The server tells a client to re-sync a subscription.",
    ("send", "error"): "The server refuses a client's frame.",
}


class _Document(ClientMessages, ServerMessages):
    """The document of `channels`, with drf-spectacular's components for their live views."""

    def __init__(self, title, channels, spectacular_schemas):
        super().__init__(sorted({view.label for channel in channels for view in channel.views}))
        self.title = title
        self.channels = channels
        self.spectacular = spectacular_schemas
        keys = {}  # a view's messages and schemas are named after its model's label
        for channel in channels:
            for view in channel.views:
                key = view.label
                if keys.get(key, view.view) is not view.view:
                    key = f"{view.label}.{channel.id}"
                keys[key] = view.view
                view.key = key

    def build(self):
        self.protocol_schemas()
        channels, operations = {}, {}
        for channel in self.channels:
            client = self.client_messages(channel)
            server = self.server_messages(channel)
            keys = [key for keys in (*client.values(), *server.values()) for key in keys]
            channels[channel.id] = self.channel_object(channel, keys)
            prefix = "" if len(self.channels) == 1 else f"{channel.id}."
            channel_ref = f"#/channels/{_pointer(channel.id)}"
            for direction, frames in (("receive", client), ("send", server)):
                for kind, keys in frames.items():
                    if direction == "send" and kind == "hello":
                        continue  # the reply of the receive below
                    operation = {
                        "action": direction,
                        "channel": ref(channel_ref),
                        "summary": _OPERATION_SUMMARIES[direction, kind],
                        "messages": [
                            ref(f"{channel_ref}/messages/{_pointer(key)}") for key in keys
                        ],
                    }
                    if direction == "receive" and kind == "hello":
                        operation["reply"] = {
                            "channel": ref(channel_ref),
                            "messages": [
                                ref(f"{channel_ref}/messages/{_pointer(key)}")
                                for key in server["hello"]
                            ],
                        }
                    name = "".join(part.capitalize() for part in kind.split("_"))
                    operations[f"{prefix}{direction}{name}"] = operation
        reachable = self.reachable([self.schemas, self.messages])
        components = {
            "schemas": {name: self.spectacular[name] for name in reachable} | self.schemas,
            "messages": self.messages,
        }
        return {
            "asyncapi": _ASYNCAPI_VERSION,
            "info": {
                "title": self.title,
                "version": _PROTOCOL_VERSION,
                "description": self.description(),
            },
            "defaultContentType": "application/json",
            "channels": channels,
            "operations": operations,
            "components": components,
        }

    def reachable(self, nodes):
        """drf-spectacular's components that `nodes` refer to, in drf-spectacular's order."""
        found, todo = set(), list(_refs(nodes))
        while todo:
            name = todo.pop()
            if name in found or name not in self.spectacular:
                continue
            found.add(name)
            todo.extend(_refs(self.spectacular[name]))
        return [name for name in self.spectacular if name in found]

    def channel_object(self, channel, keys):
        views = ", ".join(f"{view.label} ({view.view.__qualname__})" for view in channel.views)
        channel_object = {
            "address": channel.address,
            "title": f"Live subscriptions of {channel.router_path}",
            "summary": "One websocket carrying every subscription of a client, as JSON text "
            "frames.",
            "description": (
                f"The socket served by the RealtimeRouter {channel.router_path}. "
                + (f"Live views: {views}. " if views else "No live view is registered. ")
                + "Authenticate with the session cookie (from an allowed Origin) or a DRF "
                "token: a header `Authorization: Token <key>`, or the subprotocol "
                "`rest-live.token.<key>` offered with `rest-live`."
            ),
            "messages": {key: ref(_MESSAGES + _pointer(key)) for key in keys},
            "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
        }
        parameters = sorted(path_variables(channel.address or ""))
        if parameters:
            channel_object["parameters"] = {
                name: {"description": f"The URL route's keyword argument {name!r}."}
                for name in parameters
            }
        return channel_object

    def description(self):
        return (
            f"The live subscriptions of {self.title}: a client opens a websocket, subscribes to "
            "DRF views by model, and receives what they show as it changes "
            "(docs/protocol.md). This document describes the server: the operations it "
            "`receive`s are the frames clients send, those it `send`s are the frames clients "
            "receive. Instance schemas are drf-spectacular's components for the views' "
            "serializers, as in the REST API's OpenAPI schema. Generated by "
            "`python manage.py live_asyncapi`."
        )


def _refs(node):
    """The names of the schema components `node` refers to."""
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and target.startswith(SCHEMAS):
            yield target[len(SCHEMAS) :]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _pointer(key):
    """A key as a JSON Pointer token."""
    return key.replace("~", "~0").replace("/", "~1")
