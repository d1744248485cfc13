"""Whether the network commits, as one node sees it, and in words an operator can act on (`GET /v1/status`).

A pure function over what the node knows: its chain's last block, its catch-up state, the peers' heights, and,
for a validator, the votes its consensus machine holds for the current round. It answers None while blocks keep
coming, else the first reason that applies, in this order: catching up fails; this node is behind its peers;
no block came for longer than a heartbeat and a full round of timeouts (twice over), and here is what the round
is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from credledger.ledger.genesis import Params


@dataclass(frozen=True, slots=True)
class RoundView:
    """A validator's view of the round in progress."""

    height: int
    round: int
    proposer: str
    proposal_seen: bool
    prevoted_power: int
    precommitted_power: int
    total_power: int
    quorum: int


@dataclass(frozen=True, slots=True)
class Observation:
    """What a node knows about the network's progress, at `now_ms`."""

    now_ms: int
    height: int
    #: Time of the last committed block (the genesis time at height 0).
    last_block_ms: int
    #: Why catching up failed in its last round, if it did.
    catch_up_failure: str | None
    #: The highest height a reachable peer reported, if any answered.
    peer_height: int | None
    #: Peers (validators' member ids or URLs) this node cannot reach now.
    unreachable: tuple[str, ...]
    #: The consensus round in progress (validators only).
    round: RoundView | None


def stall_after_ms(params: Params) -> int:
    """How long without a block means the network is not committing: twice a heartbeat plus a round-0 timeout
    of every step (a healthy network commits at least once per heartbeat)."""
    return 2 * (
        params.heartbeat_ms + params.timeout_propose_ms + params.timeout_prevote_ms + params.timeout_precommit_ms
    )


def why_not_committing(seen: Observation, params: Params) -> str | None:
    """None while the network commits as far as this node can tell; otherwise why it does not."""
    if seen.catch_up_failure is not None:
        return f"catch-up failing: {seen.catch_up_failure}"
    if seen.peer_height is not None and seen.peer_height > seen.height + 1:
        return f"behind: catching up from height {seen.height}, peers' height {seen.peer_height}"
    idle_ms = seen.now_ms - seen.last_block_ms
    if idle_ms <= stall_after_ms(params):
        return None
    parts = [f"no block for {idle_ms / 1000:.1f} s"]
    view = seen.round
    if view is not None:
        proposal = "received" if view.proposal_seen else f"not received from {view.proposer}"
        parts.append(
            f"height {view.height} round {view.round}: proposal {proposal}, prevotes for {view.prevoted_power} "
            f"of {view.total_power} power, precommits for {view.precommitted_power} of {view.total_power}, need "
            f"more than 2/3 ({view.quorum})"
        )
    if seen.unreachable:
        parts.append(f"peers unreachable: {', '.join(seen.unreachable)}")
    elif view is None and seen.peer_height is None:
        parts.append("no peer answers")
    return "; ".join(parts)
