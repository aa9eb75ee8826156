"""`manage.py live_asyncapi` writes a document that the official JSON Schema of AsyncAPI 3.0.0
accepts: the one npm's `@asyncapi/specs` ships (pinned in tests/js/, installed by node_tools), in
its bundled form without external references, checked with Python's jsonschema. Copies broken on
purpose are refused, so the check is not vacuous. The baked project's own tests/test_asyncapi.py
checks what the document says (its schemas against REST's, a live session's frames against it).
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from jsonschema import Draft7Validator

from harness import node_tools
from harness.combos import combo_params

# The bundled schema: every definition inline, no $id, no reference to fetch.
SPEC = ("@asyncapi", "specs", "schemas", "3.0.0-without-$id.json")


@pytest.fixture(scope="module")
def asyncapi_3():
    """A validator of the official AsyncAPI 3.0.0 JSON Schema (a JSON Schema draft 07)."""
    schema = json.loads(node_tools.node_modules_or_skip().joinpath(*SPEC).read_text())
    assert schema["properties"]["asyncapi"]["const"] == "3.0.0"
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def problems(validator: Draft7Validator, document: dict) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def unresolved_refs(document: dict) -> list[str]:
    """Every "#/..." $ref in `document` that points at nothing."""
    missing = []

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/"):
                target = document
                for token in ref[2:].split("/"):
                    token = token.replace("~1", "/").replace("~0", "~")
                    if not isinstance(target, dict) or token not in target:
                        missing.append(ref)
                        break
                    target = target[token]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    return missing


@pytest.mark.parametrize("combo", combo_params("defaults", "no_example"))
def test_the_document_is_valid_asyncapi_3(project, combo, asyncapi_3, tmp_path):
    document = json.loads(project.manage("live_asyncapi").stdout)
    assert not problems(asyncapi_3, document), "\n".join(problems(asyncapi_3, document))
    assert not unresolved_refs(document)
    assert document["info"]["version"] == "2"
    (channel,) = document["channels"].values()
    assert channel["address"] == "/ws/subscribe/"
    if combo["include_example_app"] == "y":
        broadcast = document["components"]["messages"]["broadcast.todos.Todo"]["payload"]
        assert broadcast["properties"]["model"]["const"] == "todos.Todo"
        assert broadcast["else"]["properties"]["instance"] == {"$ref": "#/components/schemas/Todo"}
        todo = document["components"]["schemas"]["Todo"]
        assert {"title", "done", "tags"} <= set(todo["properties"])

    # The same document to a file, and as YAML.
    output = tmp_path / "asyncapi.json"
    project.manage("live_asyncapi", "--output", str(output))
    assert json.loads(output.read_text()) == document
    as_yaml = yaml.safe_load(project.manage("live_asyncapi", "--format", "yaml").stdout)
    assert as_yaml == document


def _break(document: dict, how: str) -> dict:
    broken = copy.deepcopy(document)
    if how == "asyncapi 2 operation":
        next(iter(broken["operations"].values()))["action"] = "publish"
    elif how == "no info.version":
        del broken["info"]["version"]
    elif how == "a payload that is no schema":
        next(iter(broken["components"]["messages"].values()))["payload"]["type"] = "objekt"
    elif how == "an unknown field in a channel":
        next(iter(broken["channels"].values()))["subscribe"] = {}
    return broken


@pytest.mark.parametrize("combo", combo_params("defaults"))
def test_a_broken_document_is_refused(project, asyncapi_3):
    document = json.loads(project.manage("live_asyncapi").stdout)
    assert asyncapi_3.is_valid(document)
    for how in [
        "asyncapi 2 operation",
        "no info.version",
        "a payload that is no schema",
        "an unknown field in a channel",
    ]:
        assert problems(asyncapi_3, _break(document, how)), f"{how}: accepted"
