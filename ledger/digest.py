"""Credential digests: how a document becomes the 32 bytes the ledger knows it by (DESIGN §3).

A JSON credential (a W3C Verifiable Credential, an Open Badges 3.0 badge, ...) is hashed in its RFC 8785 (JCS)
canonical form, so re-serialising it (other key order, other whitespace, other number spelling) keeps its digest.
A file is a JSON credential when, after an optional byte-order mark, it is UTF-8 JSON text (RFC 8259) whose value
is an object; JSON that RFC 8785 cannot canonicalise is refused (`NotCanonicalJson`, see ledger/jcs.py), never
hashed some other way. Any other file -- or any file, when the person asks for it -- is hashed as it is.
The verification page computes the same digests with the same refusals (node/api/static/ledger.js `readDocument`).
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass
from enum import Enum

from credledger.ledger.errors import DecodeError
from credledger.ledger.jcs import NotJson, canonical_json

DIGEST_SIZE = 32
_HEX_DIGITS = frozenset(string.hexdigits)
_JSON_SPACE = " \t\n\r"


class DigestMethod(Enum):
    """How a document was hashed; the value is the phrase the command line and the page show."""

    JCS = "RFC 8785 JSON"
    RAW = "SHA-256 of the file's bytes"


@dataclass(frozen=True, slots=True)
class CredentialDigest:
    """A document's digest and how it was computed."""

    digest: bytes
    method: DigestMethod


def document_digest(data: bytes, *, raw: bool = False) -> CredentialDigest:
    """SHA-256 of the JCS form if `data` is a JSON object (and not `raw`), else SHA-256 of `data`.

    Raises `NotCanonicalJson` (a DecodeError) for a JSON object that RFC 8785 cannot canonicalise: hashing its
    raw bytes instead would give a digest no JCS tool agrees with, so the person must choose `raw` explicitly.
    """
    if not raw:
        text = _json_object_text(data)
        if text is not None:
            try:
                canonical = canonical_json(text)
            except NotJson:
                pass  # starts like an object but is not JSON: its bytes are the document
            else:
                return CredentialDigest(hashlib.sha256(canonical).digest(), DigestMethod.JCS)
    return CredentialDigest(hashlib.sha256(data).digest(), DigestMethod.RAW)


def credential_digest(data: bytes) -> bytes:
    """The ledger digest of a document's bytes (see `document_digest`)."""
    return document_digest(data).digest


def parse_digest(text: str) -> bytes:
    """Parse a digest written as 64 hexadecimal digits (as the API and command line show them)."""
    if len(text) != 2 * DIGEST_SIZE:
        raise DecodeError(f"a digest is {2 * DIGEST_SIZE} hexadecimal digits, got {len(text)} characters")
    for position, char in enumerate(text):
        if char not in _HEX_DIGITS:
            raise DecodeError(f"a digest is hexadecimal: {char!r} at position {position} is not a hex digit")
    return bytes.fromhex(text)


def _json_object_text(data: bytes) -> str | None:
    """The text of `data` if it could be a JSON object (UTF-8, first token "{"), else None."""
    try:
        # A byte-order mark is not part of the document: an editor adding one must not change the digest.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    return text if text.lstrip(_JSON_SPACE).startswith("{") else None
