"""What the command modules share: exit codes and errors (defined in `cli.exits`), argument parsing, key files
and output."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from credledger.cli.exits import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, UsageError, error
from credledger.ledger.digest import document_digest, parse_digest
from credledger.ledger.errors import DecodeError
from credledger.ledger.keys import SigningKey

__all__ = [
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_UNREACHABLE",
    "EXIT_USAGE",
    "MAX_CREDENTIAL_BYTES",
    "UsageError",
    "add_node_argument",
    "digest_argument",
    "error",
    "load_signing_key",
    "print_json",
    "time_argument",
    "write_new",
    "write_private",
]

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
#: Largest credential file read to compute a digest.
MAX_CREDENTIAL_BYTES = 64 * 1024 * 1024


def digest_argument(text: str, *, raw: bool = False) -> bytes:
    """A credential named on the command line: 64 hex digits, else a file (JSON: JCS + SHA-256; other: SHA-256).

    For a file, says on stderr which digest it computed. `raw` hashes the file's bytes even if it is JSON.
    """
    if _HEX64.fullmatch(text):
        return parse_digest(text.lower())
    path = Path(text)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CREDENTIAL_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{text}: not a 64-hex-digit digest, and cannot read it as a file ({exc.strerror})") from None
    if len(data) > MAX_CREDENTIAL_BYTES:
        raise UsageError(f"{text}: larger than {MAX_CREDENTIAL_BYTES} bytes")
    try:
        result = document_digest(data, raw=raw)
    except DecodeError as exc:
        raise UsageError(f"{text}: {exc}; to hash the file's bytes instead, use --raw") from None
    print(f"digest ({result.method.value}) {result.digest.hex()}  {text}", file=sys.stderr)
    return result.digest


def add_raw_argument(parser: argparse.ArgumentParser) -> None:
    """The `--raw` flag of every command that takes a credential file."""
    parser.add_argument(
        "--raw",
        action="store_true",
        help="hash a credential file's bytes (SHA-256) even if it is JSON, instead of its RFC 8785 form",
    )


def time_argument(text: str, what: str) -> int:
    """A time as milliseconds since the epoch, or ISO 8601 (a date means its midnight UTC; no zone means UTC)."""
    if text.isdigit():
        return int(text)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what}: {text!r} is neither milliseconds nor an ISO 8601 date or date-time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    millis = int(moment.timestamp() * 1000)
    if millis < 0:
        raise UsageError(f"{what}: {text!r} is before 1970")
    return millis


def load_signing_key(path: str) -> SigningKey:
    """Read a C2SP signer-key file; its key name is the member id that signs."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"key file {path}: cannot read it ({exc})") from None
    try:
        return SigningKey.from_skey(text)
    except DecodeError as exc:
        raise UsageError(f"key file {path}: {exc}") from None


def write_private(path: Path, text: str) -> None:
    """Create `path` readable by its owner only, refusing to replace an existing file (keys are never clobbered)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(f"{path} exists already; refusing to overwrite it") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot create it ({exc.strerror})") from None
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)


def write_new(path: Path, text: str, *, force: bool = False) -> None:
    """Write a public file, refusing to replace an existing one unless `force`."""
    if path.exists() and not force:
        raise UsageError(f"{path} exists already; refusing to overwrite it (use --force)")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{path}: cannot write it ({exc.strerror})") from None


def print_json(value: Any) -> None:
    """Machine-readable output: one JSON document on stdout."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def add_node_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node",
        default=os.environ.get("CREDLEDGER_NODE", "http://127.0.0.1:8700"),
        metavar="URL",
        help="the node's API (default: $CREDLEDGER_NODE or http://127.0.0.1:8700)",
    )
    parser.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="how long to wait for the node (default: 10; 90 with --wait)"
    )
    parser.add_argument("--json", action="store_true", help="print the node's answer as JSON, for scripts")
