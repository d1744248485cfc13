"""The local journal of a bulk issuance (`verifier.batch`): what was signed, sent, committed and kept.

Theory of operation
-------------------
The journal is one append-only JSON Lines file in the output directory. Why a text file rather than SQLite: the
access pattern is append-only with group commits (one `write` and one `fsync` per batch of up to a thousand
credentials, whatever their number) and one sequential read on resume; a person can read it with `less` or `jq`;
and a crash can only tear the last line, which the reader drops (it was never acted on: see below).

Each line is one record, keyed by the credential's *key* (the digest of the input document as given: for a plain
issue it is the registered digest, for a signed one the digest of the unsigned input):

- ``header``: the run's parameters (network origin, issuer, mode, expiry, achievement); a rerun with other ones
  is refused, since the journal's events would not be the ones asked for.
- ``signed``: an issue event (its canonical encoding), and for a signed credential the signed document. It is
  written and fsynced *before* the event is sent, so any event the ledger may hold is in the journal: a rerun
  recognises it (by its id) instead of issuing the credential again under another event.
- ``committed``: the event is in the log at this index. ``refused``: the ledger refused it for good (the rule).
- ``receipt``: the receipt files were written, this many bytes in all (a rerun writes again any whose size differs,
  as a file torn by a crash does).

A key may have several ``signed`` records (an event too old to be admitted is signed again with a fresh time);
the ledger's rules admit at most one issue per digest, and every id the journal ever recorded counts as this
batch's own.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from credledger.ledger.errors import CredledgerError

FORMAT = "credledger-batch-journal/v1"
FILE_NAME = "journal.jsonl"
#: One encoder for every line (`json.dumps` with options builds a new one per call: three per credential).
_LINE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class JournalError(CredledgerError):
    """The journal cannot be used for this run: unreadable, of another format, or written for other parameters."""

    code = "journal"


@dataclass(slots=True)
class Entry:
    """What the journal knows of one credential (by its key)."""

    source: str
    digest: bytes = b""
    #: Every event signed for it, oldest first (canonical encodings).
    events: list[bytes] = field(default_factory=list)
    document: str | None = None
    committed_index: int | None = None
    committed_id: bytes | None = None
    refused: tuple[str, str] | None = None
    receipt: str | None = None
    receipt_bytes: int = 0


class Journal:
    """An open journal: the entries read from it, and `append` for new records (durable when it returns)."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.entries: dict[bytes, Entry] = {}
        self.torn = False
        existing = self._read()
        if existing is None:
            self._file = self._open()
            self.append([{"t": "header", "format": FORMAT, **header}])
        else:
            wanted = {"t": "header", "format": FORMAT, **header}
            if existing != wanted:
                differ = sorted(k for k in set(existing) | set(wanted) if existing.get(k) != wanted.get(k))
                raise JournalError(
                    f"{path} belongs to a batch run with other parameters ({', '.join(differ)}); resume it with the "
                    "same ones, or give another output directory"
                )
            self._file = self._open()

    def _open(self) -> BinaryIO:
        try:
            return self.path.open("ab")
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot write it ({exc.strerror})") from None

    def close(self) -> None:
        self._file.close()

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append `records` and make them durable (one write, one fsync), then apply them to `entries`."""
        records = list(records)
        if not records:
            return
        lines = [_LINE.encode(r) + "\n" for r in records]
        self._file.write("".join(lines).encode("utf-8"))
        self._file.flush()
        os.fsync(self._file.fileno())
        for record in records:
            self._apply(record)

    # --- reading ------------------------------------------------------------------------------------------------

    def _read(self) -> dict[str, Any] | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise JournalError(f"{self.path}: cannot read it ({exc.strerror})") from None
        lines = data.split(b"\n")
        if lines[-1]:
            # A crash tore the last line mid-write: its record was never fsynced, so nothing acted on it.
            self.torn = True
            lines[-1] = b""
            with self.path.open("r+b") as file:
                file.truncate(len(data) - len(data.rsplit(b"\n", 1)[-1]))
        records = [line for line in lines if line]
        if not records:
            return None
        header = self._parse(records[0], 1)
        if header.get("t") != "header" or header.get("format") != FORMAT:
            raise JournalError(f"{self.path}: not a {FORMAT} journal")
        for number, line in enumerate(records[1:], start=2):
            self._apply(self._parse(line, number))
        return header

    def _parse(self, line: bytes, number: int) -> dict[str, Any]:
        try:
            record = json.loads(line)
        except (ValueError, RecursionError):
            raise JournalError(f"{self.path}:{number}: not a JSON record; the journal was altered") from None
        if not isinstance(record, dict):
            raise JournalError(f"{self.path}:{number}: not a JSON object; the journal was altered")
        return record

    def _apply(self, record: dict[str, Any]) -> None:
        kind = record.get("t")
        if kind == "header":
            return
        try:
            key = bytes.fromhex(record["key"])
            entry = self.entries.get(key)
            if kind == "signed":
                if entry is None:
                    entry = self.entries[key] = Entry(str(record["source"]))
                entry.digest = bytes.fromhex(record["digest"])
                entry.events.append(base64.b64decode(record["event"], validate=True))
                if record.get("document") is not None:
                    entry.document = str(record["document"])
                return
            if entry is None:
                raise KeyError("a record before the credential's signed record")
            if kind == "committed":
                entry.committed_id = bytes.fromhex(record["id"])
                entry.committed_index = int(record["index"])
            elif kind == "refused":
                entry.refused = (str(record["rule"]), str(record["detail"]))
            elif kind == "receipt":
                entry.receipt = str(record["path"])
                entry.receipt_bytes = int(record["bytes"])
            else:
                raise KeyError(f"unknown record type {kind!r}")
        except (KeyError, ValueError, TypeError) as exc:
            raise JournalError(f"{self.path}: a record cannot be read ({exc}); the journal was altered") from None
