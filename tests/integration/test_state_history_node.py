"""Node processes running with a small `[store] state_history_blocks`: bundles as of the kept heights verify, older
heights are 410 naming the oldest kept, a validator that joins late catches up from pruned peers, and the audit of
a running node's data directory replays from genesis clean."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from credledger.cli.main import main
from credledger.ledger.bundle import Bundle, verify_bundle
from tests.factories import digest
from tests.integration.cluster import Cluster, Node

HISTORY = 3
CONFIG = f"\n[store]\nstate_history_blocks = {HISTORY}\n"
ISSUES = 8


def get_problem(node: Node, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{node.url}{path}", timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_nodes_with_a_small_state_history_serve_sync_and_audit(tmp_path: Path) -> None:
    net = Cluster.create(tmp_path / "net", extra_config=CONFIG)
    first, late = net.validators[:3], net.validators[3]
    try:
        net.start(*first)
        for i in range(ISSUES):  # one block each: every submission waits for its commit
            net.submit(first[i % 3], net.issue("m0.test", digest(f"h{i}")))
        node = first[0]
        top = net.height(node)
        assert top >= ISSUES
        net.wait_height(top, first)
        status, problem = get_problem(node, f"/v1/credentials/{digest('h0').hex()}?height=1")
        assert status == 410, problem
        assert problem["type"] == "urn:credledger:problem:state-pruned"
        oldest = problem["oldest_height"]
        assert top - HISTORY + 1 <= oldest
        status, bundle = get_problem(node, f"/v1/credentials/{digest('h0').hex()}?height={oldest}")
        assert status == 200, bundle
        verdict = verify_bundle(Bundle.from_json(json.dumps(bundle)), net.genesis)
        assert (verdict.height, verdict.status) == (oldest, "valid")
        # The latest bundle of every credential, the first one's included, verifies as before.
        for i in range(ISSUES):
            assert net.verdict(node, digest(f"h{i}")).status == "valid"
        assert net.block(node, 1)["height"] == 1  # blocks and certificates of pruned heights stay

        # A validator with an empty data directory catches up from peers that no longer keep old state.
        net.start(late)
        net.wait_height(top, [late])
        assert net.verdict(late, digest("h0")).status == "valid"
        status, problem = get_problem(late, f"/v1/credentials/{digest('h0').hex()}?height=1")
        assert status == 410 and problem["oldest_height"] > 1

        # The audit of a running node's data directory replays every block from genesis.
        code = main(
            [
                "audit",
                "--data-dir",
                str(node.directory / "data"),
                "--genesis",
                str(net.root / "genesis.json"),
                "--state",
                str(tmp_path / "audit"),
                "--no-progress",
                "--workers",
                "0",
            ]
        )
        assert code == 0
    finally:
        net.close()
    errors = net.logged_errors()
    assert not errors, "\n".join(errors[:10])
