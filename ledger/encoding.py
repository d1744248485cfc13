"""Bytes spelled as text -- standard base64 and lowercase hex -- decoded strictly, in one place.

Every parser of outside text (JSON events, proof bundles, signed notes, verifier keys, tlog-proof files, node
answers) decodes through these two functions, so each refusal is a `DecodeError` naming where the text was, and
no decoding failure of the standard library (`binascii.Error`, or the `ValueError` that `base64.b64decode` raises
for a non-ASCII character) ever escapes as something else.

Canonical means one spelling per value: base64 with padding and without unused trailing bits (RFC 4648 §3.5,
so "AAB=" and "AAA=" do not both mean two zero bytes), hex in lowercase without spaces. Values that are signed or
hashed as text must be canonical; where the bytes alone matter (a bundle's proof hashes), any standard base64 is
accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from credledger.ledger.errors import DecodeError

_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def from_base64(text: Any, where: str, *, canonical: bool = True) -> bytes:
    """The bytes `text` spells in standard base64; DecodeError (prefixed with `where`) for anything else."""
    if not isinstance(text, str):
        raise DecodeError(f"{where}: expected a base64 string, got {type(text).__name__}")
    # The pattern also keeps non-ASCII characters away from b64decode, which raises a bare ValueError for them.
    if not text.isascii() or not _BASE64.fullmatch(text):
        raise DecodeError(f"{where}: expected standard base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):  # unreachable after the pattern, kept so no stdlib error can escape
        raise DecodeError(f"{where}: expected standard base64") from None
    if canonical and base64.b64encode(raw).decode() != text:
        raise DecodeError(f"{where}: expected canonical standard base64 (unused bits must be zero)")
    return raw


def from_hex(text: Any, where: str) -> bytes:
    """The bytes `text` spells in lowercase hex (an even number of digits 0-9, a-f, nothing else)."""
    if not isinstance(text, str):
        raise DecodeError(f"{where}: expected a hex string, got {type(text).__name__}")
    if not text.isascii() or not _HEX.fullmatch(text):
        raise DecodeError(f"{where}: expected lowercase hex (an even number of digits 0-9, a-f)")
    return bytes.fromhex(text)


def from_json_text(data: Any, where: str, max_bytes: int) -> Any:
    """`data` parsed if it is JSON text (str or bytes) of at most `max_bytes`, else `data` as it is (already parsed);
    DecodeError (prefixed with `where`) for text too long or not JSON."""
    if not isinstance(data, str | bytes):
        return data
    if len(data) > max_bytes:
        raise DecodeError(f"{where}: {len(data)} bytes exceeds the limit of {max_bytes}")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise DecodeError(f"{where}: not JSON ({exc})") from None
