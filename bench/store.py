"""Chain store benchmark: bytes on disk per event and memory while committing 1,000,000 events.

Four member institutions issue credentials; every block of `--block` events is built by `Store.build_block`,
certified by all four node keys and committed with `Store.commit_block` -- the same path a node takes, rules
and all, one durable LMDB transaction per block. Event signatures are made in a process pool beforehand and
marked verified (as a node does after admission), so the figures are about storage, not Ed25519.

Reports committed events/s (median over blocks), bytes on disk per event, and heap memory at N/4, N/2 and N
events, which must stay flat: nothing of the log or the state is held in memory.

Run ``python -m bench store`` or ``python -m bench store --events 100000``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bench.memory import heap_mib, peak_rss_mib
from credledger.ledger import merkle
from credledger.ledger.block import sign_checkpoint
from credledger.ledger.events import Event, Issue, MemberAdd, UnsignedEvent, decode_event, sign_event
from credledger.ledger.genesis import Genesis, Params
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import SignedNote
from credledger.ledger.storage.store import Store

ORIGIN = "credledger.bench/store"
T0 = 1_767_225_600_000
MEMBERS = ("a.bench", "b.bench", "c.bench", "d.bench")
BLOCK_INTERVAL_MS = 1_000


def _key(member: str, role: str) -> SigningKey:
    return SigningKey(member, hashlib.sha256(f"bench/{member}/{role}".encode()).digest())


def _genesis() -> Genesis:
    members = [MemberAdd(m, m.upper(), 1, _key(m, "node").public.raw, (_key(m, "issuer").public.raw,)) for m in MEMBERS]
    return Genesis.of(ORIGIN, T0, members, Params(max_block_events=10_000))


def _sign_block(height: int, count: int) -> list[bytes]:
    """The encoded, signed issue events of block `height` (deterministic)."""
    when = T0 + height * BLOCK_INTERVAL_MS
    out = []
    for i in range(count):
        member = MEMBERS[i % len(MEMBERS)]
        digest = hashlib.sha256(f"credential/{height}/{i}".encode()).digest()
        unsigned = UnsignedEvent(ORIGIN, when, Issue(digest, member, None, ()))
        out.append(sign_event(unsigned, _key(member, "issuer")).encode())
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--block", type=int, default=2_000)
    parser.add_argument("--dir", default=None, help="where to put the LMDB files (default: a temp dir)")
    args = parser.parse_args(argv)
    genesis = _genesis()
    node_keys = [_key(m, "node") for m in MEMBERS]
    blocks = args.events // args.block
    marks = {blocks // 4, blocks // 2, blocks}
    heap: dict[int, float] = {}
    rates: list[float] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, ProcessPoolExecutor(2) as pool:
        store = Store(Path(tmp) / "ledger")
        store.initialize(genesis)
        # Sign ahead of the store in the pool, a few blocks at a time.
        ahead = 8
        futures = {h: pool.submit(_sign_block, h, args.block) for h in range(1, min(blocks, ahead) + 1)}
        started = time.perf_counter()
        for height in range(1, blocks + 1):
            encoded = futures.pop(height).result()
            if height + ahead <= blocks:
                futures[height + ahead] = pool.submit(_sign_block, height + ahead, args.block)
            events: list[Event] = [decode_event(raw) for raw in encoded]
            verified = frozenset(merkle.leaf_hash(raw) for raw in encoded)
            t = time.perf_counter()
            block, selection = store.build_block(
                events, proposer=MEMBERS[0], round=0, time_ms=T0 + height * BLOCK_INTERVAL_MS, verified=verified
            )
            assert not selection.refused, selection.refused[:1]
            body = block.header.checkpoint(0).body()
            note = SignedNote(body, tuple(sign_checkpoint(block.header, 0, k) for k in node_keys)).format()
            store.commit_block(block, note, verified=verified)
            rates.append(args.block / (time.perf_counter() - t))
            if height in marks:
                heap[height * args.block] = heap_mib()
        elapsed = time.perf_counter() - started
        disk = sum(f.stat().st_size for f in (Path(tmp) / "ledger").iterdir())
        with store.snapshot() as snap:
            assert snap.log_size == blocks * args.block
        store.close()
    total = blocks * args.block
    print(f"credledger store: {total:,} issue events in {blocks:,} blocks of {args.block:,}, 4 validators")
    print(f"  build + certify + commit, events/s (median per block)   {statistics.median(rates):>12,.0f}")
    print(f"  wall time incl. waiting for signatures                  {elapsed:>12,.1f} s")
    print(f"  bytes on disk per event (all databases)                  {disk / total:>12,.0f}")
    for events, mib in sorted(heap.items()):
        print(f"  heap (anon RSS) MiB at {events:>9,} events                 {mib:>12,.1f}")
    print(f"  peak RSS MiB (includes LMDB pages mapped from the file)  {peak_rss_mib():>12,.1f}")
    return 0
