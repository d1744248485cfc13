"""The VC-API on a node with a real store: issue with a bearer token, verify with each check named, and change a
credential's status by its id; bad requests are problems and change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger.digest import credential_digest
from credledger.ledger.state import Status, get_credential
from credledger.ledger.vc.loader import CREDENTIALS_V2
from credledger.node.config import CredentialsConfig
from tests.apinode import ApiNode, api_node, problem_of
from tests.factories import make_network

M0 = "m0.test"
TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UNSIGNED = {
    "@context": [CREDENTIALS_V2],
    "id": "urn:uuid:0b7e6f5c-3d1a-4b8e-9f00-000000000001",
    "type": ["VerifiableCredential"],
    "credentialSubject": {"id": "did:example:learner"},
}


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    network = make_network(4)
    key = tmp_path / "issuer.key"
    key.write_text(network[M0].issuer.skey() + "\n")
    credentials = CredentialsConfig(issuer_key=str(key), api_token=TOKEN)
    async with api_node(tmp_path, network=network, clock=time.time, credentials=credentials) as n:
        n.decide()
        yield n


async def issue(node: ApiNode, credential: dict[str, Any] = UNSIGNED) -> dict[str, Any]:
    response = await node.client.post("/credentials/issue", json={"credential": credential}, headers=AUTH)
    assert response.status == 201, await response.text()
    signed: dict[str, Any] = (await response.json())["verifiableCredential"]
    return signed


async def verify(node: ApiNode, credential: dict[str, Any]) -> dict[str, Any]:
    response = await node.client.post("/credentials/verify", json={"verifiableCredential": credential})
    assert response.status == 200
    report: dict[str, Any] = await response.json()
    return report


def status(node: ApiNode, credential: dict[str, Any]) -> str | None:
    with node.application.store.snapshot() as snap:
        record = get_credential(snap.state_view(), credential_digest(json.dumps(credential).encode()))
    return None if record is None else record.status


async def test_issue_signs_registers_and_verify_names_every_check(node: ApiNode) -> None:
    signed = await issue(node)
    assert signed["issuer"] == f"did:web:{M0}" and signed["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    node.decide()
    assert status(node, signed) == Status.ACTIVE
    assert await verify(node, signed) == {
        "verified": True,
        "checks": ["registry", "proof", "status"],
        "warnings": [],
        "errors": [],
    }
    tampered = {**signed, "credentialSubject": {"id": "did:example:someone-else"}}
    report = await verify(node, tampered)
    assert report["verified"] is False
    assert [e["check"] for e in report["errors"]] == ["proof", "status"]


async def test_status_changes_by_credential_id_show_in_verification(node: ApiNode) -> None:
    signed = await issue(node)
    node.decide()
    for purpose, value, expected in (
        ("suspension", "1", Status.SUSPENDED),
        ("suspension", "0", Status.ACTIVE),
        ("revocation", "1", Status.REVOKED),
    ):
        body = {
            "credentialId": UNSIGNED["id"],
            "credentialStatus": [{"type": "BitstringStatusListCredential", "statusPurpose": purpose, "status": value}],
        }
        response = await node.client.post("/credentials/status", json=body, headers=AUTH)
        assert response.status == 200, await response.text()
        node.decide()
        assert status(node, signed) == expected
    report = await verify(node, signed)
    assert report["errors"] == [{"check": "status", "detail": "the credential is revoked"}]


async def test_a_non_member_issuer_fails_the_registry_check(node: ApiNode) -> None:
    signed = await issue(node)
    report = await verify(node, {**signed, "issuer": "did:web:stranger.example"})
    assert report["errors"][0]["check"] == "registry"


async def test_issuing_needs_the_token_and_refuses_bad_input_without_submitting(node: ApiNode) -> None:
    url = "/credentials/issue"
    await problem_of(await node.client.post(url, json={"credential": UNSIGNED}), 401, "unauthenticated", "Bearer")
    wrong = {"Authorization": "Bearer nope"}
    await problem_of(
        await node.client.post(url, json={"credential": UNSIGNED}, headers=wrong),
        401,
        "unauthenticated",
        "not this node's",
    )
    await problem_of(await node.client.post(url, data=b"{", headers=AUTH), 400, "malformed", "not JSON")
    await problem_of(
        await node.client.post(url, json={"credential": []}, headers=AUTH), 400, "malformed", "JSON object"
    )
    other = {**UNSIGNED, "issuer": "did:web:m1.test"}
    await problem_of(
        await node.client.post(url, json={"credential": other}, headers=AUTH), 400, "credential-refused", "issuer"
    )
    bad_ld = {**UNSIGNED, "credentialSubject": {"notDefined": 1}}
    await problem_of(
        await node.client.post(url, json={"credential": bad_ld}, headers=AUTH), 400, "credential-refused", "json-ld"
    )
    unknown = {"credentialId": "urn:uuid:unknown", "credentialStatus": [{"statusPurpose": "revocation", "status": "1"}]}
    await problem_of(
        await node.client.post("/credentials/status", json=unknown, headers=AUTH),
        404,
        "unknown-credential",
        "no credential",
    )
    final = {"credentialId": "x", "credentialStatus": [{"statusPurpose": "revocation", "status": "0"}]}
    await problem_of(await node.client.post("/credentials/status", json=final, headers=AUTH), 400, "malformed", "final")
    assert not node.application.mempool


async def test_a_node_without_a_token_or_key_answers_403(tmp_path: Path) -> None:
    async with api_node(tmp_path) as n:
        response = await n.client.post("/credentials/issue", json={"credential": UNSIGNED}, headers=AUTH)
        await problem_of(response, 403, "vc-api-disabled", "api_token")
    async with api_node(tmp_path / "b", credentials=CredentialsConfig(api_token=TOKEN)) as n:
        response = await n.client.post("/credentials/issue", json={"credential": UNSIGNED}, headers=AUTH)
        await problem_of(response, 403, "no-issuer-key", "issuer_key")


async def test_issue_options_credential_id_names_a_credential_without_an_id(node: ApiNode) -> None:
    anonymous = {k: v for k, v in UNSIGNED.items() if k != "id"}
    body = {"credential": anonymous, "options": {"credentialId": "urn:example:diploma-7"}}
    response = await node.client.post("/credentials/issue", json=body, headers=AUTH)
    assert response.status == 201, await response.text()
    signed = (await response.json())["verifiableCredential"]
    assert "id" not in signed
    node.decide()
    change = {
        "credentialId": "urn:example:diploma-7",
        "credentialStatus": [{"statusPurpose": "revocation", "status": "1"}],
    }
    response = await node.client.post("/credentials/status", json=change, headers=AUTH)
    assert response.status == 200, await response.text()
    node.decide()
    assert status(node, signed) == Status.REVOKED


async def test_issue_refuses_unknown_and_inapplicable_options_without_submitting(node: ApiNode) -> None:
    url = "/credentials/issue"
    for options, code, words in (
        ({"proofFormat": "jwt"}, "unknown-option", "'proofFormat' are not supported here (supported: credentialId"),
        ({"mandatoryPointers": ["/issuer"]}, "unsupported-option", "eddsa-rdfc-2022, which discloses the whole"),
        ({"credentialId": "urn:example:other"}, "malformed", "is not the credential's id"),
        ({"credentialId": 7}, "malformed", "options.credentialId must be a string"),
        ([], "malformed", "options must be a JSON object"),
    ):
        response = await node.client.post(url, json={"credential": UNSIGNED, "options": options}, headers=AUTH)
        await problem_of(response, 400, code, words)
    assert not node.application.mempool


async def test_verify_options_choose_the_checks_and_bind_the_proof_to_a_challenge(node: ApiNode) -> None:
    signed = await issue(node)
    node.decide()

    async def report(options: dict[str, Any], credential: dict[str, Any] = signed) -> dict[str, Any]:
        body = {"verifiableCredential": credential, "options": options}
        response = await node.client.post("/credentials/verify", json=body)
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer

    assert (await report({"checks": ["proof"]}))["checks"] == ["proof"]
    stranger = {**signed, "issuer": "did:web:stranger.example"}
    only_status = await report({"checks": ["status"]}, stranger)
    assert only_status["checks"] == [] and [e["check"] for e in only_status["errors"]] == ["status"]
    bound = await report({"challenge": "abc123", "domain": "verifier.example"})
    assert bound["verified"] is False and bound["checks"] == ["registry", "status"]
    assert bound["errors"] == [
        {"check": "proof", "detail": "the proof's challenge is none, not 'abc123' as options.challenge requires"}
    ]
    for options, code, words in (
        ({"returnCredential": True}, "unknown-option", "'returnCredential' are not supported here"),
        ({"checks": ["proof", "expiry"]}, "unknown-option", "'expiry' is not a check this node makes"),
        ({"checks": []}, "malformed", "non-empty list"),
        ({"challenge": ""}, "malformed", "options.challenge must be a string"),
    ):
        body = {"verifiableCredential": signed, "options": options}
        await problem_of(await node.client.post("/credentials/verify", json=body), 400, code, words)
