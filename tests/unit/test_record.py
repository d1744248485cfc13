"""The learner's record: many proofs under one checkpoint, served by a real node and verified offline in one step."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger.bundle import ProofError
from credledger.ledger.errors import DecodeError
from credledger.ledger.events import Revoke
from credledger.ledger.record import Record, verify_record
from credledger.ledger.storage.bundles import build_record
from tests.apinode import ApiNode, api_node, problem_of
from tests.catalogue import award, definition, publish
from tests.factories import T0, digest, issue, make_network, signed

TIME = T0 + 1000
A, B = "m0.test", "m1.test"
SKILL = "https://example.org/rsd/statistics"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        m0, m1 = n.network[A], n.network[B]
        alignment = [{"targetName": "Statistics", "targetUrl": SKILL}]
        await commit(
            n,
            publish(m0, definition("stats", credits=7.5, level=6, alignment=alignment), time_ms=TIME),
            publish(m1, definition("python", credits=5, level=5), time_ms=TIME),
            publish(m1, definition("law", credits=10, system="CATS"), time_ms=TIME),
        )
        await commit(
            n,
            award(m0, digest("stats"), "stats", time_ms=TIME),
            award(m1, digest("python"), "python", time_ms=TIME),
            award(m1, digest("law"), "law", time_ms=TIME),
            issue(m0, digest("plain"), time_ms=TIME),
        )
        await commit(n, signed(Revoke(digest("law"), 4), m1.issuer, time_ms=TIME))
        yield n


async def commit(node: ApiNode, *events: Any) -> None:
    response = await node.submit(*events)
    assert response.status == 202, await response.text()
    node.decide()


async def fetch(node: ApiNode, *labels: str) -> dict[str, Any]:
    response = await node.client.post("/v1/record", json={"digests": [digest(x).hex() for x in labels]})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_a_record_verifies_in_one_step_and_sums_up_the_valid_credentials(node: ApiNode) -> None:
    data = await fetch(node, "stats", "python", "law", "plain", "never")
    verdict = verify_record(Record.from_json(json.dumps(data)), node.network.genesis)
    assert [r.verdict.status for r in verdict.results] == ["valid", "valid", "revoked", "valid", "unknown"]
    assert verdict.credits() == {"ECTS": 1250}  # the revoked CATS credential counts for nothing
    assert verdict.levels() == ["EQF 5", "EQF 6"]
    assert verdict.skills() == [SKILL]
    out = verdict.to_json()
    assert out["credits"] == {"ECTS": "12.5"}
    assert out["credentials"][0]["achievement"] == {"member": A, "id": "stats", "version": 1}
    assert out["credentials"][3]["achievement"] is None
    assert verdict.height == 3


async def test_a_record_shares_one_checkpoint_for_all_its_credentials(node: ApiNode) -> None:
    data = await fetch(node, "stats", "python")
    assert set(data) == {"format", "origin", "genesis", "checkpoint", "header", "validators", "credentials"}
    assert all("checkpoint" not in item for item in data["credentials"])


async def test_the_record_served_is_its_compact_json(node: ApiNode) -> None:
    labels = ("stats", "python", "law", "plain", "never")
    response = await node.client.post("/v1/record", json={"digests": [digest(x).hex() for x in labels]})
    with node.application.store.snapshot() as snap:
        genesis = node.network.genesis
        record = build_record(snap, [digest(x) for x in labels], genesis.hash(), genesis.origin)
    assert await response.text() == json.dumps(record.to_json(), separators=(",", ":"))


async def test_a_tampered_achievement_proof_names_the_credential(node: ApiNode) -> None:
    data = await fetch(node, "stats", "python")
    value = bytearray(base64.b64decode(data["credentials"][1]["achievement"]["value"]))
    value[-1] ^= 1
    data["credentials"][1]["achievement"]["value"] = base64.b64encode(bytes(value)).decode()
    with pytest.raises(ProofError, match=r"credential 1 \([0-9a-f]{64}\)") as info:
        verify_record(Record.from_json(data), node.network.genesis)
    assert info.value.step == "achievement"


async def test_a_record_from_another_network_is_refused(node: ApiNode) -> None:
    data = await fetch(node, "stats")
    with pytest.raises(ProofError) as info:
        verify_record(Record.from_json(data), make_network(4, origin="credledger.test/other").genesis)
    assert info.value.step == "network"


def test_a_record_must_hold_credentials() -> None:
    with pytest.raises(DecodeError, match=r"record.credentials: expected a list of 1..1000"):
        Record.from_json({"format": "credledger-record/v1", "credentials": []})
    with pytest.raises(DecodeError, match="format"):
        Record.from_json({"format": "credledger-proof/v1"})


async def test_bad_record_requests_are_400(node: ApiNode) -> None:
    await problem_of(await node.client.post("/v1/record", json={"digests": []}), 400, "malformed", "digests")
    await problem_of(await node.client.post("/v1/record", json={"digests": ["zz"]}), 400, "malformed", "digests[0]")
    twice = [digest("a").hex()] * 2
    await problem_of(await node.client.post("/v1/record", json={"digests": twice}), 400, "malformed", "twice")
    await problem_of(await node.client.post("/v1/record", data=b"{"), 400, "malformed", "not JSON")
