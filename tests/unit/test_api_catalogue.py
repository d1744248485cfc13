"""The catalogue reads against a real store and HTTP server: filters, pages, versions and state proofs."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger import codec, smt
from credledger.ledger.block import decode_header
from credledger.ledger.bundle import Bundle
from credledger.ledger.catalogue import AchievementRecord, achievement_key, achievement_version_key
from tests.apinode import ApiNode, api_node, problem_of
from tests.catalogue import definition, publish
from tests.factories import T0

TIME = T0 + 1000
A, B = "m0.test", "m1.test"
SKILL = "https://example.org/rsd/data-analysis"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        m0, m1 = n.network[A], n.network[B]
        alignment = [{"targetName": "Data analysis", "targetUrl": SKILL}]
        await commit(
            n,
            publish(m0, definition("stats", credits=5, level=6, field="Statistics", alignment=alignment), time_ms=TIME),
            publish(m0, definition("intro", credits=5, level=5), time_ms=TIME),
            publish(m1, definition("diploma", kind="Diploma", level=7), time_ms=TIME),
        )
        await commit(n, publish(m0, definition("stats", credits=6, level=6, field="Statistics"), time_ms=TIME + 1))
        yield n


async def commit(node: ApiNode, *events: Any) -> None:
    response = await node.submit(*events)
    assert response.status == 202, await response.text()
    node.decide()


async def ids(node: ApiNode, query: str) -> list[str]:
    response = await node.client.get("/v1/achievements" + query)
    assert response.status == 200, await response.text()
    return [f"{a['member']}/{a['id']}" for a in (await response.json())["achievements"]]


async def test_the_catalogue_lists_current_versions_by_member_and_id(node: ApiNode) -> None:
    body = await (await node.client.get("/v1/achievements")).json()
    assert [(a["member"], a["id"], a["version"]) for a in body["achievements"]] == [
        (A, "intro", 1),
        (A, "stats", 2),
        (B, "diploma", 1),
    ]
    assert body["achievements"][1]["definition"]["creditsAvailable"] == 6
    assert body["next_after"] is None


async def test_the_catalogue_filters_by_member_type_level_skill_and_text(node: ApiNode) -> None:
    assert await ids(node, f"?member={B}") == [f"{B}/diploma"]
    assert await ids(node, "?type=Diploma") == [f"{B}/diploma"]
    assert await ids(node, "?level=6&framework=EQF") == [f"{A}/stats"]
    assert await ids(node, "?text=statistics") == [f"{A}/stats"]
    assert await ids(node, "?skill=data%20analysis") == []  # version 2 of stats dropped its alignment
    assert await ids(node, "?type=Badge") == []


async def test_the_catalogue_pages_with_a_cursor(node: ApiNode) -> None:
    first = await (await node.client.get("/v1/achievements?limit=2")).json()
    assert [a["id"] for a in first["achievements"]] == ["intro", "stats"]
    assert first["next_after"] == f"{A}/stats"
    assert await ids(node, f"?limit=2&after={first['next_after']}") == [f"{B}/diploma"]


async def test_bad_catalogue_queries_are_400(node: ApiNode) -> None:
    await problem_of(await node.client.get("/v1/achievements?limit=0"), 400, "malformed", "limit")
    await problem_of(await node.client.get("/v1/achievements?colour=red"), 400, "malformed", "colour")
    await problem_of(await node.client.get("/v1/achievements?after=nocursor"), 400, "malformed", "MEMBER/ID")
    await problem_of(await node.client.get("/v1/achievements?level=six"), 400, "malformed", "level")


async def test_one_achievement_comes_with_every_version_and_proofs_of_them(node: ApiNode) -> None:
    body = await (await node.client.get(f"/v1/achievements/{A}/stats")).json()
    assert body["achievement"]["version"] == 2
    assert [v["definition"]["creditsAvailable"] for v in body["versions"]] == [5, 6]
    proof = body["proof"]
    assert proof["format"] == "credledger-achievement-proof/v1"
    header = decode_header(base64.b64decode(proof["header"]))
    # The same state-entry form as a credential bundle's; each entry proves against the certified state root.
    keys = [achievement_key(A, "stats"), achievement_version_key(A, "stats", 1), achievement_version_key(A, "stats", 2)]
    entries = [proof["current"], *proof["versions"]]
    for key, raw in zip(keys, entries, strict=True):
        entry = Bundle.from_json({**_bundle_shell(proof), "credential": raw}).credential
        smt.verify_proof(header.state_root, key, entry.value, entry.proof)
        assert entry.value is not None
        assert codec.decode(AchievementRecord, entry.value).id == "stats"


async def test_an_unknown_achievement_is_404(node: ApiNode) -> None:
    await problem_of(await node.client.get(f"/v1/achievements/{A}/nope"), 404, "not-found", "nope")


def _bundle_shell(proof: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "credledger-proof/v1",
        "origin": proof["origin"],
        "genesis": proof["genesis"],
        "digest": "00" * 32,
        "checkpoint": proof["checkpoint"],
        "header": proof["header"],
        "validators": proof["validators"],
        "events": [],
        "issuer": None,
    }
