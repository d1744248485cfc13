"""Verifying a credential: the Python API, `credledger verify` and `credledger proof`, against real nodes on
127.0.0.1 and fake ones that lie."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from credledger.cli.main import main as run_cli
from credledger.cli.verify import exit_code, render
from credledger.ledger import merkle, tlogproof
from credledger.ledger.block import Header
from credledger.ledger.bundle import Bundle
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.events import Revoke, Suspend
from credledger.ledger.genesis import write_genesis
from credledger.verifier.client import NodeClient
from credledger.verifier.credential import UNVERIFIED, digest_of, verify_credential
from tests.apinode import ApiNode, api_node
from tests.factories import digest, issue, make_network, signed
from tests.forge import bundle_app, certify_header, flip_byte, serve

PROJECT = Path(__file__).resolve().parents[2]
BADGE: dict[str, Any] = {
    "@context": ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
    "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "issuer": {"id": "https://uni-a.example", "type": ["Profile"], "name": "University A"},
    "validFrom": "2026-01-01T00:00:00Z",
    "credentialSubject": {"type": ["AchievementSubject"], "achievement": {"name": "Ancient Greek, level 2"}},
}


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    # Real time: the freshness of a verdict is judged against this machine's clock.
    async with api_node(tmp_path, clock=time.time) as n:
        write_genesis(n.network.genesis, tmp_path / "genesis.json")
        yield n


@pytest.fixture
def badge(tmp_path: Path) -> Path:
    path = tmp_path / "badge.json"
    path.write_text(json.dumps(BADGE, indent=2))
    return path


def issue_badge(node: ApiNode, badge: Path) -> bytes:
    credential = digest_of(badge)
    node.decide([issue(node.network["m0.test"], credential, time_ms=node.application.now_ms())])
    return credential


def free_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(run_cli, argv)


def test_digest_of_a_json_credential_is_its_jcs_hash_and_of_anything_else_its_bytes(tmp_path: Path) -> None:
    reordered = tmp_path / "b.json"
    reordered.write_text(json.dumps(dict(reversed(list(BADGE.items())))))
    assert digest_of(reordered) == hashlib.sha256(rfc8785.dumps(BADGE)).digest()
    pdf = tmp_path / "transcript.pdf"
    pdf.write_bytes(b"%PDF-1.7 not json")
    assert digest_of(pdf) == hashlib.sha256(b"%PDF-1.7 not json").digest()
    assert digest_of(digest("x").hex().upper()) == digest("x")


async def test_the_readme_example_runs_as_written(
    node: ApiNode, badge: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    issue_badge(node, badge)
    text = (PROJECT / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", text, re.S)
    assert example is not None, "README.md has no Python example"
    code = example.group(1).replace("http://127.0.0.1:8701", node.url).replace("devnet/genesis.json", "genesis.json")
    monkeypatch.chdir(tmp_path)
    await asyncio.to_thread(exec, compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.splitlines()[0] == "valid"


async def test_valid_revoked_suspended_expired_and_unknown_from_a_node(node: ApiNode, tmp_path: Path) -> None:
    m0 = node.network["m0.test"]
    now = node.application.now_ms()
    node.decide(
        [
            issue(m0, digest("ok"), time_ms=now),
            issue(m0, digest("gone"), time_ms=now),
            issue(m0, digest("held"), time_ms=now),
            issue(m0, digest("old"), time_ms=now, expires_ms=now + 1),
        ]
    )
    node.decide(
        [
            signed(Revoke(digest("gone"), 4), m0.issuer, time_ms=now),
            signed(Suspend(digest("held"), 6), m0.issuer, time_ms=now),
        ]
    )
    genesis = tmp_path / "genesis.json"
    expected = {"ok": "valid", "gone": "revoked", "held": "suspended", "old": "expired", "never": "unknown"}
    for label, status in expected.items():
        report = await asyncio.to_thread(verify_credential, digest(label).hex(), genesis=genesis, nodes=[node.url])
        assert report.status == status, label
        assert report.verified and not report.stale and not report.faults
        assert report.source == node.url
        assert report.checks[-1].step == "freshness" and all(c.ok for c in report.checks)
    ok = await asyncio.to_thread(verify_credential, digest("ok").hex(), genesis=genesis, nodes=[node.url])
    assert ok.ok and ok.issuer == "m0.test" and ok.issuer_name == "M0.TEST"
    assert ok.issued_ms is not None and ok.as_of_ms is not None and ok.as_of_ms >= ok.issued_ms
    assert any("signed by m0.test" in c.detail for c in ok.checks)


async def test_nodes_are_asked_in_turn_and_a_lying_one_is_reported(node: ApiNode, badge: Path, tmp_path: Path) -> None:
    credential = issue_badge(node, badge)
    honest = await asyncio.to_thread(lambda: node_bundle(node, credential))
    tampered = flip_byte(honest, "events.0.event")
    other = flip_byte(honest, "credential.proof.siblings.0") if honest["credential"]["proof"]["siblings"] else tampered
    lies = {credential.hex(): tampered}
    async with serve(bundle_app(lies)) as liar, serve(bundle_app({credential.hex(): other})) as liar2:
        nodes = [free_port_url(), liar, liar2, node.url]
        report = await asyncio.to_thread(
            verify_credential, badge, genesis=tmp_path / "genesis.json", nodes=nodes, timeout=2
        )
    assert report.status == "valid" and report.ok and report.source == node.url
    kinds = [(f.source, f.kind) for f in report.faults]
    assert kinds == [(nodes[0], "unreachable"), (liar, "invalid-proof"), (liar2, "invalid-proof")]
    assert [f.source for f in report.misbehaving] == [liar, liar2]
    assert report.misbehaving[0].step == "inclusion"


def node_bundle(node: ApiNode, credential: bytes) -> dict[str, Any]:
    return NodeClient(node.url).credential(credential)


async def test_no_verifying_source_is_unverified_not_a_verdict(node: ApiNode, badge: Path, tmp_path: Path) -> None:
    credential = issue_badge(node, badge)
    wrong = await asyncio.to_thread(node_bundle, node, digest("another"))
    async with serve(bundle_app({credential.hex(): wrong})) as liar:
        report = await asyncio.to_thread(verify_credential, badge, genesis=tmp_path / "genesis.json", nodes=[liar])
    assert report.status == UNVERIFIED and not report.verified and not report.ok
    assert report.misbehaving[0].step == "digest"
    assert report.checks[0].ok is False and "not " + credential.hex() in report.checks[0].detail


async def test_a_stale_checkpoint_is_reported_unless_the_status_is_final(node: ApiNode, tmp_path: Path) -> None:
    m0 = node.network["m0.test"]
    now = node.application.now_ms()
    node.decide([issue(m0, digest("a"), time_ms=now), issue(m0, digest("b"), time_ms=now)])
    node.decide([signed(Revoke(digest("b"), 0), m0.issuer, time_ms=now)])
    later = now + 3_600_000
    genesis = tmp_path / "genesis.json"
    stale = await asyncio.to_thread(
        verify_credential, digest("a").hex(), genesis=genesis, nodes=[node.url], now_ms=later
    )
    assert stale.status == "valid" and stale.stale and not stale.ok
    assert stale.checks[-1].step == "freshness" and not stale.checks[-1].ok
    # The command says what to do about it: a fresh proof from a node, or a --max-age above this proof's age.
    advice = render(stale).splitlines()[2]
    assert advice.startswith("  what to do  fetch a fresh proof from a node (--node URL)")
    assert advice.endswith("or accept this older proof with --max-age 2h")
    fine = await asyncio.to_thread(
        verify_credential,
        digest("a").hex(),
        genesis=genesis,
        nodes=[node.url],
        now_ms=later,
        max_age=timedelta(hours=2),
    )
    assert fine.ok
    revoked = await asyncio.to_thread(
        verify_credential, digest("b").hex(), genesis=genesis, nodes=[node.url], now_ms=later
    )
    assert revoked.status == "revoked" and not revoked.stale
    # The command's exit codes: a stale answer could not be verified as current; a revoked one is final.
    assert (exit_code(stale), exit_code(fine), exit_code(revoked)) == (3, 0, 1)


async def test_cli_verify_exit_codes_text_and_json(
    node: ApiNode, badge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m0 = node.network["m0.test"]
    issue_badge(node, badge)
    node.decide([issue(m0, digest("gone"), time_ms=node.application.now_ms())])
    node.decide([signed(Revoke(digest("gone"), 1), m0.issuer, time_ms=node.application.now_ms())])
    genesis = str(tmp_path / "genesis.json")
    assert await cli("verify", str(badge), "--genesis", genesis, "--node", node.url) == 0
    out = capsys.readouterr().out
    assert out.startswith("VALID") and "issuer      M0.TEST (m0.test)" in out and "ok     freshness" in out
    assert await cli("verify", digest("gone").hex(), "--genesis", genesis, "--node", node.url, "--json") == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["status"] == "revoked" and answer["reason"] == 1 and answer["checks"]
    assert answer["reason_name"] == "key-compromise"
    assert await cli("verify", digest("gone").hex(), "--genesis", genesis, "--node", node.url) == 1
    assert re.search(r"^  revoked +\S+, reason key-compromise$", capsys.readouterr().out, re.MULTILINE)
    assert await cli("verify", digest("never").hex(), "--genesis", genesis, "--node", node.url) == 1
    assert capsys.readouterr().out.startswith("UNKNOWN")
    assert await cli("verify", str(badge), "--genesis", genesis, "--node", free_port_url(), "--timeout", "2") == 3
    assert capsys.readouterr().out.startswith("COULD NOT VERIFY")
    missing = str(tmp_path / "no-receipt.json")
    assert await cli("verify", str(badge), "--genesis", genesis, "--bundle", missing) == 3
    assert "no-receipt.json: unreadable" in capsys.readouterr().out
    assert await cli("verify", str(badge), "--genesis", genesis, "--node", node.url, "--max-age", "soon") == 2
    assert "--max-age" in capsys.readouterr().err
    assert await cli("verify", str(badge), "--genesis", str(tmp_path / "none.json"), "--node", node.url) == 2
    assert "genesis file" in capsys.readouterr().err


async def test_proof_saves_a_receipt_that_verifies_offline_and_a_c2sp_tlog_proof(
    node: ApiNode, badge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credential = issue_badge(node, badge)
    receipt = tmp_path / "receipt.json"
    genesis = str(tmp_path / "genesis.json")
    assert await cli("proof", str(badge), "--node", node.url, "-o", str(receipt), "--genesis", genesis) == 0
    assert "receipt.tlog-proof" in capsys.readouterr().out
    # Offline: no node at all, only the kept bundle.
    assert await cli("verify", str(badge), "--genesis", genesis, "--bundle", str(receipt), "--max-age", "1d") == 0
    assert f"proof from  {receipt}" in capsys.readouterr().out
    assert Bundle.from_json(receipt.read_bytes()).digest == credential

    text = (tmp_path / "receipt.tlog-proof").read_text()
    lines = text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1" and lines[1].startswith("extra ") and lines[2] == "index 0"
    proof = tlogproof.TlogProof.parse(text)
    assert proof.format() == text
    checkpoint = tlogproof.verify(proof, node.network.genesis.validator_set())
    assert checkpoint.size == 1
    assert await cli("proof", str(badge), "--node", node.url, "-o", str(receipt)) == 2  # never clobbers
    assert "exists already" in capsys.readouterr().err
    unknown = tmp_path / "unknown.json"
    assert await cli("proof", digest("never").hex(), "--node", node.url, "-o", str(unknown)) == 1
    assert unknown.exists() and not (tmp_path / "unknown.tlog-proof").exists()


async def test_proof_with_genesis_refuses_to_save_a_bundle_that_fails(
    node: ApiNode, badge: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credential = issue_badge(node, badge)
    tampered = flip_byte(await asyncio.to_thread(node_bundle, node, credential), "events.0.event")
    async with serve(bundle_app({credential.hex(): tampered})) as liar:
        out = tmp_path / "r.json"
        assert (
            await cli("proof", str(badge), "--node", liar, "-o", str(out), "--genesis", str(tmp_path / "genesis.json"))
            == 3
        )
    assert not out.exists()
    assert "invalid-proof (step inclusion)" in capsys.readouterr().err


async def test_a_report_gives_json_text_and_the_same_document_as_a_dict(
    node: ApiNode, badge: Path, tmp_path: Path
) -> None:
    issue_badge(node, badge)
    report = await asyncio.to_thread(verify_credential, badge, genesis=tmp_path / "genesis.json", nodes=[node.url])
    text = report.to_json()
    assert isinstance(text, str)
    assert json.loads(text) == report.to_dict()
    assert report.to_dict()["status"] == "valid" and report.to_dict()["issued"].endswith("Z")


def test_a_tlog_proof_that_lies_is_refused() -> None:
    network = make_network(4)
    leaves = [bytes([i]) * 10 for i in range(5)]
    hashes = [merkle.leaf_hash(x) for x in leaves]
    root = merkle.root_from_leaf_hashes(hashes)
    header = Header(network.genesis.origin, 1, 0, 1, bytes(32), "m0.test", 5, root, bytes(32), 5, bytes(32), bytes(32))
    note = certify_header(network, header)
    good = tlogproof.TlogProof(leaves[3], 3, tuple(merkle.inclusion_path(hashes, 3)), note)
    assert tlogproof.verify(good, network.genesis.validator_set()).size == 5
    with pytest.raises(VerificationError, match="inclusion proof"):
        tlogproof.verify(tlogproof.TlogProof(leaves[2], 3, good.proof, note), network.genesis.validator_set())
    weak = certify_header(network, header, ["m0.test", "m1.test"])
    with pytest.raises(VerificationError, match="need more than 2/3"):
        tlogproof.verify(tlogproof.TlogProof(leaves[3], 3, good.proof, weak), network.genesis.validator_set())
    for broken in ("c2sp.org/tlog-proof@v2\nindex 0\n\n" + note, "c2sp.org/tlog-proof@v1\nindex 01\n\n" + note):
        with pytest.raises(DecodeError):
            tlogproof.TlogProof.parse(broken)


def test_the_verifier_library_imports_no_server_code() -> None:
    import subprocess
    import sys

    probe = (
        "import sys, verifier.credential, ledger.tlogproof; "
        "print(sorted(m for m in sys.modules if m.startswith('aiohttp')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=PROJECT)
    assert out.stdout.strip() == "[]"
