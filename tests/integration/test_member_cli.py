"""`credledger member update --did` on a running 4-validator network: governance changes a member's DID, and every
node's member list, DID document and issuer registry follow; too little power, or a malformed DID, is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from credledger.cli.main import main as run_cli
from tests.integration.cluster import Cluster, poll, running
from tests.integration.conftest import CLUSTERS


@pytest.fixture
def net(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path / "net")
    request.node.stash.setdefault(CLUSTERS, []).append(cluster)
    with running(cluster):
        yield cluster


def did_of(net: Cluster, member: str) -> set[str]:
    """The DID each node reports for `member`."""
    return {next(m["did"] for m in net.get(node, "/v1/members")["members"] if m["id"] == member) for node in net.nodes}


def test_governance_changes_a_members_did_from_the_command_line(
    net: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    m0, m1, m2, m3 = net.validators
    keys = [str(node.directory / "node.key") for node in (m0, m1, m2)]
    command = ["member", "update", m3.id, "--node", m1.url]
    governance = [f"--governance={k}" for k in keys]

    assert run_cli([*command, "--did", "did:web:registrar.example", "--governance", keys[0], "--wait"]) == 1
    assert "power" in capsys.readouterr().err  # one member's signature is not more than 2/3 of the power
    assert run_cli([*command, "--did", "did:web:Not A Host", *governance]) == 2
    assert "did" in capsys.readouterr().err
    assert did_of(net, m3.id) == {f"did:web:{m3.id}"}

    assert run_cli([*command, "--did", "did:web:registrar.example", *governance, "--wait"]) == 0
    out = capsys.readouterr().out
    assert "committed" in out and "did   did:web:registrar.example" in out and "power 1" in out
    poll("every node reports the new DID", lambda: did_of(net, m3.id) == {"did:web:registrar.example"})
    document = net.get(m0, f"/v1/members/{m3.id}/did.json")
    assert document["id"] == "did:web:registrar.example"
    assert all(method["controller"] == "did:web:registrar.example" for method in document["verificationMethod"])
    registry = net.get(m2, "/v1/registry.json")["registry"]
    assert registry["did:web:registrar.example"]["id"] == m3.id and f"did:web:{m3.id}" not in registry
    assert all(node.running for node in net.nodes)
