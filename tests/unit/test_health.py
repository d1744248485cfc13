"""`node.health`: whether the network commits as one node sees it, and why not in words an operator can act on."""

from __future__ import annotations

from dataclasses import replace

from credledger.ledger.genesis import Params
from credledger.node.health import Observation, RoundView, stall_after_ms, why_not_committing

PARAMS = Params()
NOW = 10_000_000
ROUND = RoundView(
    height=8,
    round=3,
    proposer="m2.test",
    proposal_seen=False,
    prevoted_power=2,
    precommitted_power=1,
    total_power=4,
    quorum=3,
)
FRESH = Observation(
    now_ms=NOW,
    height=7,
    last_block_ms=NOW - 1000,
    catch_up_failure=None,
    peer_height=7,
    unreachable=(),
    round=ROUND,
)


def test_a_network_that_made_a_block_recently_commits() -> None:
    assert why_not_committing(FRESH, PARAMS) is None


def test_a_stalled_round_names_the_missing_votes_and_the_unreachable_peers() -> None:
    stalled = replace(FRESH, last_block_ms=NOW - stall_after_ms(PARAMS) - 500, unreachable=("m2.test", "m3.test"))
    reason = why_not_committing(stalled, PARAMS)
    assert reason == (
        f"no block for {(stall_after_ms(PARAMS) + 500) / 1000:.1f} s; height 8 round 3: proposal not received from "
        "m2.test, prevotes for 2 of 4 power, precommits for 1 of 4, need more than 2/3 (3); "
        "peers unreachable: m2.test, m3.test"
    )


def test_a_node_behind_its_peers_says_from_where_and_to_where() -> None:
    behind = replace(FRESH, height=3, peer_height=90)
    assert why_not_committing(behind, PARAMS) == "behind: catching up from height 3, peers' height 90"


def test_a_failing_catch_up_comes_first() -> None:
    failing = replace(FRESH, height=3, peer_height=90, catch_up_failure="at height 3 (from 3), peers at 90: x")
    assert why_not_committing(failing, PARAMS) == "catch-up failing: at height 3 (from 3), peers at 90: x"


def test_a_replica_that_reaches_no_peer_says_so() -> None:
    alone = replace(FRESH, round=None, peer_height=None, last_block_ms=0)
    reason = why_not_committing(alone, PARAMS)
    assert reason is not None and reason.endswith("; no peer answers")
