"""`credledger issue CREDENTIAL --sign -o OUT` against a node on a real store: a standard signed credential whose
digest the ledger registers with its status entry, and precise refusals of credentials it cannot issue."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from credledger.cli.main import main
from credledger.ledger.catalogue import get_award
from credledger.ledger.digest import credential_digest
from credledger.ledger.events import Issue
from credledger.ledger.state import MemberRecord, get_credential, get_status_of
from credledger.ledger.vc.did import did_document_resolver
from credledger.ledger.vc.issuing import prepare_credential, sign_issued
from credledger.ledger.vc.loader import CREDENTIALS_V2, OB_V3P0
from credledger.ledger.vc.proof import verify_credential
from credledger.ledger.vc.statuslist import entry_index
from credledger.verifier.credential import verify_credential as verify_credential_report
from tests.apinode import ApiNode, api_node
from tests.catalogue import definition, publish
from tests.conftest import VECTORS
from tests.factories import key_for, signed

M0 = "m0.test"
#: The achievement the 1EdTech example badge awards.
TEAMWORK = "https://example.com/achievements/21st-century-skills/teamwork"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path, clock=time.time) as n:
        n.decide()
        yield n


def badge() -> dict[str, Any]:
    """The 1EdTech Open Badges 3.0 example, unsigned and without an issuer id (the ledger fills it in)."""
    document = json.loads((VECTORS / "ob-v3p0" / "signed.json").read_text())
    document.pop("proof")
    document.pop("credentialStatus", None)
    document["@context"] = [CREDENTIALS_V2, OB_V3P0]
    document["issuer"] = {k: v for k, v in document["issuer"].items() if k != "id"}
    document.pop("validFrom", None)
    return document


async def sign(node: ApiNode, tmp_path: Path, document: dict[str, Any], *extra: str) -> tuple[int, Path]:
    source, output, key = tmp_path / "unsigned.json", tmp_path / "signed.json", tmp_path / "issuer.key"
    source.write_text(json.dumps(document))
    key.write_text(node.network[M0].issuer.skey() + "\n")
    argv = ["issue", str(source), "--sign", "-o", str(output), "--key", str(key), "--node", node.url, *extra]
    return await asyncio.to_thread(main, argv), output


async def test_sign_fills_issuer_validity_and_status_signs_and_registers_the_signed_document(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = await sign(node, tmp_path, badge())
    assert code == 0, capsys.readouterr().err
    signed = json.loads(output.read_text())
    assert signed["issuer"]["id"] == f"did:web:{M0}" and signed["issuer"]["url"] == "https://www.imsglobal.org"
    assert "validFrom" in signed and signed["proof"]["cryptosuite"] == "eddsa-rdfc-2022"
    purposes = [entry["statusPurpose"] for entry in signed["credentialStatus"]]
    assert purposes == ["revocation", "suspension"]
    index = entry_index(signed["credentialStatus"][0])
    assert signed["credentialStatus"][0]["statusListCredential"] == f"https://{M0}/v1/members/{M0}/status/0/revocation"
    did_document = await (await node.client.get(f"/v1/members/{M0}/did.json")).json()
    verify_credential(signed, did_document_resolver([did_document]))

    node.decide()
    digest = credential_digest(output.read_bytes())
    assert digest.hex() in capsys.readouterr().out
    with node.application.store.snapshot() as snap:
        record, entry = get_credential(snap.state_view(), digest), get_status_of(snap.state_view(), digest)
    assert record is not None and record.issuer == M0
    assert entry is not None and (entry.list_number, entry.index) == (0, index)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(issuer={"id": "did:web:m1.test", "type": ["Profile"]}),
            "names 'did:web:m1.test' as issuer",
        ),
        (lambda d: d.update(proof={"type": "DataIntegrityProof"}), "proof-absent: the credential already carries"),
        (lambda d: d.update({"@context": [OB_V3P0]}), "context: a VC 2.0 credential's @context"),
        (lambda d: d.update(credentialSubject={"undefinedTerm": 1}), "json-ld"),
    ],
)
async def test_sign_refuses_what_it_cannot_issue_and_submits_nothing(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: Any, message: str
) -> None:
    document = badge()
    change(document)
    code, output = await sign(node, tmp_path, document)
    assert code == 2 and message in capsys.readouterr().err
    assert not output.exists() and not node.application.mempool


async def test_sign_refuses_a_credential_awarding_another_achievement_than_the_issue_names(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = await sign(node, tmp_path, badge(), "--achievement", "data-cert@1")
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"credentialSubject.achievement.id is {TEAMWORK!r}, but the issue names the achievement 'data-cert'" in err
    assert not output.exists() and not node.application.mempool


async def test_sign_registers_the_achievement_the_credential_awards(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await node.submit(publish(node.network[M0], definition(TEAMWORK, credits=5), time_ms=int(time.time() * 1000)))
    node.decide()
    code, output = await sign(node, tmp_path, badge(), "--achievement", f"{TEAMWORK}@1")
    assert code == 0, capsys.readouterr().err
    node.decide()
    with node.application.store.snapshot() as snap:
        awarded = get_award(snap.state_view(), credential_digest(output.read_bytes()))
    assert awarded is not None and (awarded.member, awarded.achievement, awarded.version) == (M0, TEAMWORK, 1)


async def test_sign_needs_an_output_and_json(node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "x.json"
    source.write_text("not json")
    key = tmp_path / "k"
    key.write_text(node.network[M0].issuer.skey())
    assert main(["issue", str(source), "--sign", "--key", str(key), "--node", node.url]) == 2
    assert "--sign needs --output OUT" in capsys.readouterr().err
    code = await asyncio.to_thread(
        main, ["issue", str(source), "--sign", "-o", str(tmp_path / "o"), "--key", str(key), "--node", node.url]
    )
    assert code == 2 and "this is not JSON" in capsys.readouterr().err


async def test_our_verifier_checks_a_signed_credentials_proof_against_the_key_that_registered_it(
    node: ApiNode, tmp_path: Path
) -> None:
    code, output = await sign(node, tmp_path, badge())
    assert code == 0
    node.decide()
    report = await asyncio.to_thread(verify_credential_report, output, genesis=node.network.genesis, nodes=[node.url])
    assert report.status == "valid"
    proof = next(c for c in report.checks if c.step == "credential-proof")
    assert proof.ok and f"did:web:{M0}#{node.network[M0].issuer.key_id.hex()}" in proof.detail

    # Signed under the member's DID with a key the ledger never registered for it, then registered by its real key.
    record = MemberRecord(M0, "M0", 1, b"\x01" * 32, True, 0, (), f"did:web:{M0}")
    stranger = key_for(M0, "never registered")
    prepared = prepare_credential(badge(), record, 0, 99, int(time.time() * 1000))
    forged = sign_issued(prepared, record, stranger, int(time.time() * 1000))
    forged_path = tmp_path / "forged.json"
    forged_path.write_text(json.dumps(forged))
    await node.submit(
        signed(
            Issue(credential_digest(forged_path.read_bytes()), M0, None, ()),
            node.network[M0].issuer,
            time_ms=int(time.time() * 1000),
        )
    )
    node.decide()
    report = await asyncio.to_thread(
        verify_credential_report, forged_path, genesis=node.network.genesis, nodes=[node.url]
    )
    assert report.status == "invalid-proof" and not report.ok
    failed = [c for c in report.checks if not c.ok]
    assert [c.step for c in failed] == ["credential-proof"]
    assert failed[0].detail.startswith("verification-method:") and stranger.key_id.hex() in failed[0].detail
