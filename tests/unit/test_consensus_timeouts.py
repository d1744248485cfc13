"""Consensus timeouts: how they grow with the round, and how the genesis parameters set them.

That the consensus package stays pure (no I/O, no clock, no randomness) is pinned by test_layering.py."""

from __future__ import annotations

import pytest

from credledger.consensus.timeouts import TimeoutConfig, TimeoutKind
from credledger.ledger.genesis import Params


def test_timeouts_grow_with_the_round_up_to_the_cap() -> None:
    config = TimeoutConfig()
    assert [config.delay_ms(TimeoutKind.PROPOSE, r) for r in (0, 1, 10)] == [3_000, 3_500, 8_000]
    assert config.delay_ms(TimeoutKind.PRECOMMIT, 1_000) == 60_000
    assert config.delay_ms(TimeoutKind.HEARTBEAT, 9) == config.heartbeat_ms
    assert config.delay_ms(TimeoutKind.REBROADCAST, 2) == 2_000


def test_timeouts_follow_the_genesis_parameters() -> None:
    params = Params(timeout_propose_ms=1_200, timeout_prevote_delta_ms=50, heartbeat_ms=700)
    config = TimeoutConfig.from_params(params)
    assert config.delay_ms(TimeoutKind.PROPOSE, 0) == 1_200
    assert config.delay_ms(TimeoutKind.PREVOTE, 2) == params.timeout_prevote_ms + 100
    assert config.heartbeat_ms == 700
    with pytest.raises(ValueError, match="must be a non-negative integer"):
        TimeoutConfig(propose_ms=-1)
