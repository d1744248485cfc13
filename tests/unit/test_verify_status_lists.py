"""`verify_credential` holds a signed credential's status lists to the certified state, against a node with a real
store: lists that agree pass, an entry other than the one registered is refused, a list not published yet is said
to be missing without changing the ledger's answer, and a bundle kept offline checks only the ledger's answer."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger.digest import credential_digest
from credledger.ledger.events import Issue
from credledger.ledger.genesis import write_genesis
from credledger.ledger.state import get_member
from credledger.ledger.vc.issuing import prepare_credential, sign_issued
from credledger.ledger.vc.loader import CREDENTIALS_V2
from credledger.node.config import CredentialsConfig
from credledger.node.statuslists import StatusPublisher
from credledger.verifier.client import NodeClient
from credledger.verifier.credential import Report, verify_credential
from credledger.verifier.statuslists import INVALID_STATUS_LIST, STATUS_LIST_STEP
from tests.apinode import ApiNode, api_node
from tests.factories import signed

M0 = "m0.test"
CONFIG = CredentialsConfig(status_validity_ms=86_400_000, status_refresh_ms=3_600_000)
UNSIGNED = {
    "@context": [CREDENTIALS_V2],
    "id": "urn:uuid:5d1c0a4e-0000-4000-8000-000000000001",
    "type": ["VerifiableCredential"],
    "credentialSubject": {"id": "did:example:learner"},
}


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path, clock=time.time) as n:
        write_genesis(n.network.genesis, tmp_path / "genesis.json")
        yield n


def issue_signed(node: ApiNode, path: Path, *, index: int, registered: int | None = None) -> dict[str, Any]:
    """A credential signed by m0 with status entries at `index`, registered at `registered` (default: the same)."""
    m0 = node.network[M0]
    now = node.application.now_ms()
    with node.application.store.snapshot() as snap:
        member = get_member(snap.state_view(), M0)
    assert member is not None
    document = sign_issued(prepare_credential(UNSIGNED, member, 0, index, now), member, m0.issuer, now)
    path.write_text(json.dumps(document))
    entry = index if registered is None else registered
    issue = Issue(credential_digest(path.read_bytes()), M0, None, (), 0, entry)
    node.decide([signed(issue, m0.issuer, time_ms=now)])
    return document


def list_checks(report: Report) -> list[tuple[bool, str]]:
    return [(c.ok, c.detail) for c in report.checks if c.step == STATUS_LIST_STEP]


async def verify(node: ApiNode, tmp_path: Path, credential: Path, **options: Any) -> Report:
    nodes = options.pop("nodes", [node.url])
    genesis = tmp_path / "genesis.json"
    return await asyncio.to_thread(verify_credential, credential, genesis=genesis, nodes=nodes, **options)


async def test_lists_that_agree_with_the_state_pass_and_a_missing_one_leaves_the_answer_alone(
    node: ApiNode, tmp_path: Path
) -> None:
    credential = tmp_path / "signed.json"
    issue_signed(node, credential, index=77)
    missing = await verify(node, tmp_path, credential)
    assert missing.status == "valid"
    assert [ok for ok, _ in list_checks(missing)] == [False, False]
    assert "could not fetch" in list_checks(missing)[0][1] and "published no revocation" in list_checks(missing)[0][1]

    StatusPublisher(node.application, M0, node.network[M0].issuer, CONFIG).publish_due()
    node.decide()
    report = await verify(node, tmp_path, credential)
    assert report.status == "valid" and report.ok
    checks = list_checks(report)
    assert [ok for ok, _ in checks] == [True, True]
    assert "shows entry 77 as not revoked, as the certified state says" in checks[0][1]
    assert "the issuer key the ledger proves" in checks[0][1]
    assert list_checks(await verify(node, tmp_path, credential, check_status_lists=False)) == []

    kept = tmp_path / "kept.json"
    bundle = await asyncio.to_thread(NodeClient(node.url).credential, credential_digest(credential.read_bytes()))
    kept.write_text(json.dumps(bundle))
    offline = await verify(node, tmp_path, credential, nodes=[], bundle=kept)
    assert offline.status == "valid"
    assert [ok for ok, _ in list_checks(offline)] == [True, True]
    assert "only the ledger's answer was checked" in list_checks(offline)[0][1]


async def test_an_entry_other_than_the_one_the_issue_registered_is_refused(node: ApiNode, tmp_path: Path) -> None:
    credential = tmp_path / "signed.json"
    issue_signed(node, credential, index=12, registered=13)
    report = await verify(node, tmp_path, credential)
    assert report.status == INVALID_STATUS_LIST and not report.ok
    (ok, detail), _ = list_checks(report)
    assert not ok and "points at" in detail and "index 12, but the issue event registered" in detail
    assert detail.endswith("index 13")
