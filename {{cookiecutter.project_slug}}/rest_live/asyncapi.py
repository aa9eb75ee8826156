"""The AsyncAPI 3.0 document of the live websocket protocol (docs/protocol.md), built from the
routers in REST_LIVE_ROUTERS: `manage.py live_asyncapi` writes it.

Each router is one channel, at the URL its consumer is routed to. The document describes the
server, so, in AsyncAPI's terms, what clients send is an operation the server `receive`s and what
it sends them is a `send`. For each live view it carries the instance schema drf-spectacular
gives the view's serializer in the REST API's OpenAPI schema (same component, same name: the
view's REST endpoints are found in the URLconf and inspected as drf-spectacular's generator
inspects them), the view's filter and pagination query parameters, its URL keyword arguments and
its lookup field. drf-spectacular needs no settings for this: a view whose schema is not one of
its `AutoSchema`s (DRF's DEFAULT_SCHEMA_CLASS is DRF's own unless the project says otherwise) is
inspected with drf-spectacular's `AutoSchema`.
"""

import re
import tomllib
import weakref
from dataclasses import dataclass, field
from importlib import import_module
from pathlib import Path

from django.conf import settings
from django.urls import URLPattern, URLResolver
from django.utils.module_loading import import_string
from drf_spectacular.drainage import (
    GENERATOR_STATS,
    add_trace_message,
    reset_generator_stats,
    warn,
)
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import (
    build_root_object,
    follow_model_field_lookup,
    is_list_serializer,
    is_serializer,
    normalize_result_object,
)
from drf_spectacular.settings import spectacular_settings
from rest_framework.schemas.generators import EndpointEnumerator
from rest_framework.settings import api_settings
from rest_framework.viewsets import ViewSetMixin

from rest_live import conf
from rest_live.protocol import ACTIONS, VERSION
from rest_live.routers import RealtimeRouter

ASYNCAPI_VERSION = "3.0.0"
PROTOCOL_VERSION = str(VERSION)
# Where config/routing.py routes the router, and docs/protocol.md says clients connect.
DEFAULT_ADDRESS = "/ws/subscribe/"
SCHEMAS = "#/components/schemas/"
MESSAGES = "#/components/messages/"


class AsyncAPIError(Exception):
    """The document cannot be built; the message says which view and why."""


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
    router_paths = list(
        getattr(settings, "REST_LIVE_ROUTERS", ()) if router_paths is None else router_paths
    )
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

    inspector = _Inspector()
    channels = []
    for dotted_path, router in routers:
        channel_id = "live" if len(routers) == 1 else dotted_path
        address = _router_address(dotted_path, router)
        if address is None and len(routers) == 1:
            address = DEFAULT_ADDRESS
        views = [inspector.inspect(model, view) for model, view in router.views()]
        channels.append(_Channel(channel_id, dotted_path, address, views))
    return _Document(title or _project_title(), channels, inspector.finish()).build()


# --- where a router is served ----------------------------------------------------------------


def _router_address(dotted_path, router):
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


# --- what drf-spectacular says of each view --------------------------------------------------


@dataclass
class _View:
    label: str
    view: type
    actions: tuple
    instance: dict  # the schema of `instance`, a $ref to drf-spectacular's component
    pk: dict
    lookup_field: str
    lookup: dict  # the lookup field's schema
    view_kwargs: dict = field(default_factory=dict)  # name -> (schema, description)
    query_params: dict = field(default_factory=dict)  # name -> (schema, description)
    key: str = ""  # the label, made unique in the document


class _Inspector:
    """Runs drf-spectacular over each live view's list and retrieve endpoints, as its
    SchemaGenerator runs over the REST API's, with one component registry for all of them."""

    def __init__(self):
        reset_generator_stats()
        self.generator = SchemaGenerator()
        self.registry = self.generator.registry
        self.endpoints = None
        self.paths = {}  # as in an OpenAPI document, for drf-spectacular's postprocessing hooks
        self.parameters = []  # (operation, view), read again once the hooks ran
        # The AutoSchemas given to views, which hold them by weak references (as drf-spectacular's
        # generator does: a schema refers to its view, so a strong one would keep both forever).
        self.keep = []

    def rest_endpoints(self):
        if self.endpoints is None:
            try:
                self.generator._initialise_endpoints()
                self.endpoints = self.generator.endpoints
            except Exception as error:  # a URLconf drf-spectacular cannot walk: no REST paths
                self.endpoints = []
                warn(
                    f"the URLconf could not be inspected ({error}); live views are inspected "
                    "without their REST paths."
                )
        return self.endpoints

    def inspect(self, model, view):
        label = model._meta.label
        errors_before = set(GENERATOR_STATS._error_cache)
        name = f"{view.__module__}.{view.__qualname__} (the live view of {label})"
        try:
            with add_trace_message(view):
                described = self._inspect(model, view, label)
        except AsyncAPIError as error:
            problem, cause = str(error), error
        except Exception as error:
            problem, cause = f"{type(error).__name__}: {error}", error
        else:
            problem, cause = None, None
        errors = [e for e in GENERATOR_STATS._error_cache if e not in errors_before]
        if problem or errors:
            said = "".join(f"\n  drf-spectacular: {e}" for e in errors)
            raise AsyncAPIError(
                f"The schema of {name} cannot be built: {problem or 'see below.'}{said}"
            ) from cause
        return described

    def _inspect(self, model, view, label):
        actions = tuple(view.get_live_actions())
        lookup_field = getattr(view, "lookup_field", "pk") or "pk"
        lookup_kwarg = getattr(view, "lookup_url_kwarg", None) or lookup_field
        instances, view_kwargs, query_params, lookup, schema = [], {}, {}, None, None
        for action in actions:
            path, operation, schema, lookup_name = self._operation(
                view, action, label, lookup_kwarg
            )
            if operation is None:
                raise AsyncAPIError(
                    f"its {action} is excluded from drf-spectacular's schema "
                    "(extend_schema(exclude=True)), so its instances have none."
                )
            instance = self._instance_schema(view, action, operation, schema)
            if instance not in instances:
                instances.append(instance)
            self.parameters.append((operation, action, lookup_name, view_kwargs, query_params))
        pk = _plain(_model_field_schema(schema, model._meta.pk))
        lookup = pk
        if lookup_field not in ("pk", model._meta.pk.name):
            lookup = _plain(
                _model_field_schema(schema, follow_model_field_lookup(model, lookup_field))
            )
        return _View(
            label=label,
            view=view,
            actions=actions,
            instance=instances[0] if len(instances) == 1 else {"anyOf": instances},
            pk=pk,
            lookup_field=lookup_field,
            lookup=lookup,
            view_kwargs=view_kwargs,
            query_params=query_params,
        )

    def _operation(self, view, action, label, lookup_kwarg):
        """drf-spectacular's operation for GET of the view's `action` (at its REST path when the
        URLconf routes it, else at a path made up for it), the view's AutoSchema, and the name of
        the lookup's path parameter in the operation."""
        found = self._rest_endpoint(view, action, lookup_kwarg)
        if found is None:
            name = label.lower().replace(".", "/")
            if action == "retrieve":
                path, regex = f"/{name}/{{{lookup_kwarg}}}/", f"^{name}/(?P<{lookup_kwarg}>[^/]+)/$"
            else:
                path, regex = f"/{name}/", f"^{name}/$"
            callback = _callback(view, action)
        else:
            path, regex, callback = found
        live_view = self.generator.create_view(callback, "GET")
        if isinstance(live_view, ViewSetMixin):
            live_view.action = action
        # DRF's DEFAULT_SCHEMA_CLASS makes a new schema at each `view.schema`: keep one.
        schema = live_view.schema
        if not isinstance(schema, AutoSchema):  # not drf-spectacular's: DRF's, or None
            schema_class = api_settings.DEFAULT_SCHEMA_CLASS
            if not (isinstance(schema_class, type) and issubclass(schema_class, AutoSchema)):
                schema_class = AutoSchema
            schema = schema_class()
        if not isinstance(schema, weakref.ProxyType):
            self.keep.append(schema)
            schema = weakref.proxy(schema)
        live_view.schema = schema
        coerced = self.generator.coerce_path(path, "GET", live_view)
        lookup_name = lookup_kwarg
        if coerced != path and lookup_kwarg in _variables(path) - _variables(coerced):
            # "{pk}" is named after the primary key field ("{id}"), as in the REST schema.
            lookup_name = next(iter(_variables(coerced) - _variables(path)), lookup_kwarg)
        path = coerced
        live_view.request = spectacular_settings.GET_MOCK_REQUEST("GET", path, live_view, None)
        prefix = spectacular_settings.SCHEMA_PATH_PREFIX or "/"
        operation = schema.get_operation(
            path, regex, prefix if prefix.startswith("^") else "^" + prefix, "GET", self.registry
        )
        if operation is not None:
            self.paths.setdefault(path, {})["get"] = operation
        return path, operation, schema, lookup_name

    def _rest_endpoint(self, view, action, lookup_kwarg):
        """(path, path_regex, callback) of the REST endpoint that serves `action` of `view`."""
        for path, regex, method, callback in self.rest_endpoints():
            if method != "GET" or getattr(callback, "cls", None) is not view:
                continue
            actions = getattr(callback, "actions", None)
            if actions is not None:
                if actions.get("get") == action:
                    return path, regex, callback
            elif _plain_view_action(view, path, lookup_kwarg) == action:
                return path, regex, callback
        return None

    def _instance_schema(self, view, action, operation, schema):
        """A $ref to the component of the serializer drf-spectacular found for the response."""
        serializer = schema.get_response_serializers()
        if isinstance(serializer, dict) and serializer:  # @extend_schema(responses={200: ...})
            by_code = {str(code): value for code, value in serializer.items()}
            serializer = by_code.get("200", by_code[min(by_code)])
        if is_list_serializer(serializer):
            serializer = serializer.child
        if is_serializer(serializer):
            component = schema.resolve_serializer(serializer, "response")
            if component.ref:
                return dict(component.ref)
        # No serializer component (a basic type from @extend_schema): the response's own schema.
        content = operation.get("responses", {}).get("200", {}).get("content", {})
        body = next(iter(content.values()), {}).get("schema")
        if body is not None:
            if action == "list" and body.get("type") == "array":
                body = body.get("items", {})
            return json_schema(normalize_result_object(body))
        raise AsyncAPIError(
            f"drf-spectacular found no serializer for its {action}: give the view a "
            "serializer_class (or get_serializer_class), or @extend_schema(responses=...)."
        )

    def finish(self):
        """The components drf-spectacular registered, after its postprocessing hooks (which
        turn enums into components, as in the REST schema), as JSON Schema."""
        result = build_root_object(
            paths=self.paths,
            components=self.registry.build(spectacular_settings.APPEND_COMPONENTS),
            webhooks=[],
            version=None,
        )
        errors_before = set(GENERATOR_STATS._error_cache)
        for hook in spectacular_settings.POSTPROCESSING_HOOKS:
            result = hook(result=result, generator=self.generator, request=None, public=True)
        errors = [e for e in GENERATOR_STATS._error_cache if e not in errors_before]
        if errors:
            raise AsyncAPIError("drf-spectacular's postprocessing failed:\n" + "\n".join(errors))
        result = normalize_result_object(result)
        for operation, action, lookup_kwarg, view_kwargs, query_params in self.parameters:
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    continue
                parameter = normalize_result_object(parameter)
                entry = (json_schema(parameter.get("schema", {})), parameter.get("description"))
                if parameter.get("in") == "query" and action == "list":
                    query_params.setdefault(parameter["name"], entry)
                elif parameter.get("in") == "path" and not (
                    action == "retrieve" and parameter["name"] == lookup_kwarg
                ):
                    view_kwargs.setdefault(parameter["name"], entry)
        schemas = result.get("components", {}).get("schemas", {})
        return {name: json_schema(schema) for name, schema in schemas.items()}


def _variables(path):
    return set(re.findall(r"{(\w+)}", path))


def _callback(view, action):
    if issubclass(view, ViewSetMixin):
        return view.as_view({"get": action})
    if not hasattr(view, "get"):
        # A bare GenericAPIView (it serves both actions live): inspect it as if it had GET.
        view = type(view.__name__, (view,), {"get": lambda self, request, *a, **kw: None})
    return view.as_view()


def _plain_view_action(view, path, lookup_kwarg):
    """Which action a GET of a non-viewset view at `path` is: the one it has, else retrieve
    when the path carries its lookup."""
    has = [action for action in ACTIONS if hasattr(view, action)]
    if len(has) == 1:
        return has[0]
    return "retrieve" if f"{{{lookup_kwarg}}}" in path else "list"


def _model_field_schema(schema, model_field):
    try:
        return schema._map_model_field(model_field, direction=None)
    except Exception:
        return {"type": ["integer", "string"]}


def _plain(schema):
    """A field's schema as a bare value: without readOnly and the like, as JSON Schema."""
    schema = json_schema(schema)
    return {k: v for k, v in schema.items() if k not in ("readOnly", "writeOnly", "title")}


# --- OpenAPI 3.0 schemas as JSON Schema (AsyncAPI's Schema Object is draft 07) ---------------

_SCHEMA_MAPS = ("properties", "patternProperties", "definitions")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_VALUES = ("not", "contains", "propertyNames", "if", "then", "else")


def json_schema(schema):
    """An OpenAPI 3.0 Schema Object (as drf-spectacular writes them by default) as the JSON
    Schema (draft 07) an AsyncAPI document takes: `nullable` becomes a "null" type, a boolean
    `exclusiveMinimum`/`exclusiveMaximum` a bound, `example` `examples`, and a `discriminator`
    its property name. drf-spectacular's OpenAPI 3.1 schemas are JSON Schema already."""
    if not isinstance(schema, dict):
        return schema
    result = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            value = {name: json_schema(item) for name, item in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            value = [json_schema(item) for item in value]
        elif key in _SCHEMA_VALUES or key in ("additionalProperties", "items"):
            value = (
                [json_schema(v) for v in value] if isinstance(value, list) else json_schema(value)
            )
        result[key] = value
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(result.get(bound), bool):
            exclusive = result.pop(bound)
            if exclusive and limit in result:
                result[bound] = result.pop(limit)
    if "example" in result:
        result.setdefault("examples", [result["example"]])
        del result["example"]
    if isinstance(result.get("discriminator"), dict):
        result["discriminator"] = result["discriminator"].get("propertyName", "")
    if result.pop("nullable", False):
        kind = result.get("type")
        if isinstance(kind, str):
            result["type"] = [kind, "null"]
            if "enum" in result and None not in result["enum"]:
                result["enum"] = [*result["enum"], None]
        elif isinstance(kind, list):
            result["type"] = kind if "null" in kind else [*kind, "null"]
        elif kind is None:
            result = {"anyOf": [result, {"type": "null"}]}
    return result


def _refs(node):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMAS):
            yield ref[len(SCHEMAS) :]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# --- the document ----------------------------------------------------------------------------


@dataclass
class _Channel:
    id: str
    router_path: str
    address: str | None
    views: list


def _ref(target):
    return {"$ref": target}


def _const(value, description=None):
    schema = {"type": _type_name(value), "const": value}
    if description:
        schema["description"] = description
    return schema


def _type_name(value):
    return {bool: "boolean", int: "integer", str: "string"}[type(value)]


SUBSCRIPTION_ID = {
    "description": "Names the subscription: chosen by the client in its subscribe, unique on "
    "the socket, and carried by every frame about the subscription.",
    "oneOf": [{"type": "integer"}, {"type": "string", "minLength": 1, "maxLength": 200}],
}
POSITION = {
    "type": ["string", "null"],
    "maxLength": 100,
    "description": "An opaque position in the change log, '<epoch>.<n>'; store it and never "
    "parse it. Every change committed before this frame's, up to it, was sent to this socket; "
    "positions on one socket never go down. Null for a change the change log does not hold (a "
    "model in another database than the log): no resume from those.",
    "examples": ["3f9a61c2d0.1234"],
}
SCALAR = {"type": ["string", "number", "boolean"]}
QUERY_PARAM_VALUE = {
    "description": "A query parameter's value: a string, number or boolean, or a list of them "
    "(a repeated parameter). Numbers and booleans reach the view as a URL would carry them.",
    "oneOf": [SCALAR, {"type": "array", "items": SCALAR}],
}
VIEW_KWARG_VALUE = {"type": ["string", "integer"]}
LIMITS = {
    "max_frame_bytes": "integer",
    "max_subscriptions": "integer",
    "message_burst": "integer",
    "messages_per_second": "number",
    "max_pending_bytes": "integer",
    "snapshot_limit": "integer",
    "evaluations_per_second": "number",
    "snapshot_rows_per_second": "number",
    "change_log_seconds": "number",
}
OPERATION_SUMMARIES = {
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


class _Document:
    def __init__(self, title, channels, spectacular_schemas):
        self.title = title
        self.channels = channels
        self.spectacular = spectacular_schemas
        self.schemas = {}
        self.messages = {}
        self.labels = sorted({view.label for channel in channels for view in channel.views})
        keys = {}  # a view's messages and schemas are named after its model's label
        for channel in channels:
            for view in channel.views:
                key = view.label
                if keys.get(key, view.view) is not view.view:
                    key = f"{view.label}.{channel.id}"
                keys[key] = view.view
                view.key = key

    # -- schemas

    def example_label(self):
        return self.labels[0] if self.labels else "todos.Todo"

    def model_label(self):
        schema = {"type": "string", "description": "The model's label, as Django spells it."}
        if self.labels:
            schema["examples"] = self.labels
        return schema

    def protocol_schemas(self):
        self.schemas.update(
            {
                "live.SubscriptionId": SUBSCRIPTION_ID,
                "live.Position": POSITION,
                "live.QueryParamValue": QUERY_PARAM_VALUE,
            }
        )

    def frame(self, kind, properties, required=()):
        return {
            "type": "object",
            "required": ["type", *required],
            "properties": {"type": _const(kind), **properties},
        }

    # -- messages

    def message(self, key, kind, title, summary, payload, examples=(), description=None):
        message = {"name": kind, "title": title, "summary": summary, "payload": payload}
        if description:
            message["description"] = description
        if examples:
            message["examples"] = [{"payload": example} for example in examples]
        self.messages[key] = message
        return key

    def client_messages(self, channel):
        """{frame type: [message keys]} of what clients send on `channel`."""
        subscribe = [self.subscribe_message(view) for view in channel.views]
        if not channel.views:
            subscribe = [self.generic_subscribe_message()]
        return {
            "subscribe": subscribe,
            "unsubscribe": [self.unsubscribe_message()],
            "hello": [self.client_hello_message()],
        }

    def server_messages(self, channel):
        """{frame type: [message keys]} of what the server sends on `channel`."""
        if channel.views:
            snapshot = [self.snapshot_message(view) for view in channel.views]
            broadcast = [self.broadcast_message(view) for view in channel.views]
            resumed = [self.resumed_message(view) for view in channel.views]
        else:
            snapshot, broadcast = [self.snapshot_message(None)], [self.broadcast_message(None)]
            resumed = [self.resumed_message(None)]
        return {
            "snapshot": snapshot,
            "broadcast": broadcast,
            "resumed": resumed,
            "resume_failed": [self.resume_failed_message()],
            "subscribed": [self.ack_message("subscribed")],
            "unsubscribed": [self.ack_message("unsubscribed")],
            "reset": [self.reset_message()],
            "error": [self.error_message()],
            "hello": [self.server_hello_message()],
        }

    def common_subscribe_properties(self):
        return {
            "id": _ref(SCHEMAS + "live.SubscriptionId"),
            "snapshot": {
                "type": "boolean",
                "default": False,
                "description": "True to be answered first with a snapshot of the current state.",
            },
            "ack": {
                "type": "boolean",
                "default": False,
                "description": "True to be answered with `subscribed` once the subscription is "
                "live (after the snapshot, if one was asked for).",
            },
            "resume": {
                "type": "string",
                "minLength": 1,
                "maxLength": 100,
                "description": "A position this client received: be answered with what changed "
                "after it (`resumed`) rather than a snapshot, or, when the server cannot, with "
                "`resume_failed` and a snapshot.",
            },
        }

    def subscribe_message(self, view):
        label = view.label
        properties = {
            "model": _const(label, "The model's label (matched in any case)."),
            "action": {"type": "string", "enum": list(view.actions)},
            **self.common_subscribe_properties(),
        }
        schema_key = f"live.{view.key}"
        self.schemas[f"{schema_key}.view_kwargs"] = self.kwargs_schema(view)
        self.schemas[f"{schema_key}.query_params"] = self.query_params_schema(view)
        properties["view_kwargs"] = _ref(f"{SCHEMAS}{schema_key}.view_kwargs")
        if "list" in view.actions:
            properties["query_params"] = _ref(f"{SCHEMAS}{schema_key}.query_params")
        if "retrieve" in view.actions:
            self.schemas[f"{schema_key}.lookup_by"] = self.lookup_by_schema(view)
            properties["lookup_by"] = _ref(f"{SCHEMAS}{schema_key}.lookup_by")
        else:
            properties["lookup_by"] = {"type": "null", "description": "Only for retrieve."}
        payload = self.frame("subscribe", properties, ("id", "model", "action"))
        if "retrieve" in view.actions:
            if "list" in view.actions:
                payload["if"] = {"properties": {"action": {"const": "retrieve"}}}
                payload["then"] = {"required": ["lookup_by"]}
                payload["else"] = {"properties": {"lookup_by": {"type": "null"}}}
            else:
                payload["required"].append("lookup_by")
        return self.message(
            f"subscribe.{view.key}",
            "subscribe",
            f"Subscribe to {label}",
            f"Watch one {label} (retrieve) or a list of them (list), as "
            f"{view.view.__qualname__} shows them over REST.",
            payload,
            description="Answered with nothing unless it asks for a snapshot or an ack; a "
            "refused subscribe is answered with `error`. Unknown fields are ignored.",
        )

    def generic_subscribe_message(self):
        properties = {
            "model": {"type": "string", "description": "The model's label, e.g. 'app.Model'."},
            "action": {"type": "string", "enum": list(ACTIONS)},
            "lookup_by": {
                "type": ["string", "integer"],
                "description": "For retrieve: the value of the view's lookup_field.",
            },
            "view_kwargs": {"type": "object", "additionalProperties": VIEW_KWARG_VALUE},
            "query_params": {
                "type": "object",
                "additionalProperties": _ref(SCHEMAS + "live.QueryParamValue"),
            },
            **self.common_subscribe_properties(),
        }
        return self.message(
            "subscribe",
            "subscribe",
            "Subscribe",
            "Watch one object or a list of a live view (no live view is registered on this "
            "socket, so every subscribe is answered with error 404).",
            self.frame("subscribe", properties, ("id", "model", "action")),
        )

    def kwargs_schema(self, view):
        schema = {
            "type": "object",
            "description": "The URL keyword arguments the view would get over REST "
            "(self.kwargs), strings or integers.",
            "additionalProperties": VIEW_KWARG_VALUE,
        }
        if view.view_kwargs:
            schema["properties"] = _parameters(view.view_kwargs)
        return schema

    def query_params_schema(self, view):
        schema = {
            "type": "object",
            "description": "The query string the view would get over REST "
            "(request.query_params), so its filter backends apply; for a snapshot, its "
            "paginator's page size parameter too. The parameters drf-spectacular documents "
            "for the view's REST list are listed.",
            "additionalProperties": _ref(SCHEMAS + "live.QueryParamValue"),
        }
        if view.query_params:
            schema["properties"] = _parameters(view.query_params)
        return schema

    def lookup_by_schema(self, view):
        schema = dict(view.lookup)
        description = (
            f"The value of {view.view.__qualname__}'s lookup_field, {view.lookup_field!r}."
        )
        if schema.get("type") == "integer":
            schema = {"oneOf": [schema, {"type": "string", "pattern": "^-?[0-9]+$"}]}
            description += " A string of digits works too."
        return {**schema, "description": description}

    def instance_schemas(self, view):
        """(the instance's schema: drf-spectacular's component of the view's serializer, the
        $ref of its primary key's schema, the $ref of a DELETED instance's schema)."""
        key = f"live.{view.key}"
        deleted = {"id": view.pk, "pk": view.pk}
        if view.lookup_field not in ("pk", "id"):
            deleted[view.lookup_field] = view.lookup
        self.schemas[f"{key}.pk"] = {
            **view.pk,
            "description": f"The primary key of {view.label} objects.",
        }
        self.schemas[f"{key}.deleted"] = {
            "type": "object",
            "description": f"The instance of a DELETED broadcast of {view.label}: the object's "
            "primary key (as `id` and `pk`) and its last lookup value, nothing more.",
            "required": ["id", "pk"],
            "properties": deleted,
            "additionalProperties": False,
        }
        return view.instance, f"{SCHEMAS}{key}.pk", f"{SCHEMAS}{key}.deleted"

    def snapshot_message(self, view):
        model, instance, _, pk, key = self._model_parts(view)
        properties = {
            "id": _ref(SCHEMAS + "live.SubscriptionId"),
            "model": model,
            "instances": {"type": "array", "items": instance},
            "pks": {
                "type": "array",
                "items": pk,
                "description": "The primary keys, in the order of `instances`.",
            },
            "truncated": {
                "type": "boolean",
                "description": "True when objects were left out (the view's page size, "
                "REST_LIVE_SNAPSHOT_LIMIT); false for retrieve.",
            },
            "position": _ref(SCHEMAS + "live.Position"),
        }
        required = ("id", "model", "instances", "pks", "truncated", "position")
        what = view.label if view else "the model"
        return self.message(
            "snapshot" + key,
            "snapshot",
            f"Snapshot of {what}",
            "What the subscription sees now: the answer to a subscribe with snapshot true (or "
            "a resume that failed), before anything else for it.",
            self.frame("snapshot", properties, required),
        )

    def _model_parts(self, view):
        """(model, instance, DELETED instance and pk schemas, message key suffix) of `view`, or
        generic ones when no view is registered."""
        if view is None:
            instance = {"type": "object"}
            deleted = {"type": "object", "required": ["id", "pk"]}
            return self.model_label(), instance, deleted, VIEW_KWARG_VALUE, ""
        instance, pk_ref, deleted_ref = self.instance_schemas(view)
        return _const(view.label), instance, _ref(deleted_ref), _ref(pk_ref), f".{view.key}"

    def _change(self, schema, instance, deleted):
        """Make `schema` (with `action` and `instance` properties) take `deleted` as its
        instance when its action is DELETED, `instance` otherwise."""
        schema["properties"]["action"] = {
            "type": "string",
            "enum": ["CREATED", "UPDATED", "DELETED"],
            "description": "CREATED: it entered what the subscription sees; UPDATED: it changed "
            "and is still seen; DELETED: it left. Treat CREATED and UPDATED alike (upsert by "
            "pk) and ignore a DELETED of an object you do not hold.",
        }
        schema["properties"]["instance"] = {"anyOf": [instance, deleted]}
        schema["if"] = {"properties": {"action": {"const": "DELETED"}}}
        schema["then"] = {"properties": {"instance": deleted}}
        schema["else"] = {"properties": {"instance": instance}}
        return schema

    def broadcast_message(self, view):
        model, instance, deleted, pk, key = self._model_parts(view)
        properties = {
            "id": _ref(SCHEMAS + "live.SubscriptionId"),
            "model": model,
            "pk": pk,
            "position": _ref(SCHEMAS + "live.Position"),
            "more": {
                "type": "boolean",
                "const": True,
                "description": "More broadcasts of the same committed transaction follow on "
                "this socket: buffer them, and apply the buffer with the first one without it.",
            },
        }
        payload = self.frame(
            "broadcast", properties, ("id", "model", "action", "instance", "pk", "position")
        )
        what = view.label if view else "an object"
        return self.message(
            "broadcast" + key,
            "broadcast",
            f"A change of {what}",
            "A committed change to an object the subscription sees (or saw).",
            self._change(payload, instance, deleted),
        )

    def resumed_message(self, view):
        model, instance, deleted, pk, key = self._model_parts(view)
        change = {"type": "object", "required": ["action", "pk", "instance"], "properties": {}}
        change["properties"]["pk"] = pk
        properties = {
            "id": _ref(SCHEMAS + "live.SubscriptionId"),
            "model": model,
            "position": _ref(SCHEMAS + "live.Position"),
            "broadcasts": {
                "type": "array",
                "description": "What changed after the client's position, each object once, as "
                "the view shows it to the subscriber now (a DELETED carries the primary key "
                "alone); apply them together, as one transaction. Empty: nothing changed.",
                "items": self._change(change, instance, deleted),
            },
        }
        what = view.label if view else "the model"
        return self.message(
            "resumed" + key,
            "resumed",
            f"Resumed {what}",
            "The answer to a subscribe with resume, when the server can resume: what changed "
            "since the position, in one frame. The subscription is live from here.",
            self.frame("resumed", properties, ("id", "model", "position", "broadcasts")),
        )

    def resume_failed_message(self):
        properties = {
            "id": _ref(SCHEMAS + "live.SubscriptionId"),
            "model": self.model_label(),
            "reason": {
                "type": "string",
                "enum": ["epoch", "expired", "unknown", "too_many"],
                "description": "epoch: the position is from another change log (a database "
                "restored into another, flushed or created afresh); expired: the change log no "
                "longer holds every change after it; unknown: not a position this log handed "
                "out, or ahead of it; too_many: more objects changed than the snapshot would "
                "carry.",
            },
            "message": {"type": "string"},
        }
        return self.message(
            "resume_failed",
            "resume_failed",
            "Resume failed",
            "The position cannot be resumed from; a snapshot of the subscription follows.",
            self.frame("resume_failed", properties, ("id", "model", "reason", "message")),
            examples=[
                {
                    "type": "resume_failed",
                    "id": 7,
                    "model": self.example_label(),
                    "reason": "expired",
                    "message": "The change log no longer holds the changes after it.",
                }
            ],
        )

    def ack_message(self, kind):
        verb = "subscribe" if kind == "subscribed" else "unsubscribe"
        return self.message(
            kind,
            kind,
            kind.capitalize(),
            f"Answers a {verb} that asked with ack true, once it took effect.",
            self.frame(kind, {"id": _ref(SCHEMAS + "live.SubscriptionId")}, ("id",)),
            examples=[{"type": kind, "id": 7}],
        )

    def reset_message(self):
        properties = {
            "id": _ref(SCHEMAS + "live.SubscriptionId"),
            "model": self.model_label(),
            "message": {"type": "string"},
        }
        return self.message(
            "reset",
            "reset",
            "Reset",
            "The subscription could not follow a change, or its login changed: what the "
            "client holds may be stale. Re-sync: unsubscribe, then subscribe with a snapshot.",
            self.frame("reset", properties, ("id", "model", "message")),
            examples=[
                {
                    "type": "reset",
                    "id": 7,
                    "model": self.example_label(),
                    "message": "A change could not be evaluated; re-sync.",
                }
            ],
        )

    def error_message(self):
        properties = {
            "id": {
                "anyOf": [_ref(SCHEMAS + "live.SubscriptionId"), {"type": "null"}],
                "description": "The request's id, or null when the frame had no usable id.",
            },
            "code": {
                "type": "integer",
                "enum": [400, 403, 404, 429, 500],
                "description": "400 malformed; 403 the view's permissions refuse; 404 unknown "
                "model or subscription; 429 too many subscriptions; 500 the server failed "
                "(try again later).",
            },
            "message": {"type": "string"},
        }
        return self.message(
            "error",
            "error",
            "Error",
            "The frame the client sent did nothing; the socket stays open.",
            self.frame("error", properties, ("id", "code", "message")),
            examples=[
                {
                    "type": "error",
                    "id": 7,
                    "code": 403,
                    "message": "You do not have permission to perform this action.",
                }
            ],
        )

    def unsubscribe_message(self):
        properties = {
            "id": _ref(SCHEMAS + "live.SubscriptionId"),
            "ack": {
                "type": "boolean",
                "default": False,
                "description": "True to be answered with `unsubscribed`.",
            },
        }
        return self.message(
            "unsubscribe",
            "unsubscribe",
            "Unsubscribe",
            "End a subscription.",
            self.frame("unsubscribe", properties, ("id",)),
            examples=[{"type": "unsubscribe", "id": 7, "ack": True}],
        )

    def client_hello_message(self):
        payload = self.frame("hello", {})
        payload["additionalProperties"] = False  # nothing but the type, unlike the answer
        return self.message(
            "hello.client",
            "hello",
            "Hello",
            "Ask the server for its protocol version, position, limits and models (opt-in; "
            "any time, typically first; no id).",
            payload,
            examples=[{"type": "hello"}],
        )

    def server_hello_message(self):
        limits = {name: {"type": [kind, "null"], "minimum": 0} for name, kind in LIMITS.items()}
        properties = {
            "protocol": _const(VERSION),
            "server": _const("rest_live"),
            "position": _ref(SCHEMAS + "live.Position"),
            "limits": {
                "type": "object",
                "description": "The socket's limits (docs/protocol.md, Limits); null: off.",
                "properties": limits,
            },
            "models": {
                "type": "object",
                "description": "The models this socket may subscribe to (the view's "
                "permissions admit its user), and their actions.",
                "additionalProperties": {
                    "type": "array",
                    "items": {"type": "string", "enum": list(ACTIONS)},
                },
            },
        }
        if self.labels:
            properties["models"]["propertyNames"] = {"enum": self.labels}
        return self.message(
            "hello.server",
            "hello",
            "Hello",
            "The answer to a client's hello.",
            self.frame("hello", properties, ("protocol", "server", "position", "limits", "models")),
            examples=[
                {
                    "type": "hello",
                    "protocol": VERSION,
                    "server": "rest_live",
                    "position": "3f9a61c2d0.1301",
                    "limits": {name: conf.DEFAULTS[name.upper()] for name in LIMITS},
                    "models": {self.example_label(): list(ACTIONS)},
                }
            ],
        )

    # -- channels and operations

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
                        "channel": _ref(channel_ref),
                        "summary": OPERATION_SUMMARIES[direction, kind],
                        "messages": [
                            _ref(f"{channel_ref}/messages/{_pointer(key)}") for key in keys
                        ],
                    }
                    if direction == "receive" and kind == "hello":
                        operation["reply"] = {
                            "channel": _ref(channel_ref),
                            "messages": [
                                _ref(f"{channel_ref}/messages/{_pointer(key)}")
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
            "asyncapi": ASYNCAPI_VERSION,
            "info": {
                "title": self.title,
                "version": PROTOCOL_VERSION,
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
            "messages": {key: _ref(MESSAGES + _pointer(key)) for key in keys},
            "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
        }
        parameters = sorted(_variables(channel.address or ""))
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


def _parameters(parameters):
    properties = {}
    for name, (schema, description) in parameters.items():
        schema = _plain(schema)
        if description:
            schema["description"] = str(description)
        properties[name] = schema
    return properties


def _pointer(key):
    """A key as a JSON Pointer token."""
    return key.replace("~", "~0").replace("/", "~1")
