"""A fake peer with a member's real node key sends mutated consensus and gossip frames to a real node process:
the node drops or refuses every one, keeps its safety record, and goes on committing with the honest validators.

Three of four validators run (m0, m1, m2: exactly a quorum); the fake peer speaks as m3 with m3's real node key,
so its re-signed statements pass the signature check and meet the consensus rules themselves.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fuzz.peer import fuzz_peer
from tests.integration.cluster import Cluster
from tests.integration.conftest import CLUSTERS

#: Frames the fake peer sends in the suite (`python -m tests.fuzz peers --frames N` sends more).
FRAMES = 400
SEED = 20261126


async def test_a_node_fed_mutated_frames_by_an_authenticated_peer_keeps_committing_and_its_safety_record(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    cluster = Cluster.create(tmp_path / "net")
    request.node.stash.setdefault(CLUSTERS, []).append(cluster)
    honest = cluster.validators[:3]
    target = honest[0]
    try:
        await asyncio.to_thread(cluster.start, *honest)
        await asyncio.to_thread(cluster.wait_height, 1)
        before = cluster.metric(target, "credledger_peer_errors_total", reason="malformed")
        report = await fuzz_peer(cluster, target, FRAMES, SEED)
        await asyncio.to_thread(cluster.wait_progress, 3, honest)
        assert report.still_connected
        assert target.running
        assert report.received > 0 and report.sent["resigned"] > 0 and report.sent["mutated"] > 0
        assert cluster.metric(target, "credledger_peer_errors_total", reason="malformed") > before
        # One history on every honest node, and the credential is valid on each.
        height = min(cluster.height(n) for n in honest)
        for h in range(1, height + 1):
            assert len({str(cluster.block(n, h)["header"]) for n in honest}) == 1, f"nodes differ at height {h}"
        assert {cluster.verdict(n, report.credential).status for n in honest} == {"valid"}
        # The safety record the node kept reads back: it restarts and votes on.
        await asyncio.to_thread(cluster.stop, target)
        await asyncio.to_thread(cluster.start, target)
        await asyncio.to_thread(cluster.wait_progress, 2, honest)
    finally:
        cluster.close()
    assert cluster.logged_errors() == []
