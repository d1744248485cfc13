"""W3C Bitstring Status List v1.0: ``encodedList``, status list credentials and status entries (DESIGN §13).

A list is a bitstring of at least 131,072 entries (16 KiB, §6.1 minimumNumberOfEntries), one bit per entry
(``statusSize`` 1): index 0 is the left-most bit, i.e. the most significant bit of the first byte (§2.1
"encodedList"). ``encodedList`` is the multibase base64url (no padding, prefix ``u``) of the GZIP (RFC 1952)
compression of the bitstring. GZIP output is not unique, so a list's identity is the bits, never the encoding:
compare `decode_list` results, not strings.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from credledger.ledger.errors import DecodeError
from credledger.ledger.vc.errors import StatusListError
from credledger.ledger.vc.loader import CREDENTIALS_V2
from credledger.ledger.vc.multikey import decode_multibase_base64url, multibase_base64url
from credledger.ledger.vc.proof import format_datetime

#: §6.1: a list has at least this many entries (herd privacy).
MIN_LIST_ENTRIES = 131_072
#: Largest list we build or decode (8 Mi entries, 1 MiB of bits): bounds a decompression bomb.
MAX_LIST_ENTRIES = 8 * 1024 * 1024
#: Longest ``encodedList`` we look at (an all-random 1 MiB list compresses to about that much).
MAX_ENCODED_CHARS = 2 * 1024 * 1024
REVOCATION = "revocation"
SUSPENSION = "suspension"
#: The purposes credledger publishes (§2.1 also defines ``refresh`` and ``message``, which it does not use).
PURPOSES = (REVOCATION, SUSPENSION)
LIST_CREDENTIAL_TYPE = "BitstringStatusListCredential"
LIST_TYPE = "BitstringStatusList"
ENTRY_TYPE = "BitstringStatusListEntry"


@dataclass(frozen=True, slots=True)
class Bitstring:
    """A status bitstring: `data` holds `len(data) * 8` entries, index 0 in the top bit of byte 0."""

    data: bytes

    def __post_init__(self) -> None:
        if not MIN_LIST_ENTRIES <= len(self.data) * 8 <= MAX_LIST_ENTRIES:
            raise StatusListError(
                f"a status list has {MIN_LIST_ENTRIES} to {MAX_LIST_ENTRIES} entries, got {len(self.data) * 8}"
            )

    @classmethod
    def of(cls, set_indices: Iterable[int], length: int = MIN_LIST_ENTRIES) -> Bitstring:
        """A list of `length` entries (a multiple of 8) with exactly the bits at `set_indices` set."""
        if length % 8:
            raise StatusListError(f"a list length is a whole number of bytes, got {length} entries")
        if not MIN_LIST_ENTRIES <= length <= MAX_LIST_ENTRIES:
            raise StatusListError(f"a status list has {MIN_LIST_ENTRIES} to {MAX_LIST_ENTRIES} entries, got {length}")
        data = bytearray(length // 8)
        for index in set_indices:
            _check_index(index, length)
            data[index // 8] |= 0x80 >> (index % 8)
        return cls(bytes(data))

    @property
    def length(self) -> int:
        return len(self.data) * 8

    def is_set(self, index: int) -> bool:
        """The entry at `index` (True = revoked / suspended)."""
        _check_index(index, self.length)
        return bool(self.data[index // 8] & (0x80 >> (index % 8)))

    def set_indices(self) -> list[int]:
        """Every index whose bit is set, ascending."""
        return [i * 8 + b for i, byte in enumerate(self.data) if byte for b in range(8) if byte & (0x80 >> b)]


def _check_index(index: int, length: int) -> None:
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < length:
        raise StatusListError(f"status list index must be an integer in [0, {length}), got {index!r}")


def encode_list(bits: Bitstring) -> str:
    """The ``encodedList`` of a bitstring: ``u`` + base64url(GZIP(bits)), no padding (fixed mtime: reproducible)."""
    return multibase_base64url(gzip.compress(bits.data, compresslevel=9, mtime=0))


def decode_list(encoded: str) -> Bitstring:
    """The bitstring in an ``encodedList``; refuses other encodings, bad GZIP and lists out of bounds."""
    if not isinstance(encoded, str) or len(encoded) > MAX_ENCODED_CHARS:
        raise StatusListError(f"encodedList must be a string of at most {MAX_ENCODED_CHARS} characters")
    try:
        compressed = decode_multibase_base64url(encoded)
    except DecodeError as exc:
        raise StatusListError(f"encodedList: {exc}") from None
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # GZIP framing only
    try:
        data = inflater.decompress(compressed, MAX_LIST_ENTRIES // 8 + 1)
    except zlib.error as exc:
        raise StatusListError(f"encodedList is not GZIP data: {exc}") from None
    if len(data) > MAX_LIST_ENTRIES // 8:
        raise StatusListError(f"encodedList holds more than {MAX_LIST_ENTRIES} entries")
    if not inflater.eof or inflater.unused_data:
        raise StatusListError("encodedList is not exactly one complete GZIP member")
    return Bitstring(data)


def _check_purpose(purpose: str) -> str:
    if purpose not in PURPOSES:
        raise StatusListError(f"status purpose must be one of {', '.join(PURPOSES)}, got {purpose!r}")
    return purpose


def status_list_credential(
    issuer: str,
    list_url: str,
    purpose: str,
    bits: Bitstring,
    valid_from_ms: int,
    *,
    valid_until_ms: int | None = None,
    ttl_ms: int | None = None,
) -> dict[str, Any]:
    """An unsigned ``BitstringStatusListCredential`` (VC 2.0) for `issuer`'s list at `list_url`.

    Sign it with `ledger.vc.proof.sign_credential`. `ttl_ms` is the spec's ``ttl``: how long, in
    milliseconds, a verifier may cache the list.
    """
    _check_purpose(purpose)
    if valid_until_ms is not None and valid_until_ms <= valid_from_ms:
        raise StatusListError("validUntil must be later than validFrom")
    if ttl_ms is not None and ttl_ms <= 0:
        raise StatusListError(f"ttl must be a positive number of milliseconds, got {ttl_ms}")
    subject: dict[str, Any] = {
        "id": f"{list_url}#list",
        "type": LIST_TYPE,
        "statusPurpose": purpose,
        "encodedList": encode_list(bits),
    }
    if ttl_ms is not None:
        subject["ttl"] = ttl_ms
    credential: dict[str, Any] = {
        "@context": [CREDENTIALS_V2],
        "id": list_url,
        "type": ["VerifiableCredential", LIST_CREDENTIAL_TYPE],
        "issuer": issuer,
        "validFrom": format_datetime(valid_from_ms),
    }
    if valid_until_ms is not None:
        credential["validUntil"] = format_datetime(valid_until_ms)
    credential["credentialSubject"] = subject
    return credential


def status_entry(list_url: str, purpose: str, index: int) -> dict[str, Any]:
    """One ``BitstringStatusListEntry`` pointing at entry `index` of the list credential at `list_url`."""
    _check_purpose(purpose)
    _check_index(index, MAX_LIST_ENTRIES)
    return {
        "id": f"{list_url}#{index}",
        "type": ENTRY_TYPE,
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": list_url,
    }


def status_entries(list_urls: Mapping[str, str], index: int) -> list[dict[str, Any]]:
    """The ``credentialStatus`` of a credential: one entry per purpose (list URL per purpose), same index."""
    return [status_entry(list_urls[purpose], purpose, index) for purpose in PURPOSES if purpose in list_urls]


@dataclass(frozen=True, slots=True)
class StatusList:
    """What a ``BitstringStatusListCredential`` says: whose list, for what purpose, and the bits."""

    issuer: str
    list_url: str
    purpose: str
    bits: Bitstring


def read_status_list_credential(credential: Mapping[str, Any]) -> StatusList:
    """Check the shape of a ``BitstringStatusListCredential`` and decode its list (its proof is checked apart)."""
    types = credential.get("type")
    if not isinstance(types, list) or LIST_CREDENTIAL_TYPE not in types:
        raise StatusListError(f"expected a credential of type {LIST_CREDENTIAL_TYPE}")
    subject = credential.get("credentialSubject")
    if not isinstance(subject, dict) or subject.get("type") != LIST_TYPE:
        raise StatusListError(f"expected a credentialSubject of type {LIST_TYPE}")
    purpose = subject.get("statusPurpose")
    if not isinstance(purpose, str):
        raise StatusListError("statusPurpose must be a string")
    issuer = credential.get("issuer")
    issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
    list_url = credential.get("id")
    if not isinstance(issuer, str) or not isinstance(list_url, str):
        raise StatusListError("a status list credential names its issuer and its own id")
    return StatusList(issuer, list_url, _check_purpose(purpose), decode_list(subject.get("encodedList", "")))


def entry_index(entry: Mapping[str, Any]) -> int:
    """The index a ``BitstringStatusListEntry`` points at (``statusListIndex`` is a decimal string)."""
    if entry.get("type") != ENTRY_TYPE:
        raise StatusListError(f"expected a {ENTRY_TYPE}")
    text = entry.get("statusListIndex")
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or len(text) > 10:
        raise StatusListError(f"statusListIndex must be a decimal string, got {text!r}")
    index = int(text)
    _check_index(index, MAX_LIST_ENTRIES)
    return index
