"""A verifier's witness policy: a bundle whose checkpoint lacks the required cosignatures is refused, naming the
witnesses that are missing; with them it verifies. Through the Python API and `credledger verify` / `proof`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest

from credledger.cli.main import main as run_cli
from credledger.ledger.bundle import Bundle
from credledger.ledger.cosignature import CosignerKey, cosign
from credledger.ledger.genesis import write_genesis
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import SignedNote
from credledger.ledger.witnesspolicy import WitnessPolicy
from credledger.verifier.credential import UNVERIFIED, Report, verify_credential
from tests.apinode import ApiNode, api_node
from tests.factories import T0, digest, issue, key_for

W1, W2, W3 = (key_for(f"witness.test/w{i}", "witness") for i in (1, 2, 3))
VKEYS = [CosignerKey.of(w).vkey() for w in (W1, W2, W3)]
TIME = T0 + 1000


async def a_bundle(node: ApiNode) -> Bundle:
    node.decide([issue(node.network["m0.test"], digest("badge"), time_ms=TIME)])
    response = await node.client.get("/v1/credentials/" + digest("badge").hex())
    return Bundle.from_json(await response.json())


def cosigned_by(bundle: Bundle, *witnesses: SigningKey) -> Bundle:
    note = SignedNote.parse(bundle.checkpoint)
    now = int(time.time())
    lines = [cosign(note.text, w, now).note_signature() for w in witnesses]
    return replace(bundle, checkpoint=note.with_signatures(lines).format())


def check(bundle: Bundle, node: ApiNode, policy: WitnessPolicy) -> Report:
    return verify_credential(
        digest("badge").hex(), genesis=node.network.genesis, bundle=bundle, witnesses=policy, now_ms=TIME + 1000
    )


async def test_a_bundle_without_the_quorum_of_cosignatures_fails_naming_the_missing_witnesses(tmp_path: Path) -> None:
    async with api_node(tmp_path) as node:
        bundle = cosigned_by(await a_bundle(node), W1)
        report = check(bundle, node, WitnessPolicy.flat((), VKEYS, 2))
    assert report.status == UNVERIFIED
    (fault,) = report.faults
    assert fault.kind == "unwitnessed" and fault.step == "witnesses"
    assert "cosigned by: witness.test/w1; missing: witness.test/w2, witness.test/w3" in fault.detail


async def test_a_bundle_with_the_quorum_of_cosignatures_verifies_and_says_who_cosigned(tmp_path: Path) -> None:
    async with api_node(tmp_path) as node:
        bundle = cosigned_by(await a_bundle(node), W1, W3)
        report = check(bundle, node, WitnessPolicy.flat((), VKEYS, 2))
    assert report.status == "valid"
    last = report.checks[-1]
    assert last.step == "witnesses" and "cosigned by witness.test/w1, witness.test/w3" in last.detail


async def test_a_forged_cosignature_is_an_invalid_proof_not_a_missing_one(tmp_path: Path) -> None:
    async with api_node(tmp_path) as node:
        bundle = await a_bundle(node)
        note = SignedNote.parse(bundle.checkpoint)
        other = cosign(note.text, W1, int(time.time()))
        forged_line = replace(other.note_signature(), signature=bytes(72))
        forged = replace(bundle, checkpoint=note.with_signatures([forged_line]).format())
        report = check(forged, node, WitnessPolicy.flat((), VKEYS, 1))
    (fault,) = report.faults
    assert (fault.kind, fault.step) == ("invalid-proof", "witnesses")


async def test_cli_verify_refuses_an_unwitnessed_bundle_with_exit_1_and_names_the_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with api_node(tmp_path) as node:
        bundle = await a_bundle(node)
        write_genesis(node.network.genesis, tmp_path / "genesis.json")
    (tmp_path / "plain.json").write_text(bundle.dumps())
    (tmp_path / "cosigned.json").write_text(cosigned_by(bundle, W2).dumps())
    base = ["verify", digest("badge").hex(), "--genesis", str(tmp_path / "genesis.json"), "--max-age", "100000d"]
    witness = ["--witness", VKEYS[1]]
    code = await asyncio.to_thread(run_cli, [*base, "--bundle", str(tmp_path / "plain.json"), *witness])
    assert code == 1
    assert "missing: witness.test/w2" in capsys.readouterr().out
    code = await asyncio.to_thread(run_cli, [*base, "--bundle", str(tmp_path / "cosigned.json"), *witness])
    assert code == 0, capsys.readouterr()
    policy = tmp_path / "policy.txt"
    policy.write_text(f"witness w2 {VKEYS[1]}\nwitness w3 {VKEYS[2]}\ngroup both all w2 w3\nquorum both\n")
    code = await asyncio.to_thread(
        run_cli, [*base, "--bundle", str(tmp_path / "cosigned.json"), "--witness-policy", str(policy)]
    )
    assert code == 1
    assert "missing: w3" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        (["--witness-quorum", "1"], "--witness-quorum needs at least one --witness"),
        (["--witness", "nonsense"], "--witness: "),
        (["--witness", VKEYS[0], "--witness-quorum", "2"], "--witness: witness quorum must be between 0 and the 1"),
        (["--witness-policy", "/nonexistent/policy"], "--witness-policy /nonexistent/policy: cannot read it"),
    ],
)
def test_bad_witness_options_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], why: str
) -> None:
    argv = ["verify", "ab" * 32, "--genesis", str(tmp_path / "g.json"), "--bundle", str(tmp_path / "b.json"), *extra]
    assert run_cli(argv) == 2
    assert why in capsys.readouterr().err
