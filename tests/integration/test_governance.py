"""Membership changes on a running network: a fifth institution admitted by governance starts voting at H + 2, and
a removed member's votes stop counting at H + 2, while the chain keeps committing and proofs from every node
verify through the validator-set chain from genesis."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from credledger.ledger.events import MemberRemove
from tests.factories import digest, make_member
from tests.integration.cluster import Cluster, Node, poll, running, signature_lines
from tests.integration.conftest import CLUSTERS


@pytest.fixture
def net(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Four founding validators and a fifth institution's node, running from the start, not yet a member."""
    cluster = Cluster.create(tmp_path / "net", extra=[make_member("m4.test")])
    cluster.add_node("m4.test")
    request.node.stash.setdefault(CLUSTERS, []).append(cluster)
    with running(cluster):
        yield cluster


def signers_at(net: Cluster, nodes: list[Node], height: int) -> set[str]:
    """Everyone who signed any node's certificate of `height`."""
    return set().union(*(signature_lines(net.block(n, height)["certificate"]) for n in nodes))


def test_a_fifth_member_is_admitted_and_votes_then_a_removed_member_stops_counting(net: Cluster) -> None:
    founders = net.validators[:4]
    m0, m1, m2, m3 = founders
    m4 = net["m4.test"]
    # Not a member yet, m4 follows the chain by fetching certified blocks.
    net.wait_height(3, [m4])
    assert net.get(m4, "/v1/status")["peers"] == 0

    admission = net.governance(
        make_member("m4.test").add_payload("Fifth Institution"), ["m0.test", "m1.test", "m2.test"]
    )
    added_at = net.submit(m2, admission)["results"][0]["height"]
    # The set including m4 certifies from added_at + 2 on; until then m4 has no say.
    net.wait_height(added_at + 2, net.nodes)
    for height in range(1, added_at + 2):
        assert "m4.test" not in signers_at(net, founders, height)
    poll("m4 connected to the four founders", lambda: net.get(m4, "/v1/status")["peers"] == 4)

    def m4_signed() -> bool:
        top = min(net.height(n) for n in net.nodes)
        return any("m4.test" in signers_at(net, net.nodes, h) for h in range(added_at + 2, top + 1))

    poll("a checkpoint signed by m4", m4_signed)
    members = {m["id"]: m for m in net.get(m0, "/v1/members")["members"]}
    assert members["m4.test"]["name"] == "Fifth Institution"

    # m4 issues, and every node (m4 too) proves it against the genesis through the validator-set chain.
    credential = digest("issued by the fifth member")
    net.submit(m4, net.issue("m4.test", credential))
    poll(
        "every node to prove m4's credential",
        lambda: {net.verdict(n, credential).status for n in net.nodes} == {"valid"},
    )

    # Removing m1 takes four of the five votes now.
    removal = net.governance(MemberRemove("m1.test"), ["m0.test", "m2.test", "m3.test", "m4.test"])
    removed_at = net.submit(m4, removal)["results"][0]["height"]
    voters = [m0, m2, m3, m4]
    net.wait_height(removed_at + 6, voters)
    for height in range(removed_at + 2, removed_at + 7):
        assert "m1.test" not in signers_at(net, voters, height), f"m1 signed block {height} after its removal"
    # Three of the four remaining validators certify every block.
    assert all(len(signers_at(net, voters, h)) >= 3 for h in range(removed_at + 2, removed_at + 7))
    members = {m["id"]: m for m in net.get(m3, "/v1/members")["members"]}
    assert members["m1.test"]["active"] is False

    # The chain commits on; m1's node, no longer a validator, still follows it.
    after = net.submit(m3, net.issue("m3.test", digest("after the removal")))["results"][0]
    net.wait_height(after["height"], [*voters, m1])
    assert {net.verdict(n, digest("after the removal")).status for n in net.nodes} == {"valid"}
