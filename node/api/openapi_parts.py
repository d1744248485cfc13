"""Building blocks of the OpenAPI document (`node.api.openapi`): schema constructors and operation shapes."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

HEX32: Schema = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "32 bytes in lowercase hex"}
HEX_KEY_ID: Schema = {"type": "string", "pattern": "^[0-9a-f]{8}$", "description": "C2SP key id, lowercase hex"}
BASE64: Schema = {"type": "string", "pattern": "^[A-Za-z0-9+/]*={0,2}$", "description": "standard base64"}
VKEY: Schema = {
    "type": "string",
    "pattern": r"^[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]+={0,2}$",
    "description": "C2SP verifier key <name>+<hex key id>+<base64(0x01 || Ed25519 key)>, named by the member id",
}
COUNT: Schema = {"type": "integer", "minimum": 0}
TEXT: Schema = {"type": "string"}
NOTE: Schema = {"type": "string", "description": "C2SP signed note: a checkpoint with validator signature lines"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    return {"oneOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Schema], *, optional: tuple[str, ...] = (), closed: bool = True) -> Schema:
    """An object schema: every property required unless listed in `optional`."""
    schema: Schema = {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def array(items: Schema, **bounds: int) -> Schema:
    return {"type": "array", "items": items, **bounds}


def json_content(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def problem(description: str) -> Schema:
    return {"description": description, "content": {"application/problem+json": {"schema": ref("Problem")}}}


def param(name: str, where: str, description: str, schema: Schema, *, required: bool = True) -> Schema:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def get_operation(summary: str, responses: dict[str, Schema], parameters: list[Schema] | None = None) -> Schema:
    operation: Schema = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


BAD_PARAMETER = problem("A malformed parameter")
NOT_READY = problem("No block has been committed yet")
