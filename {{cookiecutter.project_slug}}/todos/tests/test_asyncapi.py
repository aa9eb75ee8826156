"""The example's todos in the AsyncAPI document: their schema is the REST API's."""

from django.test import SimpleTestCase

from tests.test_asyncapi import (
    broadcast_of,
    json_schema,
    live_asyncapi,
    messages,
    resolve,
    rest_components,
)


class TodoDocumentTests(SimpleTestCase):
    def test_the_todo_instance_schema_is_the_rest_apis(self):
        document = live_asyncapi()
        schemas = document["components"]["schemas"]
        rest = rest_components()["Todo"]
        self.assertEqual(set(schemas["Todo"]["properties"]), set(rest["properties"]))
        self.assertEqual(schemas["Todo"], json_schema(rest))
        payload = broadcast_of(document, "todos.Todo")["payload"]
        self.assertEqual(payload["properties"]["model"]["const"], "todos.Todo")
        self.assertIn(
            {"$ref": "#/components/schemas/Todo"}, payload["properties"]["instance"]["anyOf"]
        )
        (subscribe,) = messages(document, "receive")["subscribe"]
        properties = subscribe["payload"]["properties"]
        query_params = resolve(document, properties["query_params"]["$ref"])
        self.assertEqual(set(query_params["properties"]), {"search", "ordering"})
        self.assertEqual(set(properties["action"]["enum"]), {"list", "retrieve"})
