"""Integration fixtures: a 4-validator cluster per test, killed at the end whatever happened, and the nodes' logs
printed when a test fails."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.integration.cluster import Cluster, running

#: The clusters a test uses, whose node logs are attached to its report if it fails.
CLUSTERS = pytest.StashKey[list[Cluster]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    if report.failed:
        for cluster in item.stash.get(CLUSTERS, []):
            for node in cluster.nodes:
                report.sections.append((f"log of {node.id} ({node.url})", Cluster.tail(node, 60)))
    return report


@pytest.fixture
def cluster(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """Four running validators m0.test..m3.test with a fresh genesis."""
    network = Cluster.create(tmp_path / "net")
    request.node.stash.setdefault(CLUSTERS, []).append(network)
    with running(network):
        yield network
