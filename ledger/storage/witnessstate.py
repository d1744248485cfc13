"""A witness's durable record of the latest checkpoint it cosigned per log, in its own small LMDB environment.

Theory of operation
-------------------
c2sp.org/tlog-witness requires the record of each log to move only by an atomic compare-and-swap and to reach
permanent storage before the cosignature leaves the witness. `WitnessStore.compare_and_set` is one LMDB write
transaction, committed with fsync (the environment is opened with `sync` and `metasync`), that reads the record,
compares it with what the caller's checks saw, and writes the new one. It also refuses, whatever the caller
checked, a record that would move the size backwards or give a size already recorded another root: so the record
never goes back and no size is ever cosigned with two roots, even if the checks above it were wrong.

Key layout (its own environment, beside the node's ledger): database ``witness-logs``, key SHA-256(origin),
value u64 size || 32-byte root || origin (UTF-8, kept for whoever inspects the file); database ``witness-notes``,
the same key, value the checkpoint note as the witness cosigned it (UTF-8), written in the same transaction as the
record. A record written before notes were kept has none, and reads back with an empty note.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import lmdb

from credledger.ledger.errors import StorageError
from credledger.ledger.merkle import HASH_SIZE
from credledger.ledger.witness import LogRecord

LOGS_DB = b"witness-logs"
NOTES_DB = b"witness-notes"
#: A record per witnessed log is a few dozen bytes; the map only has to hold the configured logs.
MAP_SIZE = 64 * 1024 * 1024
_U64 = struct.Struct(">Q")


class WitnessStore:
    """The witness's records, one per log origin (a `ledger.witness.WitnessState`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            self.env = lmdb.open(
                os.fspath(path), map_size=MAP_SIZE, max_dbs=2, subdir=True, sync=True, metasync=True, lock=True
            )
            self._db = self.env.open_db(LOGS_DB)
            self._notes = self.env.open_db(NOTES_DB)
        except lmdb.Error as exc:
            raise StorageError(f"{os.fspath(path)}: cannot open the witness state ({exc})") from None

    def close(self) -> None:
        self.env.close()

    def get(self, origin: str) -> LogRecord | None:
        with self.env.begin() as txn:
            return self._read(txn, origin)

    def compare_and_set(self, origin: str, expected: LogRecord | None, new: LogRecord) -> bool:
        """Store `new` if the record is still `expected`, and only forwards (see the theory of operation)."""
        key = _key(origin)
        with self.env.begin(write=True, db=self._db) as txn:
            current = self._read(txn, origin)
            if current != expected:
                return False
            if current is not None and (
                new.size < current.size or (new.size == current.size and new.root != current.root)
            ):
                return False
            txn.put(key, _U64.pack(new.size) + new.root + origin.encode())
            if new.note:
                txn.put(key, new.note.encode(), db=self._notes)
            else:
                txn.delete(key, db=self._notes)
        return True

    def _read(self, txn: lmdb.Transaction[bytes], origin: str) -> LogRecord | None:
        key = _key(origin)
        record = _decode(txn.get(key, db=self._db), origin)
        if record is None:
            return None
        note = txn.get(key, db=self._notes)
        try:
            return LogRecord(record.size, record.root, "" if note is None else bytes(note).decode())
        except UnicodeDecodeError:
            raise StorageError(f"the witness's note of {origin!r} is not UTF-8") from None


def _key(origin: str) -> bytes:
    return hashlib.sha256(origin.encode()).digest()


def _decode(value: bytes | None, origin: str) -> LogRecord | None:
    if value is None:
        return None
    value = bytes(value)
    if len(value) < 8 + HASH_SIZE or value[8 + HASH_SIZE :] != origin.encode():
        raise StorageError(f"the witness record of {origin!r} is malformed ({len(value)} bytes)")
    return LogRecord(_U64.unpack_from(value)[0], value[8 : 8 + HASH_SIZE])
