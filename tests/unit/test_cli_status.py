"""`credledger status` says whether the network commits, and why not."""

from __future__ import annotations

from typing import Any

from credledger.cli.status import _lines

BASE: dict[str, Any] = {
    "version": "1",
    "origin": "o",
    "genesis": "00" * 32,
    "member": "m0.test",
    "role": "validator",
    "height": 4,
    "log": {"size": 1, "root": "x"},
    "checkpoint": None,
    "mempool": {"events": 0, "bytes": 0},
    "round": 0,
    "peers": 3,
    "syncing": False,
}


def test_a_committing_network_is_said_to_commit() -> None:
    lines = dict(_lines("http://n", {**BASE, "commit": {"ok": True, "reason": None}}))
    assert lines["commits"] == "yes"
    assert "catch-up" not in lines


def test_a_stalled_network_and_a_failing_catch_up_are_spelled_out() -> None:
    status = {
        **BASE,
        "commit": {"ok": False, "reason": "catch-up failing: at height 4 (from 4), peers at 9: p: block 5: HTTP 500"},
        "sync": {"peer_height": 9, "failure": "at height 4 (from 4), peers at 9: p: block 5: HTTP 500"},
    }
    lines = dict(_lines("http://n", status))
    assert lines["commits"] == "NO: catch-up failing: at height 4 (from 4), peers at 9: p: block 5: HTTP 500"
    assert lines["catch-up"] == "FAILING: at height 4 (from 4), peers at 9: p: block 5: HTTP 500"
