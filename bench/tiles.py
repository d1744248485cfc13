"""Tile benchmark: producing every C2SP tile of a log, and a `TileReader` answering proofs from them.

A log of N leaf hashes is cut into its tlog-tiles (`ledger.tiles.tiles_for_size`, bytes from `tile_data` over
`hashes_from_leaves`); then a fresh `TileReader` per checkpoint opens the tree (fetching and checking its partial
tiles against the root) and answers random inclusion and consistency proofs, fetching from a dict as a client
would from a cache. Every inclusion proof and a few consistency proofs of the first repetition are checked with
`ledger.merkle` (outside the timings). Rates are medians of the repetitions.

Run ``python -m bench.tiles`` (1,000,000 leaves) or ``python -m bench.tiles --entries 100000``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import statistics
import sys
import time
from collections.abc import Sequence

from credledger.ledger.merkle import root_from_leaf_hashes, verify_consistency, verify_inclusion
from credledger.ledger.tiles import TileReader, hashes_from_leaves, tile_data, tiles_for_size

#: Consistency proofs checked against a root recomputed from the leaves (each costs a pass over them).
CONSISTENCY_CHECKED = 5


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tiles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    n = args.entries
    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(n)]
    root = root_from_leaf_hashes(leaves)

    start = time.perf_counter()
    nodes = hashes_from_leaves(leaves)
    files = {t.path(): tile_data(t, n, nodes) for t in tiles_for_size(n)}
    produce_s = time.perf_counter() - start
    total_bytes = sum(len(v) for v in files.values())

    inclusion: list[float] = []
    consistency: list[float] = []
    tiles_per_proof: list[float] = []
    warm: list[float] = []
    for repetition in range(args.repeat):
        rng = random.Random(f"{args.seed}/{repetition}")
        queries = [(rng.randrange(n), rng.randint(1, n)) for _ in range(args.proofs)]
        fetched: list[str] = []

        def fetch(path: str, fetched: list[str] = fetched) -> bytes | None:
            fetched.append(path)
            return files.get(path)

        start = time.perf_counter()
        reader = TileReader(n, root, fetch)
        proofs = [reader.inclusion_proof(index) for index, _ in queries]
        inclusion.append(len(queries) / (time.perf_counter() - start))
        tiles_per_proof.append(len(fetched) / len(queries))
        start = time.perf_counter()
        for index, _ in queries:
            reader.inclusion_proof(index)
        warm.append(len(queries) / (time.perf_counter() - start))
        start = time.perf_counter()
        reader = TileReader(n, root, files.get)
        consistencies = [reader.consistency_proof(size) for _, size in queries]
        consistency.append(len(queries) / (time.perf_counter() - start))
        if repetition == 0:
            for (index, _), inc in zip(queries, proofs, strict=True):
                verify_inclusion(leaves[index], index, n, inc, root)
            for (_, size), con in list(zip(queries, consistencies, strict=True))[:CONSISTENCY_CHECKED]:
                verify_consistency(size, n, con, root_from_leaf_hashes(leaves[:size]), root)

    print(f"leaves                      {n:>12,}")
    print(f"tiles                       {len(files):>12,}  ({total_bytes / 2**20:,.1f} MiB)")
    print(f"produce every tile          {produce_s:>12.2f} s")
    print(
        f"inclusion proofs / s        {statistics.median(inclusion):>12,.0f}  (one new reader: every tile checked once)"
    )
    print(f"  again, tiles authenticated {statistics.median(warm):>11,.0f}")
    print(f"consistency proofs / s      {statistics.median(consistency):>12,.0f}")
    print(f"tiles fetched per proof     {statistics.median(tiles_per_proof):>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
