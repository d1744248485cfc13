"""The OpenAPI document matches the routes the app serves, and real answers match its schemas."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from credledger.ledger.eventjson import event_to_json
from credledger.ledger.events import (
    Issue,
    KeyAdd,
    KeyRetire,
    MemberRemove,
    MemberUpdate,
    Payload,
    Reinstate,
    Revoke,
    Suspend,
)
from credledger.node.api.app import ROUTES
from credledger.node.api.openapi import openapi_document
from tests.apinode import ApiNode, api_node
from tests.factories import T0, by_governance, digest, issue, key_for, make_member, signed

TIME = T0 + 1000
DOC = openapi_document()

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def conforms(value: Any, schema: dict[str, Any], where: str = "$") -> None:
    """Check `value` against the subset of JSON Schema 2020-12 the document uses; AssertionError names the path."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        conforms(value, DOC["components"]["schemas"][name], where)
        return
    if "oneOf" in schema:
        matches = 0
        for option in schema["oneOf"]:
            try:
                conforms(value, option, where)
            except AssertionError:
                continue
            matches += 1
        assert matches == 1, f"{where}: matches {matches} of the oneOf options, expected exactly 1"
        return
    if "const" in schema:
        assert value == schema["const"], f"{where}: {value!r} is not {schema['const']!r}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} is not one of {schema['enum']}"
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert any(_is(value, t) for t in types), f"{where}: {value!r} is not of type {types}"
    if isinstance(value, dict):
        _conforms_object(value, schema, where)
    if isinstance(value, list):
        assert len(value) >= schema.get("minItems", 0), f"{where}: too few items"
        assert len(value) <= schema.get("maxItems", len(value)), f"{where}: too many items"
        for i, item in enumerate(value):
            conforms(item, schema.get("items", {}), f"{where}[{i}]")
    if isinstance(value, str) and "pattern" in schema:
        assert re.search(schema["pattern"], value), f"{where}: {value!r} does not match {schema['pattern']}"
    if type(value) is int:
        assert value >= schema.get("minimum", value), f"{where}: {value} < {schema['minimum']}"
        assert value <= schema.get("maximum", value), f"{where}: {value} > {schema['maximum']}"


def _conforms_object(value: dict[str, Any], schema: dict[str, Any], where: str) -> None:
    missing = [k for k in schema.get("required", []) if k not in value]
    assert not missing, f"{where}: missing {missing}"
    properties = schema.get("properties", {})
    if schema.get("additionalProperties") is False:
        extra = sorted(set(value) - set(properties))
        assert not extra, f"{where}: undocumented {extra}"
    for key, item in value.items():
        if key in properties:
            conforms(item, properties[key], f"{where}.{key}")


def _is(value: Any, json_type: str) -> bool:
    if json_type == "integer":
        return type(value) is int
    return isinstance(value, _TYPES[json_type])


def response_schema(path: str, method: str, status: int, media: str = "application/json") -> dict[str, Any]:
    schema: dict[str, Any] = DOC["paths"][path][method]["responses"][str(status)]["content"][media]["schema"]
    return schema


def test_every_route_is_documented_and_every_documented_route_exists(tmp_path: Path) -> None:
    served = {(method.lower(), path) for method, path, _ in ROUTES}
    documented = {(method, path) for path, ops in DOC["paths"].items() for method in ops}
    assert served == documented


async def test_the_app_registers_exactly_the_route_table(tmp_path: Path) -> None:
    async with api_node(tmp_path) as node:
        app = node.client.app
        assert isinstance(app, web.Application)
        registered = {
            (route.method.lower(), route.resource.canonical)
            for route in app.router.routes()
            if route.method != "HEAD" and route.resource is not None
        }
    assert registered == {(method.lower(), path) for method, path, _ in ROUTES}


def test_every_reference_resolves_and_path_parameters_are_declared() -> None:
    text = repr(DOC)
    for name in re.findall(r"#/components/schemas/(\w+)", text):
        assert name in DOC["components"]["schemas"], name
    for path, ops in DOC["paths"].items():
        for op in ops.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), path
            assert "default" not in op["responses"]


PAYLOADS: list[Payload] = [
    Issue(digest("x"), "m0.test", T0 + 5, (digest("y"),)),
    Revoke(digest("x"), 1),
    Suspend(digest("x"), 6),
    Reinstate(digest("x")),
    make_member("m9.test").add_payload(),
    MemberUpdate("m1.test", "M1", 2, key_for("m1.test", "next").public.raw),
    MemberRemove("m1.test"),
    KeyAdd("m0.test", key_for("m0.test", "new").public.raw),
    KeyRetire("m0.test", b"\x01\x02\x03\x04", 3),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.TAG)
def test_every_payload_kind_conforms_to_the_event_schema(payload: Payload) -> None:
    event = signed(payload, key_for("m0.test", "issuer"), time_ms=TIME)
    conforms(event_to_json(event), DOC["components"]["schemas"]["Event"])


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        m0 = n.network["m0.test"]
        await n.submit(issue(m0, digest("a"), time_ms=TIME), issue(m0, digest("b"), time_ms=TIME))
        n.decide()
        await n.submit(signed(Revoke(digest("b"), 1), m0.issuer, time_ms=TIME))
        n.decide()
        await n.submit(by_governance(n.network, MemberRemove("m3.test"), time_ms=TIME))
        yield n


async def test_real_answers_conform_to_their_documented_schemas(node: ApiNode) -> None:
    pending = next(iter(node.application.mempool.take(1, 1 << 20))).event_id.hex()
    committed = issue(node.network["m0.test"], digest("a"), time_ms=TIME).id.hex()
    cases = [
        ("/v1/events/{id}", f"/v1/events/{pending}"),
        ("/v1/events/{id}", f"/v1/events/{committed}"),
        ("/v1/credentials/{digest}", f"/v1/credentials/{digest('a').hex()}"),
        ("/v1/credentials/{digest}", f"/v1/credentials/{digest('b').hex()}"),
        ("/v1/credentials/{digest}", f"/v1/credentials/{digest('nothing').hex()}"),
        ("/v1/proof/inclusion", "/v1/proof/inclusion?index=1"),
        ("/v1/proof/consistency", "/v1/proof/consistency?from=1"),
        ("/v1/blocks/{height}", "/v1/blocks/2"),
        ("/v1/entries", "/v1/entries"),
        ("/v1/members", "/v1/members"),
        ("/v1/status", "/v1/status"),
        ("/healthz", "/healthz"),
        ("/readyz", "/readyz"),
        ("/v1/members/{member}/did.json", "/v1/members/m0.test/did.json"),
        ("/.well-known/did.json", "/.well-known/did.json"),
        ("/v1/registry.json", "/v1/registry.json"),
        ("/v1/members/{member}/status", "/v1/members/m0.test/status"),
    ]
    for template, url in cases:
        response = await node.client.get(url)
        assert response.status == 200, url
        conforms(await response.json(), response_schema(template, "get", 200), url)


async def test_submission_answers_and_problems_conform(node: ApiNode) -> None:
    m0, m1 = node.network["m0.test"], node.network["m1.test"]
    accepted = await node.submit(issue(m0, digest("c"), time_ms=TIME), encoded=False)
    assert accepted.status == 202
    conforms(await accepted.json(), response_schema("/v1/events", "post", 202))
    batch = await node.submit(issue(m0, digest("d"), time_ms=TIME), issue(m1, digest("a"), time_ms=TIME))
    assert batch.status == 422
    conforms(
        await batch.json(content_type=None), response_schema("/v1/events", "post", 422, "application/problem+json")
    )
    for url, status in (("/v1/events/zz", 400), ("/v1/blocks/9", 404)):
        response = await node.client.get(url)
        assert response.status == status
        template = "/v1/events/{id}" if "events" in url else "/v1/blocks/{height}"
        conforms(
            await response.json(content_type=None), response_schema(template, "get", status, "application/problem+json")
        )


def test_documented_bounds_follow_the_records() -> None:
    revoke = DOC["components"]["schemas"]["Payload_revoke"]["properties"]["reason"]
    assert (revoke["minimum"], revoke["maximum"]) == (0, 255)
    with pytest.raises(AssertionError, match="256 > 255"):
        conforms(256, revoke)


def test_request_examples_conform_to_the_submission_schema() -> None:
    event = issue(make_member("m0.test"), digest("a"), time_ms=TIME)
    schema = DOC["components"]["schemas"]["Submission"]
    conforms({"event": event_to_json(event)}, schema)
    conforms({"events": [{"encoded": "AAAA"}, event_to_json(event)]}, schema)
    with pytest.raises(AssertionError):
        conforms({"event": {"encoded": "AAAA", "extra": 1}}, schema)


async def test_the_document_is_served(node: ApiNode) -> None:
    response = await node.client.get("/openapi.json")
    body = await response.json()
    assert body == DOC and body["openapi"] == "3.1.0"
