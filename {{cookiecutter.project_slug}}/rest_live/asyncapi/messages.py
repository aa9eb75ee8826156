"""What every message of the protocol is made of: a frame's payload schema, the message object
that carries it, and the schemas frames share (a subscription's id, a position). The frames
themselves are in client_messages.py and server_messages.py."""

SCHEMAS = "#/components/schemas/"


def ref(target):
    return {"$ref": target}


def const(value, description=None):
    schema = {"type": _type_name(value), "const": value}
    if description:
        schema["description"] = description
    return schema


def _type_name(value):
    return {bool: "boolean", int: "integer", str: "string"}[type(value)]


_SUBSCRIPTION_ID = {
    "description": "Names the subscription: chosen by the client in its subscribe, unique on "
    "the socket, and carried by every frame about the subscription.",
    "oneOf": [{"type": "integer"}, {"type": "string", "minLength": 1, "maxLength": 200}],
}
_POSITION = {
    "type": ["string", "null"],
    "maxLength": 100,
    "description": "An opaque position in the change log, '<epoch>.<n>'; store it and never "
    "parse it. Every change committed before this frame's, up to it, was sent to this socket; "
    "positions on one socket never go down. Null for a change the change log does not hold (a "
    "model in another database than the log): no resume from those.",
    "examples": ["3f9a61c2d0.1234"],
}
_SCALAR = {"type": ["string", "number", "boolean"]}
_QUERY_PARAM_VALUE = {
    "description": "A query parameter's value: a string, number or boolean, or a list of them "
    "(a repeated parameter). Numbers and booleans reach the view as a URL would carry them.",
    "oneOf": [_SCALAR, {"type": "array", "items": _SCALAR}],
}
VIEW_KWARG_VALUE = {"type": ["string", "integer"]}


class Messages:
    """Collects the messages and the schemas they refer to, under their component names. The
    frames that name a model use `labels`, those of every live view in the document, sorted."""

    def __init__(self, labels):
        self.labels = labels
        self.schemas = {}
        self.messages = {}

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
                "live.SubscriptionId": _SUBSCRIPTION_ID,
                "live.Position": _POSITION,
                "live.QueryParamValue": _QUERY_PARAM_VALUE,
            }
        )

    def frame(self, kind, properties, required=()):
        return {
            "type": "object",
            "required": ["type", *required],
            "properties": {"type": const(kind), **properties},
        }

    def message(self, key, kind, title, summary, payload, examples=(), description=None):
        message = {"name": kind, "title": title, "summary": summary, "payload": payload}
        if description:
            message["description"] = description
        if examples:
            message["examples"] = [{"payload": example} for example in examples]
        self.messages[key] = message
        return key
