"""Crashes under load: a validator killed with SIGKILL while events pour in, two of four killed (no quorum), and
kills at random moments. Whatever a node answered as committed (`?wait=commit`, HTTP 200) is in the log after
restart, on every node, and every node holds one and the same chain.
"""

from __future__ import annotations

import random
import time
from functools import partial

from tests.factories import digest
from tests.integration.cluster import Cluster, Load, Node, note_body, poll, signature_lines


def same_chain(net: Cluster, nodes: list[Node]) -> int:
    """Every node holds the same certified headers and log up to the lowest height among them; return it."""
    top = min(net.height(n) for n in nodes)
    headers = {n.id: net.block(n, top)["header"] for n in nodes}
    assert len({str(h) for h in headers.values()}) == 1, headers
    return top


def all_committed(net: Cluster, node: Node, ids: set[str]) -> None:
    """Every id in `ids` is in `node`'s log."""
    missing = ids - set(net.log_ids(node))
    assert not missing, f"{node.id} lost {len(missing)} acknowledged events, e.g. {sorted(missing)[:3]}"


def committed_on(net: Cluster, node: Node, event_id: bytes) -> bool:
    return net.event_status(node, event_id) == "committed"


def more_than(load: Load, acknowledged: int) -> bool:
    return load.acked() > acknowledged


def test_a_killed_validator_catches_up_rejoins_and_signs_again(cluster: Cluster) -> None:
    m0, m1, m2, m3 = cluster.validators
    with Load(cluster, threads=2) as load:
        poll("the first acknowledged events", lambda: load.acked() >= 8)
        cluster.kill(m3)
        killed_at = max(cluster.height(n) for n in (m0, m1, m2))
        acked = load.acked()
        # The other three keep committing, with the load still on them.
        cluster.wait_height(killed_at + 5, [m0, m1, m2])
        poll("more acknowledged events without m3", lambda: load.acked() >= acked + 8)
        cluster.start(m3)
        # It catches up to the others, and new checkpoints carry its signature again.
        cluster.wait_height(cluster.height(m0), [m3])
        rejoined = cluster.height(m0)

        def signs_again() -> bool:
            top = min(cluster.height(n) for n in cluster.validators)
            return any(
                "m3.test" in signature_lines(cluster.block(n, h)["certificate"])
                for h in range(rejoined + 1, top + 1)
                for n in (m0, m1, m2)
            )

        poll("a checkpoint signed by m3 after it rejoined", signs_again)
    assert load.refused == [], load.refused
    cluster.wait_height(max(cluster.height(n) for n in cluster.validators))
    same_chain(cluster, cluster.validators)
    for node in cluster.validators:
        all_committed(cluster, node, load.acknowledged)


def test_a_validator_told_to_stop_exits_at_once_and_resumes_where_it_was(cluster: Cluster) -> None:
    m0, m1, m2, m3 = cluster.validators
    cluster.wait_height(2)
    started = time.monotonic()
    cluster.stop(m1)  # SIGTERM, while its three peers stay connected to it
    assert time.monotonic() - started < 5, "the peers' open connections held the node up"
    assert m1.process is not None and m1.process.returncode == 0
    assert '"node stopped"' in cluster.tail(m1, 3)
    stopped_at = max(cluster.height(n) for n in (m0, m2, m3))
    cluster.wait_height(stopped_at + 2, [m0, m2, m3])
    cluster.start(m1)
    cluster.wait_height(cluster.height(m0), [m1])
    same_chain(cluster, cluster.validators)


def test_without_a_quorum_commits_stop_and_resume_when_one_returns(cluster: Cluster) -> None:
    m0, m1, m2, m3 = cluster.validators
    before = cluster.submit(m0, cluster.issue("m0.test", digest("before the outage")))["results"][0]
    cluster.kill(m2, m3)
    # Two of four hold half the power, not more than two thirds: nothing can commit, and nothing forks.
    stalled = max(cluster.height(n) for n in (m0, m1)) + 1  # one block may have been decided already
    waiting = [cluster.issue("m1.test", digest(f"during the outage {i}")) for i in range(3)]
    for event in waiting:
        assert cluster.submit(m1, event, wait=False)["results"][0]["status"] == "pending"
    time.sleep(3)  # several rounds' worth of timeouts: long enough for a commit, were one possible
    assert max(cluster.height(n) for n in (m0, m1)) <= stalled
    assert {cluster.event_status(n, e.id) for n in (m0, m1) for e in waiting} == {"pending"}
    same_chain(cluster, [m0, m1])
    for node in (m0, m1):
        assert cluster.get(node, "/readyz")["status"] == "ready"

    cluster.start(m2)
    # Three of four again: the pending events commit and blocks follow.
    for event in waiting:
        poll(f"{event.id.hex()[:12]} to commit", partial(committed_on, cluster, m0, event.id))
    cluster.wait_progress(2, [m0, m1, m2])
    after = cluster.submit(m2, cluster.issue("m2.test", digest("after the outage")))["results"][0]
    assert after["status"] == "committed"
    same_chain(cluster, [m0, m1, m2])
    for node in (m0, m1, m2):
        all_committed(cluster, node, {before["id"], after["id"], *(e.id.hex() for e in waiting)})

    cluster.start(m3)
    cluster.wait_height(cluster.height(m0), [m3])
    same_chain(cluster, cluster.validators)
    all_committed(cluster, m3, {before["id"], after["id"]})


def test_kills_at_random_moments_lose_nothing_acknowledged(cluster: Cluster) -> None:
    rng = random.Random(20261122)
    validators = cluster.validators
    with Load(cluster, threads=3, batch=3) as load:
        poll("the first acknowledged events", lambda: load.acked() >= 6)
        for _round in range(6):
            time.sleep(rng.uniform(0.1, 1.2))
            # One node, two at once, or the whole network at the same instant.
            victims = rng.sample(validators, rng.choice((1, 2, 4)))
            cluster.kill(*victims)
            time.sleep(rng.uniform(0.0, 0.5))
            cluster.start(*victims)
            poll("commits to resume", partial(more_than, load, load.acked()), timeout=45)
    assert set(load.refused) <= {"commit-timeout"}, load.refused
    top = max(cluster.height(n) for n in validators)
    cluster.wait_height(top)
    same_chain(cluster, validators)
    for node in validators:
        all_committed(cluster, node, load.acknowledged)
    # One log for all: the same ids in the same order.
    logs = {n.id: cluster.log_ids(n) for n in validators}
    shortest = min(len(ids) for ids in logs.values())
    assert len({tuple(ids[:shortest]) for ids in logs.values()}) == 1
    assert {note_body(cluster.block(n, top)["certificate"]) for n in validators} == {
        note_body(cluster.block(validators[0], top)["certificate"])
    }
