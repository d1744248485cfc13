"""Chain store benchmark: bytes on disk per event and memory while committing 1,000,000 events.

Four member institutions issue credentials; every block of `--block` events is built by `Store.build_block`,
certified by all four node keys and committed with `Store.commit_block` -- the same path a node takes, rules
and all, one durable LMDB transaction per block. Event signatures are made in a process pool beforehand and
marked verified (as a node does after admission), so the figures are about storage, not Ed25519.

Reports committed events/s (median over blocks), bytes on disk per event, and heap memory at N/4, N/2 and N
events. Nothing of the log or the state is held in memory, but LMDB keeps a buffer for every page a write
transaction copied, for reuse by the next one, until the environment is closed: the heap holds the pages of the
largest commit so far. A commit with a bounded state history copies about one page per state node its prune deletes,
and it deletes about log2(state keys / events per block) per event (18,000 for a block of 2,000 at 1M keys), so that
part grows with the state. The heap is read again at the end, once with freed memory given back to the system and
once more after closing the store, which tells LMDB's page buffers from the rest.

Bytes on disk are measured three ways, because LMDB never shrinks its file but reuses the pages it frees: the file
over all events; the file's growth per event over the second half of the run (the steady state, once pruning
frees as many pages per block as the block needs anew); and the pages the databases use (file minus free pages),
broken down by database so each part of the cost is named.

Run ``python -m bench store`` or ``python -m bench store --events 100000``; ``--state-history-blocks N`` runs the
store with a bounded state history of N blocks (default 0: every version kept).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.memory import heap_mib, peak_rss_mib, return_freed_memory
from credledger.ledger import merkle
from credledger.ledger.block import sign_checkpoint
from credledger.ledger.events import Event, Issue, MemberAdd, UnsignedEvent, decode_event, sign_event
from credledger.ledger.genesis import Genesis, Params
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import SignedNote
from credledger.ledger.storage import schema
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


def _file_bytes(store: Store) -> int:
    """The size of the LMDB data file: every page up to the last one used, free or not."""
    return (int(store.env.info()["last_pgno"]) + 1) * int(store.env.stat()["psize"])


def _used_bytes(store: Store) -> dict[str, int]:
    """Bytes in pages each database uses (branch, leaf and overflow pages), by database name; the state map's
    internal nodes, one database per depth, summed under one name."""
    env = store.env
    used: dict[str, int] = {}
    depths = set(schema.SMT_DEPTHS)
    with env.begin() as txn:
        for name in schema.ALL_DATABASES:
            stat = txn.stat(env.open_db(name, txn=txn, create=False))
            pages = stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]
            label = "smt/nodes/* (by depth)" if name in depths else name.decode()
            used[label] = used.get(label, 0) + pages * stat["psize"]
    return used


@dataclass(frozen=True, slots=True)
class _Figures:
    blocks: int
    block: int
    history: int | None
    rates: list[float]
    elapsed: float
    disk: int
    file_at: dict[int, int]
    used: dict[str, int]
    heap: dict[int, float]
    #: The heap at the end with freed memory given back to the system, store open and closed (None: no way to).
    heap_open: float | None
    heap_closed: float | None


def _report(run: _Figures) -> None:
    total = run.blocks * run.block
    half = run.blocks // 2 * run.block
    kept = "every version" if run.history is None else f"the last {run.history:,} blocks"
    print(f"credledger store: {total:,} issue events in {run.blocks:,} blocks of {run.block:,}, 4 validators")
    print(f"  state history kept: {kept}")
    print(f"  build + certify + commit, events/s (median per block)   {statistics.median(run.rates):>12,.0f}")
    print(f"  wall time incl. waiting for signatures                  {run.elapsed:>12,.1f} s")
    print(f"  bytes on disk per event (all databases)                  {run.disk / total:>12,.0f}")
    if half and total > half:
        growth = (run.file_at[total] - run.file_at[half]) / (total - half)
        print(f"  file growth per event over the second half (steady)      {growth:>12,.0f}")
    print(f"  bytes in used pages per event (file minus free pages)    {sum(run.used.values()) / total:>12,.0f}")
    for name, size in sorted(run.used.items(), key=lambda item: -item[1]):
        if size:
            print(f"    {name:<24} {size / total:>8,.1f}")
    for events, mib in sorted(run.heap.items()):
        print(f"  heap (anon RSS) MiB at {events:>9,} events                 {mib:>12,.1f}")
    if run.heap_open is not None and run.heap_closed is not None:
        print(f"  heap MiB at the end, freed memory given back (malloc_trim){run.heap_open:>12,.1f}")
        print(f"  heap MiB after closing the store (frees LMDB's buffers)  {run.heap_closed:>12,.1f}")
    print(f"  peak RSS MiB (includes LMDB pages mapped from the file)  {peak_rss_mib():>12,.1f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench store", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--block", type=int, default=2_000)
    parser.add_argument("--dir", default=None, help="where to put the LMDB files (default: a temp dir)")
    parser.add_argument(
        "--state-history-blocks",
        type=int,
        default=0,
        help="keep the state map's versions of the last N blocks only (default 0: keep every version)",
    )
    args = parser.parse_args(argv)
    if args.dir is not None:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    history = args.state_history_blocks or None
    genesis = _genesis()
    node_keys = [_key(m, "node") for m in MEMBERS]
    blocks = args.events // args.block
    marks = {blocks // 4, blocks // 2, blocks}
    heap: dict[int, float] = {}
    file_at: dict[int, int] = {}
    rates: list[float] = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp, ProcessPoolExecutor(2) as pool:
        store = Store(Path(tmp) / "ledger", state_history=history)
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
                file_at[height * args.block] = _file_bytes(store)
        elapsed = time.perf_counter() - started
        disk = sum(f.stat().st_size for f in (Path(tmp) / "ledger").iterdir())
        used = _used_bytes(store)
        with store.snapshot() as snap:
            assert snap.log_size == blocks * args.block
            assert snap.oldest_state_height == (0 if history is None else max(0, blocks - history + 1))
        heap_open = heap_mib() if return_freed_memory() else None
        store.close()
        heap_closed = heap_mib() if return_freed_memory() else None
    _report(
        _Figures(blocks, args.block, history, rates, elapsed, disk, file_at, used, heap, heap_open, heap_closed),
    )
    return 0
