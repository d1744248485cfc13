"""Kill a process that is committing blocks with SIGKILL at random moments; the store must always reopen holding
an exact prefix of the chain, with every acknowledged block, and every root and proof must verify."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from credledger.ledger import merkle, smt
from credledger.ledger.events import decode_event
from credledger.ledger.state import cred_key
from credledger.ledger.storage.store import Store
from tests.conftest import PROJECT_ROOT
from tests.crash_chain import EVENTS_PER_BLOCK, NETWORK, events_for

KILLS = 50


def read_acknowledged(proc: subprocess.Popen[bytes], deadline: float) -> int:
    """Read committed heights the child printed until `deadline`; return the last one."""
    assert proc.stdout is not None
    last = 0
    buffer = b""
    fd = proc.stdout.fileno()
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        if lines:
            last = int(lines[-1])
    return last


def check_store(path: Path, acknowledged: int, checked: int) -> int:
    """Verify the reopened store; blocks above `checked` (and a few random older ones) are compared event by event."""
    store = Store(path)
    try:
        with store.snapshot() as snap:
            height = snap.height
            assert height >= acknowledged, f"block {acknowledged} was acknowledged but the store holds {height}"
            assert snap.log_size == height * EVENTS_PER_BLOCK
            root = snap.log_root()
            prev = NETWORK.genesis.hash()
            for h in range(1, height + 1):
                header = snap.header(h)
                assert header.prev_hash == prev
                prev = header.hash()
                assert snap.log_root(header.log_size) == header.log_root
                assert snap.state_root(h) == header.state_root
                if h <= checked and h % 7:
                    continue
                ids = [
                    decode_event(snap.entry(i)).id for i in range(header.log_size - EVENTS_PER_BLOCK, header.log_size)
                ]
                assert ids == [e.id for e in events_for(h)], f"block {h} holds other events"
            if height:
                rng = random.Random(height)
                for index in rng.sample(range(snap.log_size), min(5, snap.log_size)):
                    leaf = merkle.leaf_hash(snap.entry(index))
                    merkle.verify_inclusion(
                        leaf, index, snap.log_size, snap.inclusion_proof(index, snap.log_size), root
                    )
                key = cred_key(events_for(height)[0].payload.digest)  # type: ignore[union-attr]
                value, proof = snap.prove_state(key)
                smt.verify_proof(snap.header(height).state_root, key, value, proof)
            return height
    finally:
        store.close()


def test_sigkill_at_random_moments_leaves_an_exact_verifiable_prefix(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    rng = random.Random(20261122)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    heights = []
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crash_writer", str(path)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
        )
        try:
            # Let it start (imports take ~0.3 s), then kill it after a random extra moment.
            acknowledged = read_acknowledged(proc, time.monotonic() + 0.35 + rng.random() * 0.4)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        heights.append(check_store(path, acknowledged, heights[-1] if heights else 0))
    assert heights == sorted(heights), "the chain never shrinks"
    assert heights[-1] >= KILLS // 2, f"the writer made too little progress to exercise crashes: {heights}"
