"""State-map benchmark: credledger's LMDB `StateMap` against trie's `HexaryTrie` (Ethereum MPT) on the same data.

Both maps receive the same random 32-byte keys with ~100-byte values, in blocks. The StateMap writes each block
in one durable LMDB write transaction as a new version, as the node does; HexaryTrie sets keys one by one on a
plain dict. Proof generation is timed on random present keys (median of several repetitions), verification on
those proofs. Run ``python -m bench.state --keys 200000``.
"""

from __future__ import annotations

import argparse
import importlib
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credledger.ledger.codec import encode
from credledger.ledger.smt import StateProof, verify_proof
from credledger.ledger.storage.schema import open_env
from credledger.ledger.storage.statemap import StateMap

VALUE_SIZE = 100


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print one table comparing the two maps."""
    parser = argparse.ArgumentParser(prog="python -m bench.state", description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000, help="number of keys (default 200,000)")
    parser.add_argument("--block", type=int, default=1_000, help="keys per block / version (default 1,000)")
    parser.add_argument("--proofs", type=int, default=10_000, help="proofs per repetition (default 10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of the proof timing (default 3)")
    parser.add_argument("--seed", type=int, default=1, help="seed for keys and values")
    args = parser.parse_args(argv)
    if args.keys < 1 or args.block < 1 or args.proofs < 1 or args.repeat < 1:
        parser.error("--keys, --block, --proofs and --repeat must be positive")

    rng = random.Random(args.seed)
    keys = [rng.randbytes(32) for _ in range(args.keys)]
    values = [rng.randbytes(VALUE_SIZE) for _ in range(args.keys)]
    blocks = [range(start, min(start + args.block, args.keys)) for start in range(0, args.keys, args.block)]
    sample = rng.choices(range(args.keys), k=args.proofs)

    print(f"state map: {args.keys:,} random 32-byte keys, {VALUE_SIZE}-byte values, blocks of {args.block:,}")
    ours = _bench_statemap(keys, values, blocks, sample, args.repeat)
    print("  credledger StateMap done", flush=True)
    theirs = _bench_hexary(keys, values, blocks, sample, args.repeat)
    print("  trie HexaryTrie done", flush=True)

    rows = [
        ("updates/s", "{:,.0f}", ours.updates, theirs.updates, "x"),
        (f"proofs/s (median of {args.repeat})", "{:,.0f}", ours.proofs, theirs.proofs, "x"),
        ("proof verifications/s", "{:,.0f}", ours.verifies, theirs.verifies, "x"),
        ("proof size, bytes (mean)", "{:,.0f}", ours.proof_bytes, theirs.proof_bytes, "x"),
        ("stored bytes per key", "{:,.0f}", ours.bytes_per_key, theirs.bytes_per_key, "x"),
    ]
    header = ("", "credledger StateMap (LMDB)", "trie HexaryTrie (dict)", "ratio")
    print()
    print(f"{header[0]:<28}{header[1]:>28}{header[2]:>25}{header[3]:>9}")
    for label, fmt, a, b, unit in rows:
        print(f"{label:<28}{fmt.format(a):>28}{fmt.format(b):>25}{a / b:>8.2f}{unit}")
    print()
    print("Ratio = StateMap / HexaryTrie: higher is better for rates, lower for sizes.")
    print(
        "Stored bytes: StateMap = LMDB pages in use (every version's nodes, values inline in leaves, roots, B-tree "
        "overhead); HexaryTrie = key + value bytes in its dict (every version's nodes, no overhead counted)."
    )
    return 0


@dataclass(frozen=True, slots=True)
class _Result:
    updates: float
    proofs: float
    verifies: float
    proof_bytes: float
    bytes_per_key: float


def _bench_statemap(
    keys: list[bytes], values: list[bytes], blocks: list[range], sample: list[int], repeat: int
) -> _Result:
    with tempfile.TemporaryDirectory(prefix="credledger-bench-") as tmp:
        env = open_env(Path(tmp) / "env", map_size=1 << 36)
        try:
            smap = StateMap(env)
            started = time.perf_counter()
            for version, block in enumerate(blocks):
                with env.begin(write=True) as txn:
                    smap.update(txn, version, {keys[i]: values[i] for i in block})
            updates = len(keys) / (time.perf_counter() - started)

            with env.begin() as txn:
                root = smap.root(txn)
                proofs: list[StateProof] = []

                def prove_all() -> None:
                    proofs[:] = [smap.prove(txn, keys[i]) for i in sample]

                proof_rate = _median_rate(prove_all, len(sample), repeat)

            def verify_all() -> None:
                for i, proof in zip(sample, proofs, strict=True):
                    verify_proof(root, keys[i], values[i], proof)

            verify_rate = _median_rate(verify_all, len(sample), repeat)
            proof_bytes = statistics.fmean(len(encode(p)) for p in proofs)
            info, stat = env.info(), env.stat()
            used = (info["last_pgno"] + 1) * stat["psize"]
        finally:
            env.close()
    return _Result(updates, proof_rate, verify_rate, proof_bytes, used / len(keys))


def _bench_hexary(
    keys: list[bytes], values: list[bytes], blocks: list[range], sample: list[int], repeat: int
) -> _Result:
    # trie and rlp are the peer's libraries (the "bench" extra) and are untyped; treat them as Any.
    hexary: Any = importlib.import_module("trie.hexary").HexaryTrie
    rlp_encode: Callable[[object], bytes] = importlib.import_module("rlp").encode

    db: dict[bytes, bytes] = {}
    trie = hexary(db=db)
    started = time.perf_counter()
    for block in blocks:
        for i in block:
            trie.set(keys[i], values[i])
    updates = len(keys) / (time.perf_counter() - started)

    proofs: list[tuple[object, ...]] = []

    def prove_all() -> None:
        proofs[:] = [trie.get_proof(keys[i]) for i in sample]

    proof_rate = _median_rate(prove_all, len(sample), repeat)
    root = trie.root_hash

    def verify_all() -> None:
        for i, proof in zip(sample, proofs, strict=True):
            if hexary.get_from_proof(root, keys[i], proof) != values[i]:
                raise AssertionError("HexaryTrie proof did not yield the value")

    verify_rate = _median_rate(verify_all, len(sample), repeat)
    proof_bytes = statistics.fmean(len(rlp_encode(p)) for p in proofs)
    stored = sum(len(k) + len(v) for k, v in db.items())
    return _Result(updates, proof_rate, verify_rate, proof_bytes, stored / len(keys))


def _median_rate(run: Callable[[], None], count: int, repeat: int) -> float:
    """Operations per second of `run` (which does `count` operations), median over `repeat` runs."""
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        rates.append(count / (time.perf_counter() - started))
    return statistics.median(rates)


if __name__ == "__main__":
    raise SystemExit(main())
