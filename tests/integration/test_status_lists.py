"""Bitstring Status Lists on a running 4-validator network (DESIGN §13): each member's validator publishes its own
lists, a revocation or suspension shows within two blocks of being committed, and every node serves the same bytes."""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from credledger.ledger.events import Issue, Revoke, Suspend
from credledger.ledger.limits import STATUS_LIST_ENTRIES
from credledger.ledger.vc.did import did_document_resolver
from credledger.ledger.vc.proof import verify_credential
from credledger.ledger.vc.statuslist import read_status_list_credential
from tests.factories import digest
from tests.integration.cluster import FAST_PARAMS, HTTP_TIMEOUT_S, Cluster, Node, poll, running
from tests.integration.conftest import CLUSTERS

ISSUER_KEY_CONFIG = '\n[credentials]\nissuer_key = "issuer.key"\n'
M0 = "m0.test"


@pytest.fixture
def net(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path / "net", extra_config=ISSUER_KEY_CONFIG)
    request.node.stash.setdefault(CLUSTERS, []).append(cluster)
    with running(cluster):
        yield cluster


def fetch(node: Node, purpose: str) -> tuple[bytes, int] | None:
    """The list credential bytes `node` serves for m0's list 0, and the height certifying them (None: 404)."""
    try:
        with urllib.request.urlopen(f"{node.url}/v1/members/{M0}/status/0/{purpose}", timeout=HTTP_TIMEOUT_S) as r:
            return r.read(), int(r.headers["Credledger-Height"])
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def bits(body: bytes) -> list[int]:
    return read_status_list_credential(json.loads(body)).bits.set_indices()


def test_a_revocation_and_a_suspension_show_in_every_nodes_list_within_two_blocks(net: Cluster) -> None:
    m0, m1 = net.validators[:2]
    issuer = net.members[M0].issuer
    events = [net.sign(Issue(digest(label), M0, None, (), 0, index), issuer) for label, index in (("a", 17), ("b", 99))]
    net.submit(m1, *events)
    poll("m0's lists published on every node", lambda: all(fetch(n, "revocation") for n in net.nodes))

    revoked_at = net.submit(m1, net.sign(Revoke(digest("a"), 1), issuer))["results"][0]["height"]
    suspended_at = net.submit(m1, net.sign(Suspend(digest("b"), 6), issuer))["results"][0]["height"]

    def shows(purpose: str, index: int) -> bool:
        answers = [fetch(n, purpose) for n in net.nodes]
        return all(a is not None and index in bits(a[0]) for a in answers)

    poll("the revocation in every node's list", lambda: shows("revocation", 17))
    poll("the suspension in every node's list", lambda: shows("suspension", 99))
    revocation = {fetch(n, "revocation") for n in net.nodes}
    suspension = {fetch(n, "suspension") for n in net.nodes}
    assert len(revocation) == len(suspension) == 1, "every node serves the same bytes at the same height"
    ((body, certified_at),) = revocation
    assert revoked_at < certified_at <= revoked_at + 2
    assert suspended_at < next(iter(suspension))[1] <= suspended_at + 2

    did_document = net.get(m1, f"/v1/members/{M0}/did.json")
    verify_credential(json.loads(body), did_document_resolver([did_document]))
    assert bits(body) == [17]
    assert m0.running


def test_a_list_with_many_random_bits_set_is_published_and_served_byte_identically(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # A network whose genesis holds events to 4 KiB, and 3,000 entries revoked at random: the list's status.publish
    # is larger than any other event may be, and is published all the same (the rules hold it to its own limit,
    # which the worst case of a 131,072-entry list fits: tests/unit/test_status_rules.py).
    params = replace(FAST_PARAMS, max_event_bytes=4096)
    net = Cluster.create(tmp_path / "net", extra_config=ISSUER_KEY_CONFIG, params=params)
    request.node.stash.setdefault(CLUSTERS, []).append(net)
    with running(net):
        m1 = net.validators[1]
        issuer = net.members[M0].issuer
        indexes = sorted(random.Random(2026).sample(range(STATUS_LIST_ENTRIES), 3_000))

        def committed(event_id: bytes) -> bool:
            try:
                return net.event_status(m1, event_id) == "committed"
            except OSError:  # a read that timed out on a loaded machine: ask again
                return False

        for make in (
            lambda i: Issue(digest(f"many {i}"), M0, None, (), 0, i),
            lambda i: Revoke(digest(f"many {i}"), 1),
        ):
            events = [net.sign(make(i), issuer) for i in indexes]  # signed now: each within its time window
            for start in range(0, len(events), 1000):
                net.submit(m1, *events[start : start + 1000], wait=False, timeout=120.0)
            poll("the batch committed", lambda e=events: committed(e[-1].id), timeout=300)

        def published() -> bool:
            try:
                answers = [fetch(n, "revocation") for n in net.nodes]
            except OSError:
                return False
            return all(a is not None and bits(a[0]) == indexes for a in answers)

        poll("the list of 3,000 revocations on every node", published, timeout=120.0)
        served = {fetch(n, "revocation") for n in net.nodes}
        assert len(served) == 1, "every node serves the same bytes at the same height"
        ((body, _),) = served
        assert len(body) > params.max_event_bytes
        did_document = net.get(m1, f"/v1/members/{M0}/did.json")
        verify_credential(json.loads(body), did_document_resolver([did_document]))
        assert all(node.running for node in net.nodes)
