"""Ed25519 keys in C2SP signed-note form, and domain-separated signing.

A public key is written as a verifier key (C2SP signed-note "vkey"): ``<name>+<hex key id>+<base64(0x01 ||
pubkey)>`` where key id = SHA-256(name || 0x0A || 0x01 || pubkey)[:4]. A node key's name is its member id.

Signing uses `cryptography` (OpenSSL); verification uses libsodium through PyNaCl, which is about twice as fast
and is the one verifier every node and auditor runs, so all of them accept exactly the same signatures.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from credledger.ledger import encoding
from credledger.ledger.errors import BadSignature, DecodeError

ALG_ED25519 = 0x01
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SEED_SIZE = 32
KEY_ID_SIZE = 4
SKEY_PREFIX = "PRIVATE+KEY+"


def key_id(name: str, public_key: bytes) -> bytes:
    """The C2SP key id: the first 4 bytes of SHA-256(name || "\\n" || 0x01 || public key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:KEY_ID_SIZE]


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise `BadSignature` unless `signature` is a valid Ed25519 signature of `message` under `public_key`."""
    if len(signature) != SIGNATURE_SIZE:
        raise BadSignature(f"expected a {SIGNATURE_SIZE}-byte signature, got {len(signature)} bytes")
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise BadSignature(f"expected a {PUBLIC_KEY_SIZE}-byte public key, got {len(public_key)} bytes")
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        raise BadSignature("Ed25519 signature does not verify") from None


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A named Ed25519 public key."""

    name: str
    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != PUBLIC_KEY_SIZE:
            raise ValueError(f"expected a {PUBLIC_KEY_SIZE}-byte public key, got {len(self.raw)}")
        if not self.name or any(c in self.name for c in "+ \n\t") or not self.name.isprintable():
            raise ValueError(f"key name {self.name!r} must be non-empty, printable, without '+' or spaces")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.raw)

    def vkey(self) -> str:
        """The C2SP verifier key text."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.raw).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, text: str) -> PublicKey:
        """Parse C2SP verifier key text, checking the algorithm byte and that the key id matches."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise DecodeError(f"verifier key must be <name>+<hex id>+<base64 key>, got {text!r}")
        name, hex_id, b64 = parts
        claimed_id = encoding.from_hex(hex_id, f"verifier key {name!r}: key id")
        blob = encoding.from_base64(b64, f"verifier key {name!r}: key")
        if len(blob) != 1 + PUBLIC_KEY_SIZE or blob[0] != ALG_ED25519:
            raise DecodeError(f"verifier key {name!r}: expected 0x01 followed by a 32-byte Ed25519 key")
        try:
            key = cls(name, blob[1:])
        except ValueError as exc:
            raise DecodeError(f"verifier key: {exc}") from None
        if len(claimed_id) != KEY_ID_SIZE or key.key_id != claimed_id:
            raise DecodeError(f"verifier key {name!r}: key id {hex_id} does not match the key ({key.key_id.hex()})")
        return key

    def verify(self, domain: bytes, message: bytes, signature: bytes) -> None:
        """Raise `BadSignature` unless `signature` signs `domain || message` under this key."""
        try:
            verify_signature(self.raw, domain + message, signature)
        except BadSignature as exc:
            raise BadSignature(f"{exc} under key {self.name}+{self.key_id.hex()}") from None


class SigningKey:
    """A named Ed25519 private key. Kept out of repr and equality so it never lands in a log line."""

    __slots__ = ("_private", "public")

    def __init__(self, name: str, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise ValueError(f"expected a {SEED_SIZE}-byte Ed25519 seed, got {len(seed)}")
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        raw = self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public = PublicKey(name, raw)

    @classmethod
    def generate(cls, name: str) -> SigningKey:
        seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return cls(name, seed)

    @property
    def name(self) -> str:
        return self.public.name

    @property
    def key_id(self) -> bytes:
        return self.public.key_id

    def seed(self) -> bytes:
        """The 32-byte private seed, for writing a key file."""
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def skey(self) -> str:
        """The private key as C2SP signer-key text: ``PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>``."""
        encoded = base64.b64encode(bytes([ALG_ED25519]) + self.seed()).decode()
        return f"{SKEY_PREFIX}{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_skey(cls, text: str) -> SigningKey:
        """Parse C2SP signer-key text, checking the algorithm byte and that the key id matches."""
        text = text.strip()
        if not text.startswith(SKEY_PREFIX):
            raise DecodeError("signer key must start with PRIVATE+KEY+")
        parts = text[len(SKEY_PREFIX) :].split("+", 2)
        if len(parts) != 3:
            raise DecodeError("signer key must be PRIVATE+KEY+<name>+<hex id>+<base64 key>")
        name, hex_id, b64 = parts
        blob = encoding.from_base64(b64, f"signer key {name!r}: key")
        if len(blob) != 1 + SEED_SIZE or blob[0] != ALG_ED25519:
            raise DecodeError(f"signer key {name!r}: expected 0x01 followed by a 32-byte Ed25519 seed")
        try:
            key = cls(name, blob[1:])
        except ValueError as exc:
            raise DecodeError(f"signer key: {exc}") from None
        if key.key_id.hex() != hex_id:
            raise DecodeError(f"signer key {name!r}: key id {hex_id} does not match the key ({key.key_id.hex()})")
        return key

    def sign(self, domain: bytes, message: bytes) -> bytes:
        """Sign `domain || message`. Every caller passes a constant from `ledger.domains` (or b"" for notes)."""
        return self._private.sign(domain + message)

    def __repr__(self) -> str:
        return f"SigningKey({self.public.vkey()!r})"
