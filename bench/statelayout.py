"""State-map layout benchmark: how full LMDB's pages stay when a bounded state history prunes, by node layout.

A `StateMap` with a bounded history takes blocks of random new keys (as issues do) and prunes as the store does.
The same stream of node writes and deletions -- read back from the map and its replacement journal -- is replayed
into layouts the map does not use, each B-tree appended to in the order nodes are written:

- one tree of every node, named by the version that wrote it (the layout of schema 1);
- leaves in one tree and internal nodes in another;
- leaves, internal nodes with a leaf child, and the other internal nodes in three trees.

The map's own layout since schema 2 -- leaves in one tree, internal nodes in a tree per depth -- is measured on the
map itself.

LMDB frees a page only when every node on it is deleted, so the bytes of pages in use per key show how much each
layout keeps nodes of like lifetimes together; the live nodes' own bytes (records and keys) are the floor.

Run ``python -m bench statelayout`` or ``python -m bench statelayout --blocks 200 --history 10``.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

import lmdb

from credledger.ledger.storage.schema import SMT_REPLACED, open_env, u64
from credledger.ledger.storage.smtupdate import GROUPED_TABLES, REF_SIZE, group_prefix
from credledger.ledger.storage.statemap import StateMap

#: The size of a credential record as the store bench writes it, about.
VALUE_BYTES = 50
#: LMDB's per-entry overhead in a leaf page: node header and slot pointer.
ENTRY_OVERHEAD = 10
_LEAF_TAG = 0x02


def _plain(ref: bytes) -> bytes:
    """A ref without its group (the first byte): these layouts order each tree by version alone."""
    return b"\x00" + ref[1:]


def _used(txn: lmdb.Transaction[bytes], db: lmdb._Database) -> int:
    stat = txn.stat(db)
    return int((stat["branch_pages"] + stat["leaf_pages"] + stat["overflow_pages"]) * stat["psize"])


LAYOUTS = {"one tree": ("all",), "leaves apart": ("leaves", "internal"), "three trees": ("leaves", "lower", "upper")}


class _Layouts:
    """The other layouts, in one LMDB environment: a named database per tree."""

    def __init__(self, path: Path) -> None:
        self.env = lmdb.open(str(path), map_size=1 << 40, max_dbs=8, sync=False, metasync=False)
        self.trees = {name: self.env.open_db(name.encode()) for names in LAYOUTS.values() for name in names}
        self._placed: dict[bytes, list[str]] = {}  # ref -> the trees it was written to
        self._leaves: set[bytes] = set()

    def apply(self, written: list[tuple[bytes, bytes]], dying: list[bytes]) -> None:
        """Append one version's new nodes to every tree they belong in, and delete the nodes that died."""
        by_tree: dict[str, list[tuple[bytes, bytes]]] = {name: [] for name in self.trees}
        for ref, record in written:
            if record[0] == _LEAF_TAG:
                self._leaves.add(ref)
                where = ["all", "leaves"]
            else:
                lower = record[1:41] in self._leaves or record[41:81] in self._leaves
                where = ["all", "internal", "lower" if lower else "upper"]
            self._placed[ref] = where
            for name in where:
                by_tree[name].append((_plain(ref), record))
        with self.env.begin(write=True) as txn:
            for name, items in by_tree.items():
                items.sort()
                _, added = txn.cursor(db=self.trees[name]).putmulti(items, append=True)
                assert added == len(items), f"{name}: {len(items) - added} nodes out of order"
            for ref in sorted(dying):
                for name in self._placed.pop(ref):
                    txn.delete(_plain(ref), db=self.trees[name])
                self._leaves.discard(ref)

    def report(self, keys: int) -> None:
        with self.env.begin() as txn:
            for layout, names in LAYOUTS.items():
                used = sum(_used(txn, self.trees[name]) for name in names)
                parts = " + ".join(f"{name} {_used(txn, self.trees[name]) / keys:,.0f}" for name in names)
                print(f"  {layout:<40} {used / keys:>8,.0f} bytes of pages per key ({parts})")


def _version_stream(
    env: lmdb.Environment, smap: StateMap, version: int, changes: dict[bytes, bytes | None]
) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """Commit one version with pruning: the nodes it wrote and the refs its journal lists."""
    # Opened before the write transaction: opening a database inside it would wait on it.
    tables = [(env.open_db(name), group_prefix(group, version)) for group, name in GROUPED_TABLES]
    journal_db = env.open_db(SMT_REPLACED)
    written: list[tuple[bytes, bytes]] = []
    with env.begin(write=True) as txn:
        smap.update(txn, version, changes)
        for db, prefix in tables:
            cursor = txn.cursor(db=db)
            if cursor.set_range(prefix):
                for key, value in cursor:
                    if key[:8] != prefix:
                        break
                    written.append((bytes(key), bytes(value)))
        raw = txn.get(u64(version), db=journal_db)
        replaced = [] if raw is None else [raw[i : i + REF_SIZE] for i in range(0, len(raw), REF_SIZE)]
        smap.prune(txn)
    return written, replaced


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench statelayout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=60)
    parser.add_argument("--keys", type=int, default=2_000, help="new keys per block")
    parser.add_argument("--history", type=int, default=2, help="blocks of state kept")
    args = parser.parse_args(argv)
    keys = args.blocks * args.keys
    with tempfile.TemporaryDirectory() as tmp:
        env = open_env(Path(tmp) / "map", durable=False)
        smap = StateMap(env, history=args.history)
        layouts = _Layouts(Path(tmp) / "layouts")
        journals: dict[int, list[bytes]] = {}
        for version in range(args.blocks):
            changes: dict[bytes, bytes | None] = {
                hashlib.sha256(f"{version}/{i}".encode()).digest(): bytes(VALUE_BYTES) for i in range(args.keys)
            }
            written, journals[version] = _version_stream(env, smap, version, changes)
            # The journal of version d dies when version d - 1 leaves the history: when d is the oldest kept.
            layouts.apply(written, journals.pop(version - args.history + 1, []))
        tables = [env.open_db(name) for _, name in GROUPED_TABLES]
        with env.begin() as txn:
            live = sum(len(k) + len(v) + ENTRY_OVERHEAD for db in tables for k, v in txn.cursor(db=db))
            mapped = sum(_used(txn, db) for db in tables)
        print(
            f"state-map layouts: {keys:,} keys in {args.blocks} blocks of {args.keys:,}, history {args.history} blocks"
        )
        print(f"  {'the map itself (leaves, depth by depth)':<40} {mapped / keys:>8,.0f} bytes of pages per key")
        layouts.report(keys)
        print(f"  {'live nodes, records and keys (floor)':<40} {live / keys:>8,.0f} bytes per key")
        layouts.env.close()
        env.close()
    return 0
