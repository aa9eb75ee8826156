"""What drf-spectacular says of a live view: its list and retrieve endpoints are inspected as
drf-spectacular's generator inspects the REST API's, for the instance schema (the serializer's
component), the query and URL parameters, and the schema of the primary key and lookup field."""

import weakref
from dataclasses import dataclass, field

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
from rest_framework.settings import api_settings
from rest_framework.viewsets import ViewSetMixin

from rest_live.asyncapi.exceptions import AsyncAPIError
from rest_live.asyncapi.routes import path_variables
from rest_live.asyncapi.schema import json_schema, plain
from rest_live.protocol import ACTIONS


@dataclass
class InspectedView:
    """What drf-spectacular says of one live view, as the document uses it."""

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


class Inspector:
    """Runs drf-spectacular over each live view's list and retrieve endpoints, as its
    SchemaGenerator runs over the REST API's, with one component registry for all of them."""

    def __init__(self):
        reset_generator_stats()
        self.generator = SchemaGenerator()
        self.registry = self.generator.registry
        self.endpoints = None
        self.paths = {}  # as in an OpenAPI document, for drf-spectacular's postprocessing hooks
        # (operation, action, lookup name, view_kwargs, query_params): the operation's parameters
        # are read once the postprocessing hooks ran over them, as over the REST schema's.
        self.parameters = []
        # The AutoSchemas given to views, which hold them by weak references (as drf-spectacular's
        # generator does: a schema refers to its view, so a strong one would keep both forever).
        self.keep = []

    def _rest_endpoints(self):
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
        instances, view_kwargs, query_params, schema = [], {}, {}, None
        for action in actions:
            operation, schema, lookup_name = self._operation(view, action, label, lookup_kwarg)
            if operation is None:
                raise AsyncAPIError(
                    f"its {action} is excluded from drf-spectacular's schema "
                    "(extend_schema(exclude=True)), so its instances have none."
                )
            instance = self._instance_schema(action, operation, schema)
            if instance not in instances:
                instances.append(instance)
            self.parameters.append((operation, action, lookup_name, view_kwargs, query_params))
        pk = plain(_model_field_schema(schema, model._meta.pk))
        lookup = pk
        if lookup_field not in ("pk", model._meta.pk.name):
            lookup = plain(
                _model_field_schema(schema, follow_model_field_lookup(model, lookup_field))
            )
        return InspectedView(
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
        if coerced != path and lookup_kwarg in path_variables(path) - path_variables(coerced):
            # "{pk}" is named after the primary key field ("{id}"), as in the REST schema.
            lookup_name = next(iter(path_variables(coerced) - path_variables(path)), lookup_kwarg)
        path = coerced
        live_view.request = spectacular_settings.GET_MOCK_REQUEST("GET", path, live_view, None)
        prefix = spectacular_settings.SCHEMA_PATH_PREFIX or "/"
        operation = schema.get_operation(
            path, regex, prefix if prefix.startswith("^") else "^" + prefix, "GET", self.registry
        )
        if operation is not None:
            self.paths.setdefault(path, {})["get"] = operation
        return operation, schema, lookup_name

    def _rest_endpoint(self, view, action, lookup_kwarg):
        """(path, path_regex, callback) of the REST endpoint that serves `action` of `view`."""
        for path, regex, method, callback in self._rest_endpoints():
            if method != "GET" or getattr(callback, "cls", None) is not view:
                continue
            actions = getattr(callback, "actions", None)
            if actions is not None:
                if actions.get("get") == action:
                    return path, regex, callback
            elif _plain_view_action(view, path, lookup_kwarg) == action:
                return path, regex, callback
        return None

    def _instance_schema(self, action, operation, schema):
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
