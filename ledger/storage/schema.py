"""Every LMDB database name and key layout, in one place, under one schema version.

One LMDB environment per node holds all of these named databases. A block's events, log nodes, state-map nodes,
header and certificate are written in one write transaction (see `ledger.storage.store`), so after a crash the
environment holds a prefix of the certified chain, never half a block.

Integers in keys are 8-byte big-endian so that LMDB's byte order is numeric order.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import lmdb

#: Schema 2 stores the state map's nodes by group: leaves in SMT_LEAVES, internal nodes by depth in SMT_DEPTHS. A node
#: opening a store of schema 1 (every node in SMT_NODES) upgrades it in place: the versions already written keep
#: their nodes where they are, and the first version grouped is recorded (`GROUPED_KEY`), so an audit's replay writes
#: the very same records.
SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)

# ledger.storage.log: the RFC 6962 tree.
LOG_META = b"log/meta"  # b"size" -> u64 number of leaves; b"tile-height" -> u64 H
LOG_NODES = (
    b"log/nodes"  # u64 tree size at which a tile got its first hash -> 2^(H+1)-2 hashes (see ledger.storage.log)
)

# ledger.storage.statemap: the sparse Merkle state map (hashing in ledger.smt). A node is named by a 40-byte ref,
# u8 group || u56 version that created it || node hash, so each block's new nodes of a group are appended at the end
# of that group's B-tree. Groups (ledger.storage.smtupdate): 0x80 leaves, 0x81 + d internal nodes at depth d (the
# last database holds every depth from its own down). A store of schema 1 wrote every node to SMT_NODES under a plain
# ref (group 0), up to the version in CHAIN_META b"smt-grouped-from"; those stay there.
SMT_NODES = b"smt/nodes"  # ref -> 0x03 || left ref || right ref, or 0x02 || key || SHA-256(value) || value
SMT_LEAVES = b"smt/leaves"  # leaf ref -> 0x02 || key || value (its hash is over 0x02 || key || SHA-256(value))
SMT_DEPTHS = tuple(b"smt/nodes/%02d" % depth for depth in range(40))  # internal node ref -> as in SMT_NODES
SMT_ROOTS = b"smt/roots"  # u64 version (block height) -> ref of that version's root (40 zero bytes: empty map)
# With a bounded state history only: u64 version -> the refs (40 bytes each, concatenated) of the nodes that version
# replaced, which no later version holds; they are deleted with the journal when the version before leaves the history.
SMT_REPLACED = b"smt/replaced"

# ledger.storage.store: the chain itself.
CHAIN_META = b"chain/meta"  # b"schema", b"height", b"genesis", b"smt-grouped-from" ...
SCHEMA_KEY = b"schema"  # -> u64 schema version
GROUPED_KEY = b"smt-grouped-from"  # -> u64 the first state version whose new nodes were stored by group
#: The first version grouped in a store of schema 1 that no node of schema 2 has written: none.
NEVER_GROUPED = 2**56
CHAIN_HEADERS = b"chain/headers"  # u64 height -> header bytes
CHAIN_CERTS = b"chain/certs"  # u64 height -> checkpoint note text
CHAIN_ENTRIES = b"chain/entries"  # u64 log index -> event bytes
CHAIN_EVENT_IDS = b"chain/event-ids"  # 32-byte event id -> u64 log index
CHAIN_VALSETS = b"chain/valsets"  # u64 height from which a set applies -> validator set bytes

# node: consensus state. b"schedule" -> the next height's proposer schedule (node.driver); b"safety" -> the
# double-sign guard's record, b"safety/block" -> the valid block it names (node.safetystore); b"evidence/" ||
# evidence id -> conflicting signed statements (node.driver).
CONSENSUS_META = b"consensus/meta"

ALL_DATABASES = (
    LOG_META,
    LOG_NODES,
    SMT_NODES,
    SMT_LEAVES,
    *SMT_DEPTHS,
    SMT_ROOTS,
    SMT_REPLACED,
    CHAIN_META,
    CHAIN_HEADERS,
    CHAIN_CERTS,
    CHAIN_ENTRIES,
    CHAIN_EVENT_IDS,
    CHAIN_VALSETS,
    CONSENSUS_META,
)

#: Virtual address space reserved for the map (LMDB grows the file only as it fills).
DEFAULT_MAP_SIZE = 1 << 40
#: Read transactions open at once in one environment (LMDB's reader table, shared by every process using it).
DEFAULT_MAX_READERS = 256

_U64 = struct.Struct(">Q")


def u64(value: int) -> bytes:
    """An unsigned integer as an 8-byte big-endian key."""
    return _U64.pack(value)


def from_u64(data: bytes) -> int:
    value: int = _U64.unpack(data)[0]
    return value


def grouped_from(txn: lmdb.Transaction[bytes], meta: lmdb._Database) -> int:
    """The first state version of a store whose new nodes were stored by group (0 for a store begun with schema 2)."""
    found = txn.get(GROUPED_KEY, db=meta)
    if found is not None:
        return from_u64(found)
    version = txn.get(SCHEMA_KEY, db=meta)
    return NEVER_GROUPED if version is not None and from_u64(version) == 1 else 0


def open_env(
    path: str | os.PathLike[str],
    *,
    map_size: int = DEFAULT_MAP_SIZE,
    readonly: bool = False,
    durable: bool = True,
    max_readers: int = DEFAULT_MAX_READERS,
) -> lmdb.Environment:
    """Open (creating if needed) a node's LMDB environment with every named database.

    With `durable` (the default), each committed write transaction is on disk before `commit()` returns. Only a
    scratch environment that can be rebuilt (an auditor's replay) may pass False, trading that for speed.
    """
    Path(path).mkdir(parents=True, exist_ok=True)
    env = lmdb.open(
        str(path),
        map_size=map_size,
        max_dbs=len(ALL_DATABASES) + 4,
        subdir=True,
        readonly=readonly,
        sync=durable,
        metasync=durable,
        lock=True,
        max_readers=max_readers,
    )
    if not readonly:
        with env.begin(write=True) as txn:
            for name in ALL_DATABASES:
                env.open_db(name, txn=txn)
    return env
