"""`manage.py live_asyncapi`: the AsyncAPI document of the live socket describes every frame of
the protocol (the frames a live session really sends and receives validate against it), and each
live view's instances with the very schema drf-spectacular gives its serializer in the REST API's
OpenAPI schema; it fails with a clear error when it cannot."""

import json
import tempfile
from io import StringIO
from pathlib import Path
from unittest import mock

from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.test import SimpleTestCase, override_settings
from django.urls import include, path
from django.utils.module_loading import import_string
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from rest_framework import filters, generics
from rest_framework.routers import SimpleRouter

from rest_live.asyncapi import json_schema
from rest_live.mixins import RealtimeMixin
from rest_live.routers import RealtimeRouter
from tests.groups import GroupSerializer, GroupViewSet
from tests.live import LiveTestCase

# What docs/protocol.md (version 2) lists: every frame a client sends, and every frame it gets.
CLIENT_FRAMES = {"subscribe", "unsubscribe", "hello"}
SERVER_FRAMES = {
    "snapshot",
    "broadcast",
    "resumed",
    "resume_failed",
    "subscribed",
    "unsubscribed",
    "reset",
    "error",
    "hello",
}
SPECTACULAR_REST = {
    **settings.REST_FRAMEWORK,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}


class BoardGroupViewSet(GroupViewSet):
    """Groups of a board (a URL kwarg), searchable, looked up by name."""

    filter_backends = [filters.SearchFilter]
    search_fields = ["name"]
    lookup_field = "name"


class SerializerlessGroupView(RealtimeMixin, generics.ListAPIView):
    """No serializer: drf-spectacular cannot say what its instances are."""

    queryset = Group.objects.all()


# Registered without joining the change capture's registry, so that no other test sees them (the
# capture of auth_group is installed for tests/groups.py's GroupViewSet).
with mock.patch("rest_live.capture.registry.add"):
    router = RealtimeRouter()
    router.register(BoardGroupViewSet)
    unbuildable = RealtimeRouter()
    unbuildable.register(SerializerlessGroupView)

api = SimpleRouter()
api.register("groups", BoardGroupViewSet, basename="board-group")
# This module is the URLconf (REST) and the websocket routing of the tests that name it.
urlpatterns = [path("api/boards/<int:board>/", include(api.urls))]
websocket_urlpatterns = [path("ws/groups/", router.as_consumer().as_asgi())]
GROUPS = {"ROOT_URLCONF": __name__, "REST_LIVE_ROUTERS": [f"{__name__}.router"]}


def live_asyncapi(*args):
    out, err = StringIO(), StringIO()
    call_command("live_asyncapi", *args, stdout=out, stderr=err)
    return json.loads(out.getvalue())


def rest_components(**kwargs):
    """The component schemas of the REST API's OpenAPI schema, as drf-spectacular makes it."""
    with override_settings(REST_FRAMEWORK=SPECTACULAR_REST), GENERATOR_STATS.silence():
        schema = SchemaGenerator(**kwargs).get_schema(request=None, public=True)
    return schema["components"]["schemas"]


def resolve(document, ref):
    node = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def operation_messages(document, action):
    """[(JSON pointer, message)] of the operations of `action` ("send" or "receive"), replies
    to operations included in "send"."""
    found = []
    for operation in document["operations"].values():
        refs = []
        if operation["action"] == action:
            refs += operation["messages"]
        if action == "send":
            refs += operation.get("reply", {}).get("messages", [])
        for ref in refs:
            pointer = ref["$ref"]
            message = resolve(document, pointer)
            if "$ref" in message:  # the channel's message refers to the component
                pointer = message["$ref"]
                message = resolve(document, pointer)
            found.append((pointer, message))
    return found


def messages(document, action):
    """{frame type: [message]} of the operations of `action`."""
    found = {}
    for _pointer, message in operation_messages(document, action):
        found.setdefault(_type(message), []).append(message)
    return found


def validator(document, pointer):
    """A validator of the schema at `pointer` in `document`, its $refs resolved in `document`."""
    registry = Registry().with_resource("urn:asyncapi", Resource(document, DRAFT7))
    return Draft7Validator({"$ref": f"urn:asyncapi{pointer}"}, registry=registry)


def _type(message):
    return message["payload"]["properties"]["type"]["const"]


def _model(message):
    return message["payload"]["properties"].get("model", {}).get("const")


def broadcast_of(document, label):
    (message,) = [m for m in messages(document, "send")["broadcast"] if _model(m) == label]
    return message


class ProjectDocumentTests(SimpleTestCase):
    """The project's own routers, as configured."""

    def test_the_document_is_asyncapi_3_of_protocol_2_at_the_routed_path(self):
        document = live_asyncapi()
        self.assertEqual(document["asyncapi"], "3.0.0")
        self.assertEqual(document["info"]["version"], "2")
        self.assertTrue(document["info"]["title"])
        (channel,) = document["channels"].values()
        self.assertEqual(channel["address"], "/ws/subscribe/")  # config/routing.py

    def test_every_frame_of_the_protocol_is_an_operation(self):
        document = live_asyncapi()
        self.assertEqual(set(messages(document, "send")), SERVER_FRAMES)
        self.assertEqual(set(messages(document, "receive")), CLIENT_FRAMES)

    def test_each_live_views_instances_are_drf_spectaculars_rest_component(self):
        document = live_asyncapi()
        rest = rest_components()
        for dotted_path in settings.REST_LIVE_ROUTERS:
            for model, _view in import_string(dotted_path).views():
                instance = broadcast_of(document, model._meta.label)["payload"]["else"]
                name = instance["properties"]["instance"]["$ref"].rsplit("/", 1)[1]
                self.assertIn(name, rest)
                self.assertEqual(document["components"]["schemas"][name], json_schema(rest[name]))

    def test_the_examples_of_each_message_are_valid(self):
        document = live_asyncapi()
        checked = 0
        for name, message in document["components"]["messages"].items():
            check = validator(document, f"#/components/messages/{name}/payload")
            for example in message.get("examples", []):
                self.assertEqual(list(check.iter_errors(example["payload"])), [], name)
                checked += 1
        self.assertGreater(checked, 3)

    def test_output_to_a_file_and_as_yaml(self):
        expected = live_asyncapi()
        with tempfile.TemporaryDirectory() as directory:
            output = Path(directory) / "asyncapi.json"
            call_command("live_asyncapi", "--output", str(output), stderr=StringIO())
            self.assertEqual(json.loads(output.read_text()), expected)
        try:
            import yaml
        except ImportError:
            return
        out = StringIO()
        call_command("live_asyncapi", "--format", "yaml", stdout=out)
        self.assertEqual(yaml.safe_load(out.getvalue()), expected)

    def test_an_unwritable_output_is_a_clear_error(self):
        with tempfile.TemporaryDirectory() as directory:
            output = Path(directory) / "missing" / "asyncapi.json"
            with self.assertRaisesMessage(CommandError, f"Cannot write the document to {output}"):
                call_command("live_asyncapi", "--output", str(output))
            self.assertFalse(output.exists())


@override_settings(**GROUPS)
class GroupDocumentTests(SimpleTestCase):
    """A router of this module, serving groups of a board (REST: /api/boards/<board>/groups/)."""

    def test_the_channel_is_at_the_routed_path(self):
        (channel,) = live_asyncapi()["channels"].values()
        self.assertEqual(channel["address"], "/ws/groups/")

    def test_the_instances_lookup_kwargs_and_filters_are_the_rest_apis(self):
        document = live_asyncapi()
        schemas = document["components"]["schemas"]
        self.assertEqual(schemas["Group"], json_schema(rest_components()["Group"]))

        payload = broadcast_of(document, "auth.Group")["payload"]
        self.assertEqual(payload["then"]["properties"]["instance"]["$ref"].rsplit("/", 1)[1],
                         "live.auth.Group.deleted")  # fmt: skip
        (subscribe,) = messages(document, "receive")["subscribe"]
        properties = subscribe["payload"]["properties"]
        kwargs = resolve(document, properties["view_kwargs"]["$ref"])
        self.assertEqual(kwargs["properties"]["board"]["type"], "integer")
        self.assertEqual(set(kwargs["properties"]), {"board"})  # not the lookup, "name"
        lookup_by = resolve(document, properties["lookup_by"]["$ref"])
        self.assertEqual(lookup_by["type"], "string")
        query_params = resolve(document, properties["query_params"]["$ref"])
        self.assertEqual(set(query_params["properties"]), {"search"})

    def test_frames_as_the_server_renders_them_are_valid(self):
        document = live_asyncapi()
        pointer = "#/components/messages/broadcast.auth.Group/payload"
        check = validator(document, pointer)
        instance = GroupSerializer(Group(id=3, name="editors")).data
        frame = {"type": "broadcast", "id": 1, "model": "auth.Group", "action": "CREATED",
                 "instance": instance, "pk": 3, "position": "3f9a61c2d0.7"}  # fmt: skip
        self.assertEqual(list(check.iter_errors(frame)), [])
        deleted = {**frame, "action": "DELETED", "instance": {"id": 3, "pk": 3, "name": "x"}}
        self.assertEqual(list(check.iter_errors(deleted)), [])
        self.assertNotEqual(list(check.iter_errors({**frame, "instance": {"id": 3}})), [])
        self.assertNotEqual(list(check.iter_errors({**frame, "model": "auth.User"})), [])

    @override_settings(REST_LIVE_ROUTERS=[f"{__name__}.unbuildable"])
    def test_a_view_whose_schema_cannot_be_built_is_a_clear_error(self):
        with self.assertRaisesMessage(CommandError, "SerializerlessGroupView"):
            live_asyncapi()

    @override_settings(REST_LIVE_ROUTERS=[f"{__name__}.nowhere"])
    def test_a_router_that_cannot_be_imported_is_a_clear_error(self):
        with self.assertRaisesMessage(
            CommandError, f"Cannot import the router '{__name__}.nowhere'"
        ):
            live_asyncapi()


@override_settings(**GROUPS)
class LiveSessionTests(LiveTestCase):
    """A session with this module's router: every frame either side sends is one the document
    describes, and valid against one, and only one, of its messages."""

    application = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
    path = "/ws/groups/"

    def assertDescribed(self, document, frame, action):
        candidates = [
            pointer
            for pointer, message in operation_messages(document, action)
            if _type(message) == frame.get("type") and _model(message) in (None, frame.get("model"))
        ]
        valid = [p for p in candidates if validator(document, f"{p}/payload").is_valid(frame)]
        self.assertEqual(len(valid), 1, f"{frame} is valid against {valid} of {candidates}")

    async def send(self, document, socket, frame):
        self.assertDescribed(document, frame, "receive")
        await socket.send_json_to(frame)

    async def received(self, document, socket, kind):
        frame = await self.receive(socket)
        self.assertEqual(frame.get("type"), kind, frame)
        self.assertDescribed(document, frame, "send")
        return frame

    async def test_every_frame_of_a_session_is_described(self):
        document = await sync_to_async(live_asyncapi)()
        editors = await self.db(Group.objects.create, name="editors")
        # One of two changing while away: a resume then carries less than a snapshot would.
        authors = await self.db(Group.objects.create, name="authors")
        socket = await self.connect()
        await self.send(document, socket, {"type": "hello"})
        await self.received(document, socket, "hello")

        subscribe = {"type": "subscribe", "id": 1, "model": "auth.Group", "action": "list"}
        await self.send(document, socket, {**subscribe, "snapshot": True, "ack": True})
        snapshot = await self.received(document, socket, "snapshot")
        self.assertEqual(sorted(snapshot["pks"]), [editors.pk, authors.pk])
        await self.received(document, socket, "subscribed")
        readers = await self.db(Group.objects.create, name="readers")
        await self.received(document, socket, "broadcast")
        await self.db(readers.delete)
        deleted = await self.received(document, socket, "broadcast")
        self.assertEqual(deleted["action"], "DELETED")

        await self.send(document, socket, {**subscribe, "query_params": {"search": "edit"}})
        self.assertEqual((await self.received(document, socket, "error"))["code"], 400)
        retrieve = {**subscribe, "id": "by name", "action": "retrieve", "lookup_by": "editors"}
        await self.send(document, socket, {**retrieve, "view_kwargs": {"board": 3}})
        await self.send(document, socket, {"type": "unsubscribe", "id": 1, "ack": True})
        await self.received(document, socket, "unsubscribed")
        await socket.disconnect()

        editors.name = "chief editors"
        await self.db(editors.save)
        socket = await self.connect()
        await self.send(document, socket, {**subscribe, "resume": deleted["position"]})
        resumed = await self.received(document, socket, "resumed")
        self.assertEqual([change["pk"] for change in resumed["broadcasts"]], [editors.pk])
        await self.send(document, socket, {**subscribe, "id": 2, "resume": "not.a.position"})
        await self.received(document, socket, "resume_failed")
        await self.received(document, socket, "snapshot")
