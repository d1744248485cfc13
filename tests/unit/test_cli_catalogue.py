"""`credledger achievement`, `credledger recognition` and `issue --achievement` against a real node on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from credledger.cli.main import main
from credledger.ledger.catalogue import get_award
from tests.apinode import ApiNode, api_node
from tests.catalogue import definition
from tests.factories import digest

A, B = "m0.test", "m1.test"


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    # Commands sign with the real clock, so the chain's clock is the real one too.
    async with api_node(tmp_path, clock=time.time) as n:
        for member in n.network.members.values():
            (tmp_path / f"{member.id}.issuer").write_text(member.issuer.skey() + "\n")
        yield n


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def committed(node: ApiNode, *argv: str) -> None:
    assert await run(*argv) == 0
    node.decide()


async def test_publish_issue_and_award_through_the_command_line(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = ["--key", str(tmp_path / f"{A}.issuer"), "--node", node.url]
    micro = tmp_path / "micro.json"
    micro.write_text(json.dumps(definition("micro", credits=5, level=6), indent=4))  # any formatting
    cert = tmp_path / "cert.json"
    rule = {"credits": {"min": 10, "system": "ECTS"}}
    cert.write_text(json.dumps(definition("cert", kind="Certificate", rule=rule)))
    await committed(node, "achievement", "publish", str(micro), *a)
    assert "achievement.publish by m0.test accepted (pending)" in capsys.readouterr().out
    await committed(node, "achievement", "publish", str(cert), *a)
    for label in ("one", "two"):
        await committed(node, "issue", digest(label).hex(), "--achievement", "micro@1", *a)
    parts = ["--component", digest("one").hex()]
    capsys.readouterr()
    assert await run("issue", digest("cert").hex(), "--achievement", "cert@1", *parts, *a) == 1
    assert "credits: 5 of 10 ECTS" in capsys.readouterr().err
    await committed(
        node, "issue", digest("cert").hex(), "--achievement", "cert@1", *parts, "--component", digest("two").hex(), *a
    )
    with node.application.store.snapshot() as snap:
        award = get_award(snap.state_view(), digest("cert"))
    assert award is not None and (award.achievement, award.version) == ("cert", 1)
    await committed(node, "achievement", "retire", "micro", *a)
    capsys.readouterr()
    assert await run("issue", digest("three").hex(), "--achievement", "micro@1", *a) == 1
    assert "achievement-retired" in capsys.readouterr().err


async def test_a_recognition_is_published_and_withdrawn(node: ApiNode, tmp_path: Path) -> None:
    a = ["--key", str(tmp_path / f"{A}.issuer"), "--node", node.url]
    b = ["--key", str(tmp_path / f"{B}.issuer"), "--node", node.url]
    (tmp_path / "x.json").write_text(json.dumps(definition("x")))
    (tmp_path / "y.json").write_text(json.dumps(definition("y")))
    await committed(node, "achievement", "publish", str(tmp_path / "x.json"), *a)
    await committed(node, "achievement", "publish", str(tmp_path / "y.json"), *b)
    recognition = {"id": "r", "from": {"member": A, "achievement": "x"}, "as": {"achievement": "y"}}
    (tmp_path / "r.json").write_text(json.dumps(recognition))
    await committed(node, "recognition", "publish", str(tmp_path / "r.json"), *b)
    listed = await (await node.client.get(f"/v1/recognitions?member={B}")).json()
    assert [r["id"] for r in listed["recognitions"]] == ["r"]
    await committed(node, "recognition", "withdraw", "r", *b)
    listed = await (await node.client.get(f"/v1/recognitions?member={B}")).json()
    assert listed["recognitions"] == []


async def test_bad_catalogue_input_is_a_usage_error_naming_the_field(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = ["--key", str(tmp_path / f"{A}.issuer"), "--node", node.url]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(definition("x", recipient={"name": "Ada"})))
    assert await run("achievement", "publish", str(bad), *a) == 2
    assert "definition.recipient: personal data has no place" in capsys.readouterr().err
    (tmp_path / "broken.json").write_text("{")
    assert await run("recognition", "publish", str(tmp_path / "broken.json"), *a) == 2
    assert "not JSON" in capsys.readouterr().err
    assert await run("issue", digest("x").hex(), "--achievement", "cert", *a) == 2
    assert "--achievement: expected ID@VERSION" in capsys.readouterr().err
