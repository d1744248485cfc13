"""`credledger record`, `credledger verify RECORD` and `credledger pathway` against a real node on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from credledger.cli.main import main
from credledger.ledger.digest import document_digest
from credledger.ledger.events import Revoke
from credledger.ledger.genesis import write_genesis
from tests.apinode import ApiNode, api_node
from tests.catalogue import award, definition, publish
from tests.factories import T0, signed

TIME = T0 + 1000
A, B = "m0.test", "m1.test"


def credential(tmp_path: Path, name: str, subject: str = "did:example:learner") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"type": ["VerifiableCredential"], "name": name, "credentialSubject": {"id": subject}}))
    return path


def digest_of(path: Path) -> bytes:
    return document_digest(path.read_bytes()).digest


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        write_genesis(n.network.genesis, tmp_path / "genesis.json")
        m0, m1 = n.network[A], n.network[B]
        await commit(
            n,
            publish(m0, definition("stats", credits=5, level=6), time_ms=TIME),
            publish(m1, definition("python", credits=5, level=6), time_ms=TIME),
            publish(m1, definition("sql", credits=5, level=6), time_ms=TIME),
        )
        rule = {"credits": {"min": 10, "system": "ECTS", "level": {"framework": "EQF", "min": 6}}}
        await commit(
            n,
            publish(m1, definition("data-cert", kind="Certificate", rule=rule), time_ms=TIME),
            publish(
                m1,
                definition("big-cert", kind="Certificate", rule={**rule, "credits": {**rule["credits"], "min": 30}}),
                time_ms=TIME,
            ),
        )
        await commit(
            n,
            award(m0, digest_of(credential(tmp_path, "stats")), "stats", time_ms=TIME),
            award(m1, digest_of(credential(tmp_path, "python")), "python", time_ms=TIME),
            award(m1, digest_of(credential(tmp_path, "sql")), "sql", time_ms=TIME),
        )
        await commit(n, signed(Revoke(digest_of(credential(tmp_path, "sql")), 4), m1.issuer, time_ms=TIME))
        yield n


async def commit(node: ApiNode, *events: Any) -> None:
    response = await node.submit(*events)
    assert response.status == 202, await response.text()
    node.decide()


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def test_a_saved_record_verifies_offline_in_one_step(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(tmp_path / f"{n}.json") for n in ("stats", "python")]
    out = tmp_path / "record.json"
    genesis = str(tmp_path / "genesis.json")
    assert await run("record", *files, "--genesis", genesis, "--node", node.url, "-o", str(out)) == 0
    assert json.loads(out.read_text())["format"] == "credledger-record/v1"
    capsys.readouterr()
    assert await run("verify", str(out), "--genesis", genesis) == 0
    text = capsys.readouterr().out
    assert "record of 2 credentials" in text
    assert "credits (valid credentials): 10 ECTS" in text
    assert f"{A}/stats v1" in text


async def test_a_record_with_a_revoked_credential_verifies_as_not_all_valid(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "record.json"
    genesis = str(tmp_path / "genesis.json")
    files = [str(tmp_path / f"{n}.json") for n in ("stats", "sql")]
    assert await run("record", *files, "--genesis", genesis, "--node", node.url, "-o", str(out)) == 0
    capsys.readouterr()
    assert await run("verify", str(out), "--genesis", genesis, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert [c["status"] for c in report["credentials"]] == ["valid", "revoked"]
    assert report["credits"] == {"ECTS": "5"}


async def test_a_tampered_record_does_not_verify(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "record.json"
    genesis = str(tmp_path / "genesis.json")
    assert (
        await run("record", str(tmp_path / "stats.json"), "--genesis", genesis, "--node", node.url, "-o", str(out)) == 0
    )
    data = json.loads(out.read_text())
    data["credentials"][0]["digest"] = "00" * 32
    out.write_text(json.dumps(data))
    capsys.readouterr()
    assert await run("verify", str(out), "--genesis", genesis) == 3
    assert "the record does not verify" in capsys.readouterr().err


async def test_pathway_lists_complete_awards_first_and_what_the_others_miss(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(tmp_path / f"{n}.json") for n in ("stats", "python")]
    genesis = str(tmp_path / "genesis.json")
    assert await run("pathway", *files, "--genesis", genesis, "--node", node.url, "--json") == 0
    found = json.loads(capsys.readouterr().out)["pathways"]
    # stats (from A) and python (from B) make 10 ECTS at level 6: data-cert is complete, big-cert is not.
    assert [(p["achievement"], p["complete"]) for p in found] == [(f"{B}/data-cert", True), (f"{B}/big-cert", False)]
    assert found[1]["missing"] == ["credits: 10 of 30 ECTS at level ≥ 6 (EQF)"]
    assert await run("pathway", *files, "--genesis", genesis, "--node", node.url, "--toward", f"{B}/big-cert") == 1
    assert await run("pathway", *files, "--genesis", genesis, "--node", node.url, "--toward", f"{B}/data-cert") == 0


async def test_credentials_naming_different_subjects_are_refused(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = credential(tmp_path, "other", subject="did:example:someone-else")
    genesis = str(tmp_path / "genesis.json")
    code = await run("pathway", str(tmp_path / "stats.json"), str(other), "--genesis", genesis, "--node", node.url)
    assert code == 2
    assert "name different subjects" in capsys.readouterr().err
