"""Ed25519 public keys as Multikey / multibase values, and ``did:key`` identifiers.

- multibase (draft-multiformats-multibase): a one-character prefix names the base; ``z`` = base58btc (Bitcoin
  alphabet), ``u`` = base64url without padding.
- Multikey (W3C Controller Documents §2.2.2): ``publicKeyMultibase`` = base58btc multibase of the multicodec
  header ``0xed 0x01`` (varint of 0xed, ed25519-pub) followed by the 32-byte key, so every such key reads
  ``z6Mk…``.
- did:key (W3C CCG did:key v0.7): ``did:key:<publicKeyMultibase>``; its one verification method is
  ``did:key:<mb>#<mb>``.
"""

from __future__ import annotations

import base64
import binascii

from credledger.ledger.errors import DecodeError
from credledger.ledger.keys import PUBLIC_KEY_SIZE

BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {c: i for i, c in enumerate(BASE58_ALPHABET)}
MULTIBASE_BASE58BTC = "z"
MULTIBASE_BASE64URL = "u"
#: Multicodec ed25519-pub (0xed) as an unsigned varint.
ED25519_PUB_HEADER = b"\xed\x01"
DID_KEY_PREFIX = "did:key:"
#: Longest multibase value we decode (a 64-byte signature is 88 characters; a status list is decoded elsewhere).
MAX_BASE58_CHARS = 256


def base58_encode(data: bytes) -> str:
    """Bitcoin base58: leading zero bytes become '1'."""
    zeros = len(data) - len(data.lstrip(b"\0"))
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, rem = divmod(number, 58)
        digits.append(BASE58_ALPHABET[rem])
    return "1" * zeros + "".join(reversed(digits))


def base58_decode(text: str) -> bytes:
    """Inverse of `base58_encode`; raises `DecodeError` on a character outside the alphabet."""
    if len(text) > MAX_BASE58_CHARS:
        raise DecodeError(f"base58 value is {len(text)} characters, more than {MAX_BASE58_CHARS}")
    number = 0
    for char in text:
        try:
            number = number * 58 + _BASE58_INDEX[char]
        except KeyError:
            raise DecodeError(f"{char!r} is not a base58btc character") from None
    zeros = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * zeros + body


def multibase_base58btc(data: bytes) -> str:
    """``z`` + base58btc."""
    return MULTIBASE_BASE58BTC + base58_encode(data)


def decode_multibase_base58btc(text: str) -> bytes:
    """Bytes of a ``z``-prefixed multibase value; any other base is a `DecodeError`."""
    if not isinstance(text, str) or not text.startswith(MULTIBASE_BASE58BTC):
        raise DecodeError(f"expected a base58btc multibase value starting with 'z', got {str(text)[:20]!r}")
    return base58_decode(text[1:])


def multibase_base64url(data: bytes) -> str:
    """``u`` + base64url without padding."""
    return MULTIBASE_BASE64URL + base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_multibase_base64url(text: str) -> bytes:
    """Bytes of a ``u``-prefixed multibase value (base64url, no padding); any other base is a `DecodeError`."""
    if not isinstance(text, str) or not text.startswith(MULTIBASE_BASE64URL):
        raise DecodeError(f"expected a base64url multibase value starting with 'u', got {str(text)[:20]!r}")
    body = text[1:]
    if "=" in body or any(c in body for c in "+/"):
        raise DecodeError("base64url multibase value must use the URL-safe alphabet without padding")
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise DecodeError("base64url multibase value does not decode") from None


def encode_public_key(public_key: bytes) -> str:
    """The Multikey ``publicKeyMultibase`` of a 32-byte Ed25519 public key (``z6Mk…``)."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise DecodeError(f"expected a {PUBLIC_KEY_SIZE}-byte Ed25519 public key, got {len(public_key)} bytes")
    return multibase_base58btc(ED25519_PUB_HEADER + public_key)


def decode_public_key(multibase: str) -> bytes:
    """The 32-byte Ed25519 key in a ``publicKeyMultibase`` value, checking base, multicodec header and length."""
    raw = decode_multibase_base58btc(multibase)
    if not raw.startswith(ED25519_PUB_HEADER):
        raise DecodeError(f"publicKeyMultibase {multibase[:12]!r}… is not an Ed25519 key (multicodec 0xed01)")
    key = raw[len(ED25519_PUB_HEADER) :]
    if len(key) != PUBLIC_KEY_SIZE:
        raise DecodeError(f"publicKeyMultibase holds a {len(key)}-byte key, expected {PUBLIC_KEY_SIZE}")
    return key


def did_key(public_key: bytes) -> str:
    """The ``did:key`` DID of an Ed25519 public key."""
    return DID_KEY_PREFIX + encode_public_key(public_key)


def did_key_verification_method(public_key: bytes) -> str:
    """The id of a ``did:key``'s one verification method: ``did:key:<mb>#<mb>``."""
    multibase = encode_public_key(public_key)
    return f"{DID_KEY_PREFIX}{multibase}#{multibase}"


def parse_did_key(did_or_method: str) -> bytes:
    """The Ed25519 key of a ``did:key`` DID or of its verification method id (the fragment must match)."""
    if not isinstance(did_or_method, str) or not did_or_method.startswith(DID_KEY_PREFIX):
        raise DecodeError(f"expected a did:key identifier, got {str(did_or_method)[:40]!r}")
    did, _, fragment = did_or_method.partition("#")
    multibase = did[len(DID_KEY_PREFIX) :]
    if fragment and fragment != multibase:
        raise DecodeError(f"did:key verification method fragment {fragment[:20]!r} does not name the DID's key")
    return decode_public_key(multibase)
