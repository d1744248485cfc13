"""Four validator processes and a read replica on 127.0.0.1: the credential lifecycle through the API and the
command line, agreement between nodes, proofs from any node, and a replica that syncs from scratch.

One network serves the whole module (starting processes is the slow part); each test leaves it running and
committing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from credledger.cli.main import main
from credledger.ledger.bundle import Bundle, verify_bundle
from credledger.ledger.events import Payload, Reinstate, Revoke, Suspend
from tests.factories import digest
from tests.integration.cluster import Cluster, Node, note_body, poll, running, signature_lines
from tests.integration.conftest import CLUSTERS

CREDENTIAL = {
    "@context": ["https://www.w3.org/ns/credentials/v2"],
    "type": ["VerifiableCredential"],
    "credentialSubject": {"achievement": "Integration testing, with distinction"},
}


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path_factory.mktemp("network"))
    with running(cluster):
        cluster.wait_height(1)
        yield cluster


@pytest.fixture(autouse=True)
def _show_logs_on_failure(net: Cluster, request: pytest.FixtureRequest) -> None:
    request.node.stash.setdefault(CLUSTERS, []).append(net)


def statuses(net: Cluster, credential: bytes) -> dict[str, str]:
    """The verified status of `credential` in a bundle from every running node, once all have caught up."""
    return {node.id: net.verdict(node, credential).status for node in net.running()}


def all_report(net: Cluster, credential: bytes, status: str) -> None:
    """Every running node serves a bundle for `credential` that verifies offline and says `status`."""
    poll(f"every node to prove {status}", lambda: set(statuses(net, credential).values()) == {status})


def test_the_credential_lifecycle_through_the_api_commits_on_every_node(net: Cluster) -> None:
    m0, m1, m2, m3 = net.validators
    credential = digest("api lifecycle")

    issued = net.submit(m0, net.issue("m0.test", credential))["results"][0]
    assert issued["status"] == "committed"
    all_report(net, credential, "valid")
    verdict = net.verdict(m3, credential)
    assert (verdict.issuer, verdict.issued_height) == ("m0.test", issued["height"])

    issuer = net.members["m0.test"].issuer
    steps: list[tuple[Node, Payload, str]] = [
        (m1, Suspend(credential, 6), "suspended"),
        (m2, Reinstate(credential), "valid"),
        (m3, Revoke(credential, 17), "revoked"),
    ]
    for node, payload, expected in steps:
        answer = net.submit(node, net.sign(payload, issuer))
        result = answer["results"][0]
        assert result["status"] == "committed"
        # The answer's checkpoint covers the block that holds the event.
        assert int(note_body(answer["checkpoint"]).splitlines()[1]) > result["index"]
        all_report(net, credential, expected)
    assert net.verdict(m1, credential).reason == 17


def test_the_credential_lifecycle_through_the_command_line(
    net: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m0, m1, m2, m3 = net.validators
    document = tmp_path / "badge.json"
    document.write_text(json.dumps(CREDENTIAL))
    key = str(m1.directory / "issuer.key")
    # The digest the command line computes: SHA-256 of the RFC 8785 form of the JSON document.
    assert main(["issue", str(document), "--key", key, "--node", m1.url, "--wait", "--json"]) == 0
    issued = json.loads(capsys.readouterr().out)
    credential = bytes.fromhex(issued["digest"])
    assert issued["results"][0]["status"] == "committed"
    all_report(net, credential, "valid")
    assert net.verdict(m0, credential).issuer == "m1.test"

    assert main(["suspend", str(document), "--key", key, "--node", m2.url, "--reason", "on-hold", "--wait"]) == 0
    assert "committed" in capsys.readouterr().out
    all_report(net, credential, "suspended")

    assert main(["reinstate", issued["digest"], "--key", key, "--node", m3.url, "--wait"]) == 0
    all_report(net, credential, "valid")

    # Governance revokes without the issuer: node keys of three of the four members (> 2/3 of the power).
    governors = [arg for n in (m0, m2, m3) for arg in ("--governance", str(n.directory / "node.key"))]
    assert main(["revoke", issued["digest"], *governors, "--reason", "fraud", "--node", m0.url, "--wait"]) == 0
    all_report(net, credential, "revoked")

    # A refusal is exit code 1 with the rule: revoked is terminal.
    capsys.readouterr()
    assert main(["reinstate", issued["digest"], "--key", key, "--node", m0.url, "--wait"]) == 1
    assert "revoked-is-terminal" in capsys.readouterr().err

    assert main(["status", "--node", m3.url, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["member"] == "m3.test" and status["peers"] == 3 and status["height"] >= issued["results"][0]["height"]


def test_every_node_holds_the_same_certified_chain(net: Cluster) -> None:
    net.wait_progress(2)
    top = min(net.height(n) for n in net.validators)
    for height in range(1, top + 1):
        blocks = [net.block(n, height) for n in net.validators]
        first = blocks[0]
        for node, block in zip(net.validators, blocks, strict=True):
            assert block["header"] == first["header"], f"{node.id} holds another block {height}"
            assert block["hash"] == first["hash"]
            assert block["events"] == first["events"]
            # Certificates may carry different quorums of signatures, over the same checkpoint.
            assert note_body(block["certificate"]) == note_body(first["certificate"])
            assert len(signature_lines(block["certificate"])) >= 3
    # The same checkpoint (log size and root) at the same height from every node's status.
    sizes = {n.id: net.block(n, top)["header"]["log_size"] for n in net.validators}
    assert len(set(sizes.values())) == 1


def test_each_node_exports_its_height_peers_and_commit_latency(net: Cluster) -> None:
    node = net.validators[1]
    before = net.metric(node, "credledger_commit_seconds_count")
    net.submit(node, net.issue("m1.test", digest("measured")))
    assert net.metric(node, "credledger_commit_seconds_count") == before + 1
    height = net.height(node)
    assert net.metric(node, "credledger_height") >= height
    assert net.metric(node, "credledger_peers") == 3
    assert net.metric(node, "credledger_round", default=-1) >= 0
    assert net.metric(node, "credledger_events_committed_total") >= 1


def test_a_read_replica_syncs_from_scratch_and_serves_the_validators_proofs(net: Cluster) -> None:
    credential = digest("replica")
    net.submit(net.validators[2], net.issue("m2.test", credential))
    replica = net.add_node("m0.test", "replica", name="replica-m0")
    assert replica.peers == tuple(n.url for n in net.validators)
    net.start(replica)
    net.wait_height(net.height(net.validators[0]) + 1, [replica])
    assert net.get(replica, "/v1/status")["role"] == "replica"

    # Compare bundles served at the same height: blocks keep coming, so retry until the heights meet.
    def same_height_bundles() -> bool:
        ours = net.bundle(replica, credential)
        theirs = {n.id: net.bundle(n, credential) for n in net.validators}
        heights = {note_body(b["checkpoint"]) for b in (ours, *theirs.values())}
        if len(heights) != 1:
            return False
        # The replica copied some validator's certificate with the block: that validator's bundle is identical,
        # byte for byte; every other validator's differs at most in which signatures its certificate carries.
        assert ours in theirs.values()
        stripped = {json.dumps({**b, "checkpoint": None}, sort_keys=True) for b in (ours, *theirs.values())}
        assert len(stripped) == 1
        verdict = verify_bundle(Bundle.from_json(ours), net.genesis)
        assert verdict.status == "valid" and verdict.issuer == "m2.test"
        return True

    poll("the replica and the validators to serve bundles at one height", same_height_bundles, interval=0.05)

    # It follows new commits, without voting: its member's signature comes from the validator m0.test only.
    later = net.submit(net.validators[1], net.issue("m1.test", digest("after the replica")))["results"][0]
    net.wait_height(later["height"], [replica])
    assert net.verdict(replica, digest("after the replica")).status == "valid"
    assert net.get(replica, f"/v1/events/{later['id']}")["status"] == "committed"


def test_the_replica_refuses_nothing_it_should_serve_and_keeps_up_after_a_restart(net: Cluster) -> None:
    replica = next(n for n in net.nodes if n.role == "replica")
    net.stop(replica)
    net.wait_progress(3, net.validators)
    net.start(replica)
    net.wait_height(net.height(net.validators[0]), [replica])
    ids = net.log_ids(replica)
    assert ids == net.log_ids(net.validators[0])[: len(ids)]
