"""Validator benchmark: one validator's ledger work per event, in one process, against the Ed25519 check inside it.

Every validator of a network admits each event once (a peer's relayed batch: one rules pass over one snapshot,
the signature checked), validates the proposal that carries it (the rules again, the state map's new root) and
commits it (the nodes computed at validation written, the log appended, the event indexed). Here a node's own
`LedgerApplication`, over a real LMDB store, does that for blocks of `--block` issue events that a second
application admits from a client and proposes; a quarter of the proposals are counted as its own to build, as on a
network of 4. Nothing else runs: no sockets, no consensus messages, no other process on its core. So this is the
least CPU a validator spends on an event. The Ed25519 checks of the same events are timed alone just before and just
after the validator's work on each block (the machine's speed drifts), and their mean is that block's signature
cost. All times are `time.process_time`; the table gives medians over the measured blocks.

What it bounds: if a validator spends W CPU-µs per event and S of them check its signature, then on any machine
the node benchmark's events per validator CPU-second ÷ Ed25519 verifications per core-second is at most S / W, and
so is committed events/s ÷ the bound (every validator checks every signature once; 4 validators on 2 cores).
Networking, consensus and contention only lower both.

Run ``python -m bench validator`` or ``python -m bench validator --blocks 40 --block 2000``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from credledger.ledger import domains
from credledger.ledger.block import CertifiedBlock
from credledger.ledger.events import Event, decode_event
from credledger.ledger.keys import verify_signature
from credledger.ledger.storage.store import Store
from credledger.node.application import Admitted, LedgerApplication
from credledger.node.mempool import Mempool
from tests.blocks import certify
from tests.factories import T0, Network, digest, issue, make_network

#: The share of proposals a validator builds on a network of this many validators.
VALIDATORS = 4


def _application(path: Path, network: Network, clock: list[float]) -> LedgerApplication:
    return LedgerApplication(
        Store(path), network.genesis, mempool=Mempool(max_events=1 << 20, max_bytes=1 << 32), clock=lambda: clock[0]
    )


def _verify_alone(events: Sequence[Event], public_key: bytes) -> None:
    """Each event's Ed25519 check exactly as the rules make it, and nothing else."""
    for event in events:
        for sig in event.signatures:
            verify_signature(public_key, domains.EVENT + event.signed_bytes(), sig.sig)


def _one_block(
    network: Network, proposer: LedgerApplication, node: LedgerApplication, height: int, batch: list[bytes]
) -> dict[str, float]:
    """Take block `height` of `batch` through both applications; return the validator's CPU seconds for each part
    of its work on it, and for the Ed25519 checks of its events alone."""
    proposer.admit_batch(batch)
    events = [decode_event(raw) for raw in batch]
    public_key = network["m0.test"].issuer.public.raw
    # The Ed25519 checks alone, just before and just after the validator's work on the same events: the machine's
    # speed drifts from minute to minute, and their mean brackets the work in time.
    alone = time.process_time()
    _verify_alone(events, public_key)
    started = time.process_time()
    outcomes = node.admit_batch(batch, source="peer")
    admitted = time.process_time()
    block = proposer.build_block(height, 0, proposer.now_ms(), network.ids[0])
    built = time.process_time()
    if block.header.event_count != len(batch) or not all(isinstance(o, Admitted) for o in outcomes):
        raise AssertionError(f"block {height}: not every event was admitted and proposed")
    certified = CertifiedBlock(block, certify(network, block))
    validating = time.process_time()
    node.validate_block(block)
    validated = time.process_time()
    node.commit(certified)
    committed = time.process_time()
    _verify_alone(events, public_key)
    verified = time.process_time()
    proposer.validate_block(block)
    proposer.commit(certified)
    return {
        "admit": admitted - started,
        "build": built - admitted,
        "validate": validated - validating,
        "commit": committed - validated,
        "ed25519": (started - alone + verified - committed) / 2,
    }


def _work(seconds: dict[str, float]) -> float:
    """A validator's share of the work on a block: its admission, validation and commit, and a quarter of a build."""
    return seconds["admit"] + seconds["validate"] + seconds["commit"] + seconds["build"] / VALIDATORS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench validator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=20, help="blocks measured (medians are reported)")
    parser.add_argument("--block", type=int, default=1000, help="issue events per block")
    parser.add_argument("--warm", type=int, default=5, help="blocks committed before measuring")
    args = parser.parse_args(argv)
    if min(args.blocks, args.block) < 1 or args.warm < 0:
        parser.error("--blocks and --block must be positive, --warm not negative")

    network = make_network(VALIDATORS)
    total = args.warm + args.blocks
    print(f"signing {total * args.block:,} issue events ...", flush=True)
    batches = [
        [
            issue(network["m0.test"], digest(f"bench/validator/{height}/{i}"), time_ms=T0 + 1000 + height).encode()
            for i in range(args.block)
        ]
        for height in range(total)
    ]
    measured: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="credledger-bench-validator-") as tmp:
        clock = [T0 / 1000 + 5]
        proposer = _application(Path(tmp) / "proposer", network, clock)
        node = _application(Path(tmp) / "validator", network, clock)
        try:
            for height, batch in enumerate(batches, start=1):
                seconds = _one_block(network, proposer, node, height, batch)
                clock[0] += 1
                if height > args.warm:
                    measured.append(seconds)
        finally:
            proposer.store.close()
            node.store.close()

    size: int = args.block

    def us(name: str) -> float:
        return statistics.median(block[name] for block in measured) / size * 1e6

    work = statistics.median(_work(block) for block in measured) / size * 1e6
    ceilings = [block["ed25519"] / _work(block) for block in measured]
    print(
        f"one validator's ledger work, {args.blocks} blocks of {args.block:,} issue events after {args.warm} "
        f"(state of {total * args.block:,} credentials at the end), CPU µs per event (medians):"
    )
    rows = [
        ("admitting a peer's relayed batch (decode, rules, Ed25519)", us("admit")),
        ("validating the proposal (rules, state root)", us("validate")),
        ("committing the block", us("commit")),
        (f"building a proposal, 1 in {VALIDATORS} blocks (rules, state root)", us("build") / VALIDATORS),
        ("all of it", work),
        ("the Ed25519 checks alone, same events", us("ed25519")),
        ("outside the Ed25519 checks", work - us("ed25519")),
    ]
    for label, value in rows:
        print(f"  {label:66} {value:8.1f}")
    print(
        f"  {'ceiling of both node ratios: Ed25519 / all, per block':66} {statistics.median(ceilings):8.2f}"
        f"   ({min(ceilings):.2f}-{max(ceilings):.2f}; targets: 0.5 per validator CPU-second, 0.6 of the bound)"
    )
    return 0
