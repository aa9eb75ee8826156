"""The frames clients send, as AsyncAPI messages: subscribe (one message per live view, with
its view_kwargs, query_params and lookup_by schemas), unsubscribe and hello."""

from rest_live.asyncapi.messages import SCHEMAS, VIEW_KWARG_VALUE, Messages, const, ref
from rest_live.asyncapi.schema import plain
from rest_live.protocol import ACTIONS


class ClientMessages(Messages):
    """The messages of the frames clients send, on each channel."""

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

    def common_subscribe_properties(self):
        return {
            "id": ref(SCHEMAS + "live.SubscriptionId"),
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
            "model": const(label, "The model's label (matched in any case)."),
            "action": {"type": "string", "enum": list(view.actions)},
            **self.common_subscribe_properties(),
        }
        schema_key = f"live.{view.key}"
        self.schemas[f"{schema_key}.view_kwargs"] = self.kwargs_schema(view)
        self.schemas[f"{schema_key}.query_params"] = self.query_params_schema(view)
        properties["view_kwargs"] = ref(f"{SCHEMAS}{schema_key}.view_kwargs")
        if "list" in view.actions:
            properties["query_params"] = ref(f"{SCHEMAS}{schema_key}.query_params")
        if "retrieve" in view.actions:
            self.schemas[f"{schema_key}.lookup_by"] = self.lookup_by_schema(view)
            properties["lookup_by"] = ref(f"{SCHEMAS}{schema_key}.lookup_by")
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
                "additionalProperties": ref(SCHEMAS + "live.QueryParamValue"),
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
            "additionalProperties": ref(SCHEMAS + "live.QueryParamValue"),
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

    def unsubscribe_message(self):
        properties = {
            "id": ref(SCHEMAS + "live.SubscriptionId"),
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


def _parameters(parameters):
    """Properties of an object schema: {name: (schema, description)} as drf-spectacular
    documents a view's parameters."""
    properties = {}
    for name, (schema, description) in parameters.items():
        schema = plain(schema)
        if description:
            schema["description"] = str(description)
        properties[name] = schema
    return properties
