"""A bulk issuance's receipts: a node's `credledger-record/v1` answer split into one receipt per credential (its
`credledger-proof/v1` bundle and its issue event's C2SP tlog-proof) without parsing and re-encoding the parts
every credential shares, and the files they are written to (`verifier.batch` decides when)."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from credledger.ledger import tlogproof
from credledger.ledger.bundle import FORMAT as BUNDLE_FORMAT
from credledger.ledger.errors import DecodeError
from credledger.ledger.events import decode_event
from credledger.ledger.record import FORMAT as RECORD_FORMAT
from credledger.verifier.batchjournal import Entry

RECEIPT_SUFFIX = ".receipt.json"


def receipt_paths(out: Path, name: str, *, signed: bool) -> list[Path]:
    """The receipt (bundle), its C2SP tlog-proof, and for a signed credential the signed document."""
    paths = [out / f"{name}{RECEIPT_SUFFIX}", out / f"{name}.receipt{tlogproof.EXTENSION}"]
    return [*paths, out / f"{name}.signed.json"] if signed else paths


def receipts_kept(out: Path, entry: Entry) -> bool:
    """Whether the receipt files the journal recorded are all there, as long as they were written."""
    assert entry.receipt is not None
    name = entry.receipt.removesuffix(RECEIPT_SUFFIX)
    try:
        size = sum(p.stat().st_size for p in receipt_paths(out, name, signed=entry.document is not None))
    except OSError:
        return False
    return size == entry.receipt_bytes


def write_file(path: Path, text: str) -> int:
    """Write `path` (no temporary file and rename: a file torn by a crash has the wrong size, and the journal,
    which records the sizes after the files are written, has it written again)."""
    data = text.encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(descriptor, view) :]
    finally:
        os.close(descriptor)
    return len(data)


@dataclass(frozen=True, slots=True)
class ReceiptProof:
    """One credential of a record: its digest, its issue event (id, log index, encoding, inclusion proof; no id if
    the ledger does not hold it), its JSON item, and the JSON text of the item's issuer records."""

    digest: bytes
    event_id: bytes | None
    index: int
    event: bytes
    proof: tuple[bytes, ...]
    item: dict[str, Any]
    issuer: str


@dataclass(frozen=True, slots=True)
class ReceiptRecord:
    """A node's `credledger-record/v1` answer, split into per-credential receipts without parsing and re-encoding
    the parts every credential shares (each receipt is the credential's `credledger-proof/v1` bundle: the record's
    anchor and the credential's own proofs)."""

    checkpoint: str
    #: The bundle's JSON text before and after its digest, the same for every credential of the record.
    head: str
    anchor: str
    items: tuple[ReceiptProof, ...]

    @classmethod
    def of(cls, data: dict[str, Any], digests: Sequence[bytes], signed: Mapping[bytes, bytes]) -> ReceiptRecord:
        """`signed` maps encodings of events this batch signed to their ids: an issue event the ledger holds in
        exactly those bytes is not decoded again to learn its id. The issuer records, the same for every credential
        of one issuer, are encoded once per run of equal ones. Raises DecodeError (or KeyError, TypeError,
        ValueError) for an answer that is not the record asked for."""
        if data.get("format") != RECORD_FORMAT or not isinstance(data.get("checkpoint"), str):
            raise DecodeError(f"expected a {RECORD_FORMAT} document")
        items = data["credentials"]
        if not isinstance(items, list) or len(items) != len(digests):
            raise DecodeError(f"expected {len(digests)} credentials")
        proofs = []
        issuer: Any = None
        issuer_text = "null"
        for digest, item in zip(digests, items, strict=True):
            if bytes.fromhex(item["digest"]) != digest:
                raise DecodeError(f"credential {item['digest']} is not the one asked for ({digest.hex()})")
            if item["issuer"] != issuer:
                issuer = item["issuer"]
                issuer_text = json.dumps(issuer)
            events = item["events"]
            if not events:
                proofs.append(ReceiptProof(digest, None, -1, b"", (), item, issuer_text))
                continue
            encoded = base64.b64decode(events[0]["event"], validate=True)
            hashes = tuple(base64.b64decode(h, validate=True) for h in events[0]["proof"])
            event_id = signed.get(encoded) or decode_event(encoded).id
            proofs.append(ReceiptProof(digest, event_id, int(events[0]["index"]), encoded, hashes, item, issuer_text))
        head = json.dumps({"format": BUNDLE_FORMAT, "origin": data["origin"], "genesis": data["genesis"]})
        anchor = json.dumps({key: data[key] for key in ("checkpoint", "header", "validators")})
        return cls(data["checkpoint"], head[:-1], anchor[1:-1], tuple(proofs))

    def bundle_text(self, proof: ReceiptProof) -> str:
        """The credential's `credledger-proof/v1` bundle (the document `credledger proof` writes, compact)."""
        item = proof.item
        own = f'"credential": {json.dumps(item["credential"])}, "events": {json.dumps(item["events"])}'
        return f'{self.head}, "digest": "{proof.digest.hex()}", {self.anchor}, {own}, "issuer": {proof.issuer}}}\n'

    def tlog_proof(self, proof: ReceiptProof) -> str:
        """The issue event's C2SP tlog-proof, as `credledger proof` writes it."""
        return tlogproof.TlogProof(proof.event, proof.index, proof.proof, self.checkpoint).format()
