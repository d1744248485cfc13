"""The consensus package stays a pure state machine: no I/O, no clock, no randomness of its own (DESIGN §1)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from credledger.consensus.timeouts import TimeoutConfig, TimeoutKind
from credledger.ledger.genesis import Params

CONSENSUS = Path(__file__).resolve().parents[2] / "consensus"
FORBIDDEN = {"asyncio", "aiohttp", "lmdb", "socket", "time", "random", "threading", "node", "cli", "os"}


@pytest.mark.parametrize("path", sorted(CONSENSUS.glob("*.py")), ids=lambda p: p.name)
def test_consensus_module_imports_nothing_impure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.removeprefix("credledger.").split(".")[0] for name in imported} & FORBIDDEN == set()


def test_importing_the_machine_loads_no_io_library() -> None:
    code = (
        "import sys, credledger.consensus.machine; "
        "print(sorted(m for m in ('asyncio', 'aiohttp', 'lmdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


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
