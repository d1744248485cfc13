"""Kill a process committing blocks with a bounded state history at random moments (pruning runs in every commit):
the store must always reopen holding an exact prefix of the chain, with every acknowledged block, the state of
every height in its history provable, older heights refused with `StatePruned`, and no node stored that no kept
version reaches."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from credledger.ledger import merkle, smt
from credledger.ledger.errors import StatePruned
from credledger.ledger.events import Issue, decode_event
from credledger.ledger.state import cred_key
from credledger.ledger.storage.schema import SMT_ROOTS
from credledger.ledger.storage.store import Store
from tests.conftest import PROJECT_ROOT
from tests.crash_chain import EVENTS_PER_BLOCK, NETWORK, events_for
from tests.integration.test_crash_safety import read_acknowledged
from tests.property.test_state_history_properties import reachable, stored_refs

KILLS = 30
HISTORY = 4
#: Longest wait for the writer's first commit.
STARTUP_S = 30.0


def credential_key(height: int, j: int = 0) -> bytes:
    payload = events_for(height)[j].payload
    assert isinstance(payload, Issue)
    return cred_key(payload.digest)


def check_store(path: Path, acknowledged: int) -> int:
    """Verify the reopened store: the chain prefix, the log, the kept state heights and the pruned ones."""
    store = Store(path, state_history=HISTORY)
    try:
        with store.snapshot() as snap:
            height = snap.height
            assert height >= acknowledged, f"block {acknowledged} was acknowledged but the store holds {height}"
            assert snap.log_size == height * EVENTS_PER_BLOCK
            oldest = snap.oldest_state_height
            assert oldest == max(0, height - HISTORY + 1)
            prev = NETWORK.genesis.hash()
            for h in range(1, height + 1):
                header = snap.header(h)
                assert header.prev_hash == prev
                prev = header.hash()
                assert snap.log_root(header.log_size) == header.log_root
                if h < oldest:
                    with pytest.raises(StatePruned):
                        snap.prove_state(credential_key(h), h)
                    continue
                assert snap.state_root(h) == header.state_root
                # Proved as of h: this block's credential is there, the next block's is not yet.
                for key, present in ((credential_key(h), True), (credential_key(h + 1), False)):
                    value, proof = snap.prove_state(key, h)
                    assert (value is not None) == present
                    smt.verify_proof(header.state_root, key, value, proof)
            if height:
                index = random.Random(height).randrange(snap.log_size)
                leaf = merkle.leaf_hash(snap.entry(index))
                proof = snap.inclusion_proof(index, snap.log_size)
                merkle.verify_inclusion(leaf, index, snap.log_size, proof, snap.log_root())
                assert decode_event(snap.entry(0)).id == events_for(1)[0].id
        env = store.env
        with env.begin() as txn:
            roots = [bytes(v) for _, v in txn.cursor(db=env.open_db(SMT_ROOTS, txn=txn, create=False))]
            assert stored_refs(env, txn) == reachable(env, txn, roots), "nodes outside the kept history remain"
        return height
    finally:
        store.close()


def test_sigkill_while_pruning_leaves_a_prefix_with_every_kept_height_provable(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    rng = random.Random(20261126)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    heights = []
    for _ in range(KILLS):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.crash_writer", str(path), str(HISTORY)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
        )
        try:
            # Wait for its first commit (a loaded machine can take seconds to import), then kill it a random moment
            # later: anywhere in a commit, its pruning included.
            acknowledged = 0
            started = time.monotonic()
            while not acknowledged and time.monotonic() - started < STARTUP_S:
                acknowledged = read_acknowledged(proc, time.monotonic() + 0.05)
            acknowledged = max(acknowledged, read_acknowledged(proc, time.monotonic() + rng.random() * 0.3))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        heights.append(check_store(path, acknowledged))
    assert heights == sorted(heights), "the chain never shrinks"
    assert heights[-1] >= 2 * HISTORY, f"the writer made too little progress to prune: {heights}"
