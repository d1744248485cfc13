"""A node with a bounded state history, over HTTP: bundles as of every kept height, 410 before it, and every read
that needs no old state (blocks, log proofs, entries, the latest bundle) as before."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from credledger.ledger import merkle
from credledger.ledger.bundle import Bundle, verify_bundle
from credledger.ledger.events import Revoke
from credledger.ledger.note import Checkpoint, SignedNote
from tests.apinode import ApiNode, api_node, problem_of
from tests.factories import T0, digest, issue, signed

TIME = T0 + 1000
HISTORY = 3
BLOCKS = 7


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path, state_history=HISTORY) as n:
        m0 = n.network["m0.test"]
        for height in range(1, BLOCKS + 1):
            events = [issue(m0, digest(f"c{height}"), time_ms=TIME)]
            if height == BLOCKS - 1:
                events.append(signed(Revoke(digest("c1"), 1), m0.issuer, time_ms=TIME))
            response = await n.submit(*events)
            assert response.status == 202, await response.text()
            n.decide()
        yield n


async def bundle_at(node: ApiNode, label: str, height: int | None = None) -> Bundle:
    query = "" if height is None else f"?height={height}"
    response = await node.client.get(f"/v1/credentials/{digest(label).hex()}{query}")
    assert response.status == 200, await response.text()
    return Bundle.from_json(await response.text())


async def test_bundles_as_of_every_kept_height_verify_with_the_state_of_that_height(node: ApiNode) -> None:
    genesis = node.network.genesis
    oldest = BLOCKS - HISTORY + 1
    for height in range(oldest, BLOCKS + 1):
        verdict = verify_bundle(await bundle_at(node, "c1", height), genesis)
        assert verdict.height == height
        assert verdict.status == ("revoked" if height >= BLOCKS - 1 else "valid")
        # A credential issued in the very block is there; one issued later is unknown as of this height.
        assert verify_bundle(await bundle_at(node, f"c{height}", height), genesis).status == "valid"
        assert verify_bundle(await bundle_at(node, f"c{height + 1}", height), genesis).status == "unknown"
    latest = verify_bundle(await bundle_at(node, "c1"), genesis)
    assert (latest.height, latest.status) == (BLOCKS, "revoked")


async def test_a_height_before_the_history_is_410_naming_the_oldest_kept(node: ApiNode) -> None:
    oldest = BLOCKS - HISTORY + 1
    for height in (1, oldest - 1):
        response = await node.client.get(f"/v1/credentials/{digest('c1').hex()}?height={height}")
        body = await problem_of(response, 410, "state-pruned", f"as of height {height} is no longer kept")
        assert body["oldest_height"] == oldest
        assert body["title"] == "Gone"


async def test_a_height_outside_the_chain_is_404_and_a_malformed_one_400(node: ApiNode) -> None:
    url = f"/v1/credentials/{digest('c1').hex()}"
    await problem_of(await node.client.get(f"{url}?height={BLOCKS + 1}"), 404, "unknown-block", "runs from height 1")
    await problem_of(await node.client.get(f"{url}?height=0"), 404, "unknown-block", "runs from height 1")
    await problem_of(await node.client.get(f"{url}?height=x"), 400, "malformed", "'height'")


async def test_blocks_certificates_and_log_proofs_of_pruned_heights_are_still_served(node: ApiNode) -> None:
    response = await node.client.get("/v1/blocks/1")
    assert response.status == 200
    block = await response.json()
    note = SignedNote.parse(block["certificate"])
    checkpoint = Checkpoint.parse(note.text)
    assert checkpoint.height == 1
    first_event = base64.b64decode(block["events"][0])
    response = await node.client.get(f"/v1/proof/inclusion?index=0&size={checkpoint.size}")
    assert response.status == 200
    proof = await response.json()
    hashes = [base64.b64decode(h) for h in proof["proof"]]
    merkle.verify_inclusion(merkle.leaf_hash(first_event), 0, checkpoint.size, hashes, checkpoint.root)
    response = await node.client.get(f"/v1/proof/consistency?from={checkpoint.size}")
    assert response.status == 200
    with node.application.store.snapshot() as snap:
        assert snap.oldest_state_height == BLOCKS - HISTORY + 1
