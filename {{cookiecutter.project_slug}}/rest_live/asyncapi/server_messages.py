"""The frames the server sends, as AsyncAPI messages: snapshot, broadcast and resumed (one
message per live view, with its instance, primary key and DELETED instance schemas),
resume_failed, subscribed, unsubscribed, reset, error and hello."""

from rest_live import conf
from rest_live.asyncapi.messages import SCHEMAS, VIEW_KWARG_VALUE, Messages, const, ref
from rest_live.protocol import ACTIONS, VERSION

_LIMITS = {
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


class ServerMessages(Messages):
    """The messages of the frames the server sends, on each channel."""

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
            "id": ref(SCHEMAS + "live.SubscriptionId"),
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
            "position": ref(SCHEMAS + "live.Position"),
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
        return const(view.label), instance, ref(deleted_ref), ref(pk_ref), f".{view.key}"

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
            "id": ref(SCHEMAS + "live.SubscriptionId"),
            "model": model,
            "pk": pk,
            "position": ref(SCHEMAS + "live.Position"),
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
            "id": ref(SCHEMAS + "live.SubscriptionId"),
            "model": model,
            "position": ref(SCHEMAS + "live.Position"),
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
            "id": ref(SCHEMAS + "live.SubscriptionId"),
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
            self.frame(kind, {"id": ref(SCHEMAS + "live.SubscriptionId")}, ("id",)),
            examples=[{"type": kind, "id": 7}],
        )

    def reset_message(self):
        properties = {
            "id": ref(SCHEMAS + "live.SubscriptionId"),
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
                "anyOf": [ref(SCHEMAS + "live.SubscriptionId"), {"type": "null"}],
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

    def server_hello_message(self):
        limits = {name: {"type": [kind, "null"], "minimum": 0} for name, kind in _LIMITS.items()}
        properties = {
            "protocol": const(VERSION),
            "server": const("rest_live"),
            "position": ref(SCHEMAS + "live.Position"),
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
                    "limits": {name: conf.DEFAULTS[name.upper()] for name in _LIMITS},
                    "models": {self.example_label(): list(ACTIONS)},
                }
            ],
        )
