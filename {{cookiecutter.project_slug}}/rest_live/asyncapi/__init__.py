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

document.py assembles the document; routes.py finds where each router is served, inspection.py
what drf-spectacular says of each live view, schema.py turns its OpenAPI schemas into JSON
Schema; messages.py is what every message is made of, client_messages.py and
server_messages.py the frames each side sends. What this package exports is its API; the rest
is internal.
"""

from rest_live.asyncapi.document import build_document
from rest_live.asyncapi.exceptions import AsyncAPIError
from rest_live.asyncapi.schema import json_schema

__all__ = ["AsyncAPIError", "build_document", "json_schema"]
