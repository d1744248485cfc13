"""Merkle log benchmark: credledger's LMDB `MerkleLog` against pymerkle's `InmemoryTree` on the same entries.

Both logs receive the same N entries. credledger hashes each block of entries (RFC 9162 leaf hashes) and
appends it in one durable LMDB write transaction, as a node does per block; pymerkle appends the entries one by
one to its in-memory tree (`append_entry`, which hashes them too). Then both answer the same random inclusion
queries (index, size) and consistency queries (size1, size2) at historical sizes; credledger opens one read
transaction per proof, as the API does per request. Rates are medians of several repetitions, each with fresh
queries. Each side runs in its own fresh process, so memory figures are its own.

Run ``python -m bench log`` (1,000,000 entries) or ``python -m bench log --entries 100000``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.memory import heap_mib, peak_rss_mib

#: Proofs from each side's first repetition that are checked with `ledger.merkle` (outside the timings).
VERIFIED_SAMPLE = 200


@dataclass(frozen=True, slots=True)
class Params:
    """What both sides run: the same entries and the same queries."""

    entries: int
    entry_bytes: int
    block: int
    proofs: int
    repeat: int
    seed: int
    directory: str | None


@dataclass(slots=True)
class Result:
    """One side's figures."""

    appends_per_s: float
    inclusion_per_s: list[float]
    consistency_per_s: list[float]
    root: bytes
    #: Anonymous (heap) RSS in MiB when the log held N/4, N/2 and N entries.
    heap_mib: dict[int, float] = field(default_factory=dict)
    peak_rss_mib: float = 0.0
    disk_bytes: int | None = None
    verified: int = 0


def _entries(params: Params, start: int, count: int) -> list[bytes]:
    """Entries start … start+count-1: distinct, deterministic, `entry_bytes` long."""
    filler = random.Random(params.seed).randbytes(params.entry_bytes - 8)
    return [i.to_bytes(8, "big") + filler for i in range(start, start + count)]


def _inclusion_queries(params: Params, repetition: int) -> list[tuple[int, int]]:
    rng = random.Random(f"inclusion/{params.seed}/{repetition}")
    queries = []
    for _ in range(params.proofs):
        size = rng.randint(1, params.entries)
        queries.append((rng.randrange(size), size))
    return queries


def _consistency_queries(params: Params, repetition: int) -> list[tuple[int, int]]:
    rng = random.Random(f"consistency/{params.seed}/{repetition}")
    queries = []
    for _ in range(params.proofs):
        size2 = rng.randint(2, params.entries)
        queries.append((rng.randint(1, size2 - 1), size2))
    return queries


def _rate(count: int, work: Callable[[], None]) -> float:
    started = time.perf_counter()
    work()
    return count / (time.perf_counter() - started)


def _append_all(params: Params, append_block: Callable[[list[bytes]], None], result: Result) -> None:
    """Append every entry block by block, timing only hashing and appending, sampling memory at N/4, N/2, N."""
    checkpoints = sorted({params.entries // 4, params.entries // 2, params.entries})
    elapsed = 0.0
    for start in range(0, params.entries, params.block):
        block = _entries(params, start, min(params.block, params.entries - start))
        began = time.perf_counter()
        append_block(block)
        elapsed += time.perf_counter() - began
        done = start + len(block)
        while checkpoints and done >= checkpoints[0]:
            result.heap_mib[checkpoints.pop(0)] = heap_mib()
    result.appends_per_s = params.entries / elapsed


def run_credledger(params: Params) -> Result:
    """The credledger side: a persistent `MerkleLog` in a fresh LMDB environment."""
    from credledger.ledger.merkle import leaf_hash, verify_consistency, verify_inclusion
    from credledger.ledger.storage.log import MerkleLog
    from credledger.ledger.storage.schema import open_env

    with tempfile.TemporaryDirectory(prefix="credledger-bench-log-", dir=params.directory) as directory:
        env = open_env(directory)
        log = MerkleLog(env)
        result = Result(0.0, [], [], b"")

        def append_block(block: list[bytes]) -> None:
            hashes = [leaf_hash(entry) for entry in block]
            with env.begin(write=True) as txn:
                log.append(txn, hashes)

        _append_all(params, append_block, result)

        for repetition in range(params.repeat):
            inclusion = _inclusion_queries(params, repetition)
            consistency = _consistency_queries(params, repetition)

            def prove_inclusion(queries: list[tuple[int, int]] = inclusion) -> None:
                for index, size in queries:
                    with env.begin() as txn:
                        log.inclusion_proof(txn, index, size)

            def prove_consistency(queries: list[tuple[int, int]] = consistency) -> None:
                for size1, size2 in queries:
                    with env.begin() as txn:
                        log.consistency_proof(txn, size1, size2)

            result.inclusion_per_s.append(_rate(len(inclusion), prove_inclusion))
            result.consistency_per_s.append(_rate(len(consistency), prove_consistency))

        # Outside the timings: the proofs served are valid RFC 9162 proofs.
        with env.begin() as txn:
            result.root = log.root(txn)
            for index, size in _inclusion_queries(params, 0)[:VERIFIED_SAMPLE]:
                leaf = leaf_hash(_entries(params, index, 1)[0])
                verify_inclusion(leaf, index, size, log.inclusion_proof(txn, index, size), log.root(txn, size))
                result.verified += 1
            for size1, size2 in _consistency_queries(params, 0)[:VERIFIED_SAMPLE]:
                proof = log.consistency_proof(txn, size1, size2)
                verify_consistency(size1, size2, proof, log.root(txn, size1), log.root(txn, size2))
                result.verified += 1
        result.disk_bytes = (Path(directory) / "data.mdb").stat().st_size
        result.peak_rss_mib = peak_rss_mib()
        env.close()
    return result


def run_pymerkle(params: Params) -> Result:
    """The peer: pymerkle 7's `InmemoryTree` with its default settings (1-based leaf indices)."""
    from pymerkle import InmemoryTree

    tree = InmemoryTree(algorithm="sha256")
    result = Result(0.0, [], [], b"")

    def append_block(block: list[bytes]) -> None:
        for entry in block:
            tree.append_entry(entry)

    _append_all(params, append_block, result)

    for repetition in range(params.repeat):
        inclusion = _inclusion_queries(params, repetition)
        consistency = _consistency_queries(params, repetition)

        def prove_inclusion(queries: list[tuple[int, int]] = inclusion) -> None:
            for index, size in queries:
                tree.prove_inclusion(index + 1, size)

        def prove_consistency(queries: list[tuple[int, int]] = consistency) -> None:
            for size1, size2 in queries:
                tree.prove_consistency(size1, size2)

        result.inclusion_per_s.append(_rate(len(inclusion), prove_inclusion))
        result.consistency_per_s.append(_rate(len(consistency), prove_consistency))

    root: bytes = tree.get_root()
    result.root = root
    result.peak_rss_mib = peak_rss_mib()
    return result


def _in_fresh_process(run: Callable[[Params], Result], params: Params) -> Result:
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(run, params).result()


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x"


def main(argv: Sequence[str] | None = None) -> int:
    """Run both sides and print one table comparing them."""
    parser = argparse.ArgumentParser(prog="python -m bench log", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="log entries (default 1,000,000)")
    parser.add_argument("--entry-bytes", type=int, default=256, help="bytes per entry (default 256)")
    parser.add_argument("--block", type=int, default=1_000, help="entries per block / transaction (default 1,000)")
    parser.add_argument("--proofs", type=int, default=20_000, help="proofs of each kind per repetition")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the proof timings (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed for entries and queries")
    parser.add_argument("--dir", default=None, help="where to put the LMDB environment (default: system temp)")
    args = parser.parse_args(argv)
    if args.entries < 2 or args.entry_bytes < 8 or args.block < 1 or args.proofs < 1 or args.repeat < 1:
        parser.error("need --entries >= 2, --entry-bytes >= 8, and positive --block, --proofs and --repeat")
    params = Params(args.entries, args.entry_bytes, args.block, args.proofs, args.repeat, args.seed, args.dir)

    print(
        f"Merkle log: {params.entries:,} entries of {params.entry_bytes} bytes; credledger commits a durable "
        f"LMDB transaction per block of {params.block:,}; {params.proofs:,} random proofs of each kind "
        f"x {params.repeat} repetitions",
        flush=True,
    )
    ours = _in_fresh_process(run_credledger, params)
    print("  credledger MerkleLog done", flush=True)
    theirs = _in_fresh_process(run_pymerkle, params)
    print("  pymerkle InmemoryTree done", flush=True)

    n = params.entries
    inclusion = (statistics.median(ours.inclusion_per_s), statistics.median(theirs.inclusion_per_s))
    consistency = (statistics.median(ours.consistency_per_s), statistics.median(theirs.consistency_per_s))
    assert ours.disk_bytes is not None
    rows = [
        (
            "appends/s (incl. leaf hashing)",
            f"{ours.appends_per_s:,.0f}",
            f"{theirs.appends_per_s:,.0f}",
            _ratio(ours.appends_per_s, theirs.appends_per_s),
        ),
        (
            f"inclusion proofs/s (median of {params.repeat})",
            f"{inclusion[0]:,.0f}",
            f"{inclusion[1]:,.0f}",
            _ratio(*inclusion),
        ),
        (
            f"consistency proofs/s (median of {params.repeat})",
            f"{consistency[0]:,.0f}",
            f"{consistency[1]:,.0f}",
            _ratio(*consistency),
        ),
        ("bytes on disk per entry", f"{ours.disk_bytes / n:,.1f}", "(in memory)", ""),
    ]
    for size in sorted(ours.heap_mib):
        rows.append(
            (f"heap (anon RSS) MiB at {size:,}", f"{ours.heap_mib[size]:,.1f}", f"{theirs.heap_mib[size]:,.1f}", "")
        )
    rows.append(("peak RSS MiB (getrusage)", f"{ours.peak_rss_mib:,.1f}", f"{theirs.peak_rss_mib:,.1f}", ""))

    header = ("", "credledger MerkleLog (LMDB)", "pymerkle InmemoryTree", "ratio")
    print()
    print(f"{header[0]:<38}{header[1]:>29}{header[2]:>24}{header[3]:>9}")
    for label, a, b, ratio in rows:
        print(f"{label:<38}{a:>29}{b:>24}{ratio:>9}")
    print()
    same_root = "yes" if ours.root == theirs.root else "NO"
    print(f"same root after {n:,} entries: {same_root}; credledger proofs verified with ledger.merkle: {ours.verified}")
    print(
        "Heap = anonymous resident memory. credledger's peak RSS also counts LMDB pages mapped from the file "
        "(page cache, shared, reclaimable); the log itself keeps no tree in memory."
    )
    return 0 if ours.root == theirs.root else 1


if __name__ == "__main__":
    sys.exit(main())
