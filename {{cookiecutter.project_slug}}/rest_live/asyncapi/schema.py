"""drf-spectacular's schemas as the JSON Schema an AsyncAPI document takes: its Schema Object is
JSON Schema draft 07, where drf-spectacular writes OpenAPI 3.0 Schema Objects by default."""

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


def plain(schema):
    """A field's schema as a bare value: without readOnly and the like, as JSON Schema."""
    schema = json_schema(schema)
    return {k: v for k, v in schema.items() if k not in ("readOnly", "writeOnly", "title")}
