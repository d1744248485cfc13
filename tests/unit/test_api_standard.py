"""DID documents and the issuer registry a node serves to standard verifiers (DESIGN §13), on a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from credledger.ledger.events import KeyAdd, KeyRetire, MemberAdd, MemberRemove
from credledger.ledger.vc.did import key_in_did_document
from credledger.ledger.vc.errors import ProofError
from credledger.ledger.vc.multikey import encode_public_key
from credledger.node.api.standard import canonical_json
from tests.apinode import ApiNode, api_node, problem_of
from tests.factories import T0, by_governance, key_for, make_member, signed

TIME = T0 + 1000
M0 = "m0.test"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        n.decide()
        yield n


def methods(document: dict[str, object]) -> list[str]:
    return [m["id"] for m in document["verificationMethod"]]  # type: ignore[attr-defined]


async def test_member_did_document_lists_its_issuer_key_as_a_multikey_assertion_method(node: ApiNode) -> None:
    m0 = node.network[M0]
    response = await node.client.get(f"/v1/members/{M0}/did.json")
    assert response.status == 200
    document = await response.json()
    vm = f"did:web:{M0}#{m0.issuer.key_id.hex()}"
    assert document == {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": f"did:web:{M0}",
        "verificationMethod": [
            {
                "id": vm,
                "type": "Multikey",
                "controller": f"did:web:{M0}",
                "publicKeyMultibase": encode_public_key(m0.issuer.public.raw),
            }
        ],
        "assertionMethod": [vm],
    }
    assert key_in_did_document(document, vm) == m0.issuer.public.raw
    assert await response.read() == canonical_json(document)


async def test_retired_keys_stay_listed_and_compromised_keys_drop_out(node: ApiNode) -> None:
    m0 = node.network[M0]
    second, third = key_for(M0, "second"), key_for(M0, "third")
    await node.submit(
        signed(KeyAdd(M0, second.public.raw), m0.issuer, time_ms=TIME),
        signed(KeyAdd(M0, third.public.raw), m0.issuer, time_ms=TIME),
    )
    node.decide()
    await node.submit(
        signed(KeyRetire(M0, m0.issuer.key_id, None), second, time_ms=TIME),
        by_governance(node.network, KeyRetire(M0, third.key_id, 1), time_ms=TIME),
    )
    node.decide()
    document = await (await node.client.get(f"/v1/members/{M0}/did.json")).json()
    did = f"did:web:{M0}"
    assert methods(document) == [f"{did}#{m0.issuer.key_id.hex()}", f"{did}#{second.key_id.hex()}"]
    with pytest.raises(ProofError, match="not an assertion method"):
        key_in_did_document(document, f"{did}#{third.key_id.hex()}")


async def test_the_well_known_document_is_the_serving_institutions(node: ApiNode) -> None:
    own = await (await node.client.get("/.well-known/did.json")).read()
    member = await (await node.client.get(f"/v1/members/{M0}/did.json")).read()
    assert own == member


async def test_unchanged_documents_answer_conditional_requests_with_304(node: ApiNode) -> None:
    for url in (f"/v1/members/{M0}/did.json", "/.well-known/did.json", "/v1/registry.json"):
        first = await node.client.get(url)
        etag = first.headers["ETag"]
        assert first.headers["Cache-Control"] == "public, max-age=60"
        again = await node.client.get(url, headers={"If-None-Match": etag})
        assert (again.status, await again.read(), again.headers["ETag"]) == (304, b"", etag)
        stale = await node.client.get(url, headers={"If-None-Match": '"0123"'})
        assert stale.status == 200 and await stale.read() == await first.read()


async def test_unknown_or_malformed_member_ids_are_problems(node: ApiNode) -> None:
    await problem_of(await node.client.get("/v1/members/nobody.test/did.json"), 404, "unknown-member", "nobody.test")
    await problem_of(await node.client.get("/v1/members/Bad%20Id/did.json"), 400, "malformed", "must match")


async def test_registry_lists_exactly_the_active_members_by_did(node: ApiNode) -> None:
    newcomer = make_member("new.test", power=0)
    payload = MemberAdd(newcomer.id, "New College", 0, newcomer.node.public.raw, (newcomer.issuer.public.raw,))
    await node.submit(
        by_governance(node.network, payload, time_ms=TIME),
        by_governance(node.network, MemberRemove("m3.test"), time_ms=TIME),
    )
    node.decide()
    registry = await (await node.client.get("/v1/registry.json")).json()
    assert registry["meta"]["type"] == "dcc-legacy"
    assert registry["registry"] == {
        "did:web:m0.test": {"name": "M0.TEST", "url": "https://m0.test", "id": "m0.test"},
        "did:web:m1.test": {"name": "M1.TEST", "url": "https://m1.test", "id": "m1.test"},
        "did:web:m2.test": {"name": "M2.TEST", "url": "https://m2.test", "id": "m2.test"},
        "did:web:new.test": {"name": "New College", "url": "https://new.test", "id": "new.test"},
    }
    # A removed member's document stays, so what it signed can still be checked; its keys are retired.
    removed = await node.client.get("/v1/members/m3.test/did.json")
    assert removed.status == 200 and len(methods(await removed.json())) == 1
