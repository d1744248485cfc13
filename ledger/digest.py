"""Credential digests: how a document becomes the 32 bytes the ledger knows it by (DESIGN §3).

A JSON credential (a W3C Verifiable Credential, an Open Badges 3.0 badge, ...) is hashed in its RFC 8785 (JCS)
canonical form, so re-serialising it (other key order, other whitespace, other number spelling) keeps its digest.
Any other document is hashed as it is.
"""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

import rfc8785

from ledger.errors import DecodeError

DIGEST_SIZE = 32
_HEX_DIGITS = frozenset(string.hexdigits)
_MAX_SAFE_INTEGER = 2**53 - 1


def credential_digest(data: bytes) -> bytes:
    """SHA-256 of the JCS form if `data` is a JSON object, else SHA-256 of `data`.

    Raises DecodeError for a JSON object that JCS cannot canonicalise (repeated member names, which RFC 8785's
    I-JSON input forbids): hashing its raw bytes instead would give a digest no other JCS tool agrees with.
    """
    document = _json_object(data)
    if document is None:
        return hashlib.sha256(data).digest()
    try:
        canonical = rfc8785.dumps(document)
    except rfc8785.CanonicalizationError as exc:
        raise DecodeError(f"JSON credential cannot be canonicalised (RFC 8785): {exc}") from None
    return hashlib.sha256(canonical).digest()


def parse_digest(text: str) -> bytes:
    """Parse a digest written as 64 hexadecimal digits (as the API and command line show them)."""
    if len(text) != 2 * DIGEST_SIZE:
        raise DecodeError(f"a digest is {2 * DIGEST_SIZE} hexadecimal digits, got {len(text)} characters")
    for position, char in enumerate(text):
        if char not in _HEX_DIGITS:
            raise DecodeError(f"a digest is hexadecimal: {char!r} at position {position} is not a hex digit")
    return bytes.fromhex(text)


def _json_object(data: bytes) -> dict[str, Any] | None:
    """The JSON object `data` holds, or None if it is not a JSON object."""
    try:
        # A byte-order mark is not part of the document: an editor adding one must not change the digest.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = json.loads(
            text, object_pairs_hook=_refuse_repeated_names, parse_constant=_not_json, parse_int=_json_integer
        )
    except _NotIJson as exc:
        raise DecodeError(f"JSON credential is not I-JSON (RFC 7493): {exc}") from None
    except (ValueError, RecursionError):
        return None  # not JSON after all (or absurdly deep): its bytes are the document
    return value if isinstance(value, dict) else None


class _NotIJson(ValueError):
    pass


def _refuse_repeated_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise _NotIJson(f"member name {name!r} appears twice in one object")
        result[name] = value
    return result


def _not_json(name: str) -> Any:
    # Python's json accepts NaN and Infinity; JSON does not, so a document holding them is not JSON.
    raise ValueError(f"{name} is not a JSON number")


def _json_integer(text: str) -> int | float:
    # JCS treats every number as an IEEE 754 double. Integers beyond 2**53 would be refused by rfc8785 as ints, so
    # they are read as doubles, exactly as a JavaScript JCS implementation reads them.
    value = int(text)
    return value if abs(value) <= _MAX_SAFE_INTEGER else float(text)
