"""A member's node publishes its Bitstring Status Lists and every node serves them (DESIGN §13), on a real store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger.events import Issue, Revoke, Suspend
from credledger.ledger.genesis import Genesis, Params
from credledger.ledger.vc.did import did_document_resolver
from credledger.ledger.vc.multikey import did_key, did_key_verification_method
from credledger.ledger.vc.proof import resolve_did_key, verify_credential
from credledger.ledger.vc.statuslist import read_status_list_credential
from credledger.node.config import CredentialsConfig
from credledger.node.statuslists import StatusPublisher
from tests.apinode import ApiNode, api_node, problem_of
from tests.factories import ORIGIN, T0, Network, digest, key_for, make_member, signed

M0 = "m0.test"
URL = f"/v1/members/{M0}/status/0"
CONFIG = CredentialsConfig(status_validity_ms=86_400_000, status_refresh_ms=3_600_000)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        m0 = n.network[M0]
        time = n.application.now_ms()
        await n.submit(
            *(signed(Issue(digest(x), M0, None, (), 0, i), m0.issuer, time_ms=time) for x, i in (("a", 5), ("b", 6)))
        )
        n.decide()
        yield n


def publisher(node: ApiNode) -> StatusPublisher:
    return StatusPublisher(node.application, M0, node.network[M0].issuer, CONFIG)


async def fetch(node: ApiNode, purpose: str) -> tuple[dict[str, Any], list[int]]:
    response = await node.client.get(f"{URL}/{purpose}")
    assert response.status == 200, await response.text()
    document = json.loads(await response.read())
    return document, read_status_list_credential(document).bits.set_indices()


async def test_lists_are_published_after_a_change_and_served_signed_by_the_member(node: ApiNode) -> None:
    assert publisher(node).publish_due() == 2  # revocation and suspension: never published yet
    node.decide()
    document, revoked = await fetch(node, "revocation")
    did_document = await (await node.client.get(f"/v1/members/{M0}/did.json")).json()
    proof = verify_credential(document, did_document_resolver([did_document]))
    assert proof.verification_method == f"did:web:{M0}#{node.network[M0].issuer.key_id.hex()}"
    assert revoked == [] and document["id"] == f"https://{M0}{URL}/revocation"
    assert document["issuer"] == f"did:web:{M0}"

    m0 = node.network[M0]
    time = node.application.now_ms()
    await node.submit(
        signed(Revoke(digest("a"), 1), m0.issuer, time_ms=time),
        signed(Suspend(digest("b"), 6), m0.issuer, time_ms=time),
    )
    node.decide()  # the block that changes the bits ...
    assert publisher(node).publish_due() == 2
    node.decide()  # ... and the next one shows them
    assert (await fetch(node, "revocation"))[1] == [5]
    assert (await fetch(node, "suspension"))[1] == [6]
    assert publisher(node).publish_due() == 0


async def test_a_list_is_not_made_twice_while_one_is_pending_and_is_refreshed_when_old(node: ApiNode) -> None:
    watcher = publisher(node)
    assert watcher.publish_due() == 2
    assert watcher.publish_due() == 0  # pending
    node.decide()
    assert watcher.publish_due() == 0
    node.clock[0] += CONFIG.status_refresh_ms / 1000 + 1
    node.decide()
    assert watcher.publish_due() == 2


async def test_served_lists_carry_their_height_etag_and_answer_304(node: ApiNode) -> None:
    publisher(node).publish_due()
    node.decide()
    first = await node.client.get(f"{URL}/revocation")
    assert first.headers["Credledger-Height"] == "2"
    assert first.headers["Cache-Control"] == "public, max-age=10"
    again = await node.client.get(f"{URL}/revocation", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""


async def test_usage_counts_the_taken_entries_of_each_list(node: ApiNode) -> None:
    usage = await (await node.client.get(f"/v1/members/{M0}/status")).json()
    assert usage == {"member": M0, "height": 1, "entries": 131_072, "lists": [{"list": 0, "used": 2}]}
    await problem_of(await node.client.get("/v1/members/nobody.test/status"), 404, "unknown-member", "nobody")


async def test_unknown_or_malformed_list_requests_are_problems(node: ApiNode) -> None:
    await problem_of(await node.client.get(f"{URL}/revocation"), 404, "unknown-status-list", "published no revocation")
    await problem_of(await node.client.get(f"{URL}/refresh"), 400, "malformed", "status purpose must be one of")
    await problem_of(await node.client.get(f"/v1/members/{M0}/status/x/revocation"), 400, "malformed", "list number")
    await problem_of(
        await node.client.get(f"/v1/members/{M0}/status/70000/revocation"), 400, "malformed", "below 65536"
    )
    await problem_of(await node.client.get("/v1/members/Bad%20Id/status/0/revocation"), 400, "malformed", "must match")


async def test_a_plain_credential_makes_no_list(tmp_path: Path) -> None:
    async with api_node(tmp_path) as n:
        await n.submit(signed(Issue(digest("plain"), M0, None, ()), n.network[M0].issuer, time_ms=T0 + 5000))
        n.decide()
        assert publisher(n).publish_due() == 0


async def test_a_did_key_member_publishes_its_lists_signed_by_the_key_its_did_names(tmp_path: Path) -> None:
    members = [make_member(f"m{i}.test") for i in range(4)]
    m0 = members[0]
    did = did_key(m0.issuer.public.raw)
    adds = [replace(m.add_payload(), did=did) if m is m0 else m.add_payload() for m in members]
    network = Network(Genesis.of(ORIGIN, T0, adds, Params()), {m.id: m for m in members})
    async with api_node(tmp_path, network=network) as n:
        time = n.application.now_ms()
        await n.submit(signed(Issue(digest("a"), M0, None, (), 0, 5), m0.issuer, time_ms=time))
        n.decide()
        await n.submit(signed(Revoke(digest("a"), 1), m0.issuer, time_ms=n.application.now_ms()))
        n.decide()
        assert publisher(n).publish_due() == 2
        n.decide()
        document, revoked = await fetch(n, "revocation")
        assert revoked == [5] and document["issuer"] == did
        assert document["id"] == f"https://{M0}{URL}/revocation"
        proof = verify_credential(document, resolve_did_key)  # what any W3C verifier does with a did:key
        assert proof.verification_method == did_key_verification_method(m0.issuer.public.raw)


async def test_a_did_key_member_whose_node_holds_another_key_publishes_nothing(tmp_path: Path) -> None:
    members = [make_member(f"m{i}.test") for i in range(4)]
    m0 = members[0]
    did = did_key(key_for(M0, "the DID's own key").public.raw)
    adds = [replace(m.add_payload(), did=did) if m is m0 else m.add_payload() for m in members]
    network = Network(Genesis.of(ORIGIN, T0, adds, Params()), {m.id: m for m in members})
    async with api_node(tmp_path, network=network) as n:
        await n.submit(signed(Issue(digest("a"), M0, None, (), 0, 5), m0.issuer, time_ms=n.application.now_ms()))
        n.decide()
        publishing = publisher(n)
        assert publishing.publish_due() == 0 and publishing.publish_due() == 0
        assert not n.application.mempool
        response = await n.client.get(f"{URL}/revocation")
        assert response.status == 404
