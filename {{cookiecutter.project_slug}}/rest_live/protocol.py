"""The wire protocol: client frames parsed and checked, server frames built (docs/protocol.md)."""

import json
from dataclasses import dataclass

ACTIONS = ("list", "retrieve")
# 1 is django-rest-live 0.7's; 2 added positions, resume, transactions, `pk` and hello, all of
# them keys a 0.7 client ignores or frames it never asks for.
VERSION = 2
# Echoed when a client offers it, as clients sending a token subprotocol must (rest_live/auth.py).
SUBPROTOCOL = "rest-live"
CREATED, UPDATED, DELETED = "CREATED", "UPDATED", "DELETED"

BAD_REQUEST, FORBIDDEN, NOT_FOUND, TOO_MANY, SERVER_ERROR = 400, 403, 404, 429, 500

# Close codes the server sends (docs/protocol.md, "Close codes"). Servers relay only 1000 and
# 3000-4999 from an application: Daphne turns anything else into 1011, so ours are 4000 plus the
# nearest standard or HTTP code.
CLOSE_INVALID_TOKEN = 4001  # a token that is unknown or whose user is inactive: stop
CLOSE_UNAUTHENTICATED = 4003  # no user on a RealtimeRouter(public=False): stop
CLOSE_TOO_FAST = 4008  # over REST_LIVE_MESSAGE_BURST / _PER_SECOND: reconnect, later
CLOSE_TOO_BIG = 4009  # a frame over REST_LIVE_MAX_FRAME_BYTES: stop, it would be sent again
# The process holds REST_LIVE_MAX_CONNECTIONS, or the client is over its budget (budget.py):
# reconnect, much later.
CLOSE_AT_CAPACITY = 4013
CLOSE_TOO_SLOW = 4029  # fell REST_LIVE_MAX_PENDING_BYTES behind: reconnect, re-sync


class ProtocolError(Exception):
    """A request the server refuses; sent to the client as an error frame."""

    def __init__(self, code, message, request_id=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class Subscribe:
    id: int | str
    model: str
    action: str
    lookup_by: int | str | None = None
    view_kwargs: tuple = ()  # sorted (name, value) pairs
    query_params: tuple = ()  # sorted (name, (value, ...)) pairs
    snapshot: bool = False  # answer with the current state first
    ack: bool = False  # answer "subscribed" once it is live
    resume: str | None = None  # a position: answer with what changed after it (positions.py)


@dataclass(frozen=True)
class Hello:
    """A client asking what this server speaks and allows."""


@dataclass(frozen=True)
class Unsubscribe:
    id: int | str
    ack: bool = False  # answer "unsubscribed" once it is over


def parse(text, served=None):
    """The `Subscribe`, `Unsubscribe` or `Hello` a text frame asks for; ProtocolError 400 if
    malformed, and 404 for a subscribe to a model label that `served(label)` (the socket's
    router's `view_for`) does not serve.

    Which error wins (docs/protocol.md, "error"): the frame's JSON, its id and its type, then the
    model, so that a model the socket does not serve is a 404 whatever else is wrong with the
    subscribe (as in 0.7), then the other fields.
    """
    try:
        frame = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise ProtocolError(BAD_REQUEST, "The frame is not valid JSON.") from None
    if not isinstance(frame, dict):
        raise ProtocolError(BAD_REQUEST, "The frame must be a JSON object.")
    kind = frame.get("type")
    if kind == "hello":
        return Hello()
    request_id = _request_id(frame)
    if kind == "unsubscribe":
        return Unsubscribe(request_id, _flag(frame, "ack", request_id))
    if kind != "subscribe":
        raise ProtocolError(
            BAD_REQUEST,
            f"Unknown type {kind!r}: use 'subscribe', 'unsubscribe' or 'hello'.",
            request_id,
        )
    return _subscribe(frame, request_id, served)


def _request_id(frame):
    if "id" not in frame:
        raise ProtocolError(BAD_REQUEST, "The frame needs an 'id' naming the subscription.")
    request_id = frame["id"]
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        raise ProtocolError(BAD_REQUEST, "'id' must be an integer or a string.")
    if isinstance(request_id, str) and not 0 < len(request_id) <= 200:
        raise ProtocolError(BAD_REQUEST, "A string 'id' must have 1 to 200 characters.")
    return request_id


def _subscribe(frame, request_id, served):
    def refuse(message):
        return ProtocolError(BAD_REQUEST, message, request_id)

    model = frame.get("model")
    if not isinstance(model, str) or not model:
        raise refuse("'model' must be a string such as 'todos.Todo'.")
    if served is not None and not served(model):
        raise unknown_model(model, request_id)
    action = frame.get("action")
    if action not in ACTIONS:
        raise refuse(f"'action' must be one of {', '.join(ACTIONS)}.")
    lookup_by = frame.get("lookup_by")
    if action == "retrieve":
        if not _is_lookup_value(lookup_by):
            raise refuse("A retrieve subscription needs 'lookup_by', a string or an integer.")
    elif lookup_by is not None:
        raise refuse("'lookup_by' applies to retrieve subscriptions only.")
    return Subscribe(
        id=request_id,
        model=model,
        action=action,
        lookup_by=lookup_by,
        view_kwargs=_view_kwargs(frame.get("view_kwargs"), refuse),
        query_params=_query_params(frame.get("query_params"), refuse),
        snapshot=_flag(frame, "snapshot", request_id),
        ack=_flag(frame, "ack", request_id),
        resume=_resume(frame.get("resume"), refuse),
    )


def unknown_model(model, request_id):
    """The error for a model label no view on the socket serves: the same whatever the label
    (an unregistered model, one that does not exist, nonsense), so it tells nothing more."""
    return ProtocolError(NOT_FOUND, f"No live view serves model {model!r}.", request_id)


def _resume(value, refuse):
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= _POSITION_LENGTH:
        raise refuse(
            f"'resume' must be a position the server sent (a string of 1 to {_POSITION_LENGTH} "
            "characters)."
        )
    return value


_POSITION_LENGTH = 100


def _flag(frame, name, request_id):
    value = frame.get(name, False)
    if not isinstance(value, bool):
        raise ProtocolError(BAD_REQUEST, f"'{name}' must be true or false.", request_id)
    return value


def _is_lookup_value(value):
    return isinstance(value, str | int) and not isinstance(value, bool)


def _view_kwargs(value, refuse):
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(map(_is_lookup_value, value.values())):
        raise refuse("'view_kwargs' must be an object whose values are strings or integers.")
    return tuple(sorted(value.items()))


def _query_params(value, refuse):
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise refuse("'query_params' must be an object.")
    params = []
    for name, raw in value.items():
        values = raw if isinstance(raw, list) else [raw]
        if not all(isinstance(item, str | int | float | bool) for item in values):
            raise refuse(
                f"Query parameter {name!r} must be a string, number or boolean, or a list of them."
            )
        params.append((name, tuple(_query_value(item) for item in values)))
    return tuple(sorted(params))


def _query_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def error_frame(request_id, code, message):
    return json.dumps({"type": "error", "id": request_id, "code": code, "message": message})


def subscribed_frame(request_id):
    """The acknowledgement of a subscribe that asked for one: it is live from here on."""
    return json.dumps({"type": "subscribed", "id": request_id})


def unsubscribed_frame(request_id):
    """The acknowledgement of an unsubscribe that asked for one: nothing more will come for it."""
    return json.dumps({"type": "unsubscribed", "id": request_id})


def reset_frame(request_id, model, message):
    """A running subscription could not follow a change: the client's state for it may be stale.
    The subscription stays; the client re-syncs it (unsubscribe, then subscribe with a snapshot)."""
    return json.dumps({"type": "reset", "id": request_id, "model": model, "message": message})


def broadcast_frame(request_id, model, action, instance_json, pk, position, more=False):
    """A broadcast frame around a rendered instance, so one rendering serves every socket.
    `more`: frames of the same transaction follow it on this socket."""
    more = ', "more": true' if more else ""
    return (
        f'{{"type": "broadcast", "id": {json.dumps(request_id)}, "model": {json.dumps(model)}, '
        f'"action": "{action}", "instance": {instance_json}, "pk": {_json_key(pk)}, '
        f'"position": {json.dumps(position)}{more}}}'
    )


def snapshot_frame(request_id, model, instances_json, truncated, pks, position):
    """A snapshot frame around the rendered JSON array of what the subscriber sees now."""
    return (
        f'{{"type": "snapshot", "id": {json.dumps(request_id)}, "model": {json.dumps(model)}, '
        f'"instances": {instances_json}, "truncated": {json.dumps(truncated)}, '
        f'"pks": [{", ".join(map(_json_key, pks))}], "position": {json.dumps(position)}}}'
    )


def resumed_frame(request_id, model, position, events):
    """A resumed subscription's catch-up, in one frame so that it is applied in one step:
    `events` are (action, pk, rendered instance) of what changed after the client's position."""
    broadcasts = ", ".join(
        f'{{"action": "{action}", "pk": {_json_key(pk)}, "instance": {instance}}}'
        for action, pk, instance in events
    )
    return (
        f'{{"type": "resumed", "id": {json.dumps(request_id)}, "model": {json.dumps(model)}, '
        f'"position": {json.dumps(position)}, "broadcasts": [{broadcasts}]}}'
    )


def resume_failed_frame(request_id, model, reason, message):
    """A resume the server cannot serve: a snapshot of the subscription follows."""
    return json.dumps(
        {
            "type": "resume_failed",
            "id": request_id,
            "model": model,
            "reason": reason,
            "message": message,
        }
    )


def hello_frame(position, limits, models):
    """What this server speaks and allows, for a client that asked (`Hello`)."""
    return json.dumps(
        {
            "type": "hello",
            "protocol": VERSION,
            "server": "rest_live",
            "position": position,
            "limits": limits,
            "models": models,
        }
    )


def _json_key(pk):
    """A primary key as JSON: a number stays a number; anything else (a UUID) is its string."""
    if isinstance(pk, int) and not isinstance(pk, bool):
        return str(pk)
    return json.dumps(str(pk))


def deleted_instance(pk, lookup_field, lookup_value):
    """What a DELETED broadcast carries, to be rendered by the view: the primary key and the
    lookup field's value, nothing more (the subscriber may no longer see the rest).

    The primary key goes as `id`, this protocol's name for it, and as `pk`, the name
    django-rest-live 0.7 clients read.
    """
    return {"id": pk, "pk": pk, lookup_field: lookup_value}
