"""Consensus benchmark: blocks/s and events/s committed by N validators in one process, with zero latency.

Every validator is a real `Machine` over its own LMDB `Store` (the simulator's `LedgerApp`); messages travel as
encoded bytes through one in-process FIFO, and each validator executes its actions as a node's driver would. Each
height, `--events` freshly signed issue events reach every validator's waiting list (admission checks their
signatures once per validator); the height's proposer puts them in its block. CPU time per committed block is
split into consensus signing, consensus signature verification, the ledger (admission, building, validating and
committing blocks: rules, Merkle log, state map, LMDB, the store's own certificate check), the wire codec, and the
state machine itself (the rest), all in CPU time; wall time also includes LMDB's fsync per committed block.
Run ``python -m bench.consensus --heights 200 --events 100``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from credledger.consensus import machine as consensus_machine
from credledger.consensus.actions import Action, Broadcast, Decide
from credledger.consensus.machine import Machine
from credledger.consensus.proposer import ProposerSchedule
from credledger.consensus.timeouts import TimeoutConfig
from credledger.ledger.events import Event
from credledger.ledger.keys import SigningKey
from credledger.ledger.votes import decode_message, encode_message, verify_vote
from tests.factories import T0, digest, issue, make_network
from tests.sim.app import LedgerApp

CATEGORIES = ("signing", "verification", "ledger", "codec")


@dataclass
class Timer:
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0.0))

    def wrap(self, category: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[category] += time.process_time() - started

        return timed


@contextmanager
def instrumented(timer: Timer) -> Iterator[None]:
    """Time consensus signing and verification in place (restored on exit); neither calls the other."""
    sign = SigningKey.sign
    SigningKey.sign = timer.wrap("signing", sign)  # type: ignore[method-assign]
    setattr(consensus_machine, "verify_vote", timer.wrap("verification", verify_vote))  # noqa: B010
    try:
        yield
    finally:
        SigningKey.sign = sign  # type: ignore[method-assign]
        setattr(consensus_machine, "verify_vote", verify_vote)  # noqa: B010


@dataclass
class Figures:
    validators: int
    events_per_block: int
    heights: int
    wall: float
    cpu: float
    split: dict[str, float]

    @property
    def blocks_per_s(self) -> float:
        return self.heights / self.wall

    @property
    def events_per_s(self) -> float:
        return self.heights * self.events_per_block / self.wall


class _Validator:
    def __init__(self, name: str, key: SigningKey, app: LedgerApp, timer: Timer) -> None:
        self.name, self.app, self.timer = name, app, timer
        self.machine = Machine(
            origin=app.genesis.origin,
            app=app,
            schedule=ProposerSchedule.genesis(app.validators(1)),
            signer=key,
            timeouts=TimeoutConfig(heartbeat_ms=0),
        )


def run(validators: int, heights: int, events_per_block: int) -> Figures:
    network = make_network(validators)
    timer = Timer()
    with tempfile.TemporaryDirectory(prefix="credledger-bench-") as tmp:
        nodes = [_Validator(m, network[m].node, LedgerApp(network, Path(tmp) / m), timer) for m in network.ids]
        batches = [
            [
                issue(network[network.ids[i % validators]], digest(f"bench/{h}/{i}"), time_ms=T0 + h * 10)
                for i in range(events_per_block)
            ]
            for h in range(1, heights + 1)
        ]
        for node in nodes:  # the ledger's costs, timed where the driver calls them
            node.app.build_block = timer.wrap("ledger", node.app.build_block)  # type: ignore[method-assign]
            node.app.validate_block = timer.wrap("ledger", node.app.validate_block)  # type: ignore[method-assign]
        with instrumented(timer):
            wall0, cpu0 = time.perf_counter(), time.process_time()
            _drive(nodes, batches, timer)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        for node in nodes:
            node.app.close()
    split = dict(timer.seconds)
    split["state machine"] = max(0.0, cpu - sum(split.values()))
    return Figures(validators, events_per_block, heights, wall, cpu, split)


def _drive(nodes: list[_Validator], batches: list[list[Event]], timer: Timer) -> None:
    bus: deque[tuple[_Validator, bytes]] = deque()
    by_name = {n.name: n for n in nodes}

    def execute(node: _Validator, actions: list[Action], now: int) -> None:
        for action in actions:
            if isinstance(action, Broadcast):
                started = time.process_time()
                data = encode_message(action.message)
                timer.seconds["codec"] += time.process_time() - started
                bus.extend((other, data) for other in nodes if other is not node)
            elif isinstance(action, Decide):
                started = time.process_time()
                node.app.commit(action.certified)
                timer.seconds["ledger"] += time.process_time() - started
                height = action.certified.header.height
                if height < len(batches):
                    admit(node, batches[height], now)
                    execute(node, node.machine.start(height + 1, now), now)

    def admit(node: _Validator, events: list[Event], now: int) -> None:
        started = time.process_time()
        for event in events:
            node.app.submit(event, now)
        timer.seconds["ledger"] += time.process_time() - started

    now = T0 + 10
    for node in nodes:
        admit(node, batches[0], now)
    for node in nodes:
        execute(node, node.machine.start(1, now), now)
    while bus:
        node, data = bus.popleft()
        started = time.process_time()
        message = decode_message(data)
        timer.seconds["codec"] += time.process_time() - started
        if node.machine.height == message.height and not node.machine.decided:
            now += 1
            execute(node, node.machine.handle(message, now), now)
    for name, node in by_name.items():
        if node.app.height != len(batches):
            raise RuntimeError(f"{name} stopped at height {node.app.height} of {len(batches)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.consensus", description=__doc__)
    parser.add_argument("--heights", type=int, default=100, help="blocks to commit per configuration")
    parser.add_argument("--events", type=int, nargs="+", default=[0, 100], help="events per block")
    parser.add_argument("--validators", type=int, nargs="+", default=[4, 7], help="validator counts")
    args = parser.parse_args(argv)
    print(
        f"{'validators':>10} {'events/blk':>10} {'blocks/s':>9} {'events/s':>9} {'ms CPU/blk':>10}  "
        "CPU per block: signing / verification / ledger / codec / state machine (ms)"
    )
    for n in args.validators:
        for events in args.events:
            f = run(n, args.heights, events)
            per_block = {k: 1000 * v / f.heights for k, v in f.split.items()}
            parts = " / ".join(f"{per_block[k]:.2f}" for k in (*CATEGORIES[:2], "ledger", "codec", "state machine"))
            print(
                f"{n:>10} {events:>10} {f.blocks_per_s:>9.1f} {f.events_per_s:>9.0f} "
                f"{1000 * f.cpu / f.heights:>10.2f}  {parts}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
