"""DID Core 1.0 documents for a member's issuer keys, and the ``did:web`` <-> URL mapping (DESIGN §13).

A member's DID document lists one ``Multikey`` verification method per issuer key that was ever valid, id
``<did>#<key id hex>``, all in ``assertionMethod``: a retired key stays, so credentials it signed before it was
retired still verify; a key marked compromised is left out, which withdraws it from every verifier at once.

did:web (W3C CCG did:web method): ``did:web:<host>[%3A<port>][:<path segment>]*``. With no path the document is
at ``https://<host>[:<port>]/.well-known/did.json``; with a path at ``https://<host>[:<port>]/<path>/did.json``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from credledger.ledger.errors import DecodeError
from credledger.ledger.keys import KEY_ID_SIZE, PUBLIC_KEY_SIZE
from credledger.ledger.vc.errors import ProofError
from credledger.ledger.vc.loader import DID_V1, MULTIKEY_V1
from credledger.ledger.vc.multikey import (
    DID_KEY_PREFIX,
    decode_public_key,
    did_key_verification_method,
    encode_public_key,
    parse_did_key,
)

if TYPE_CHECKING:  # the event and genesis codecs check DIDs, and must not pull in the JSON-LD machinery to do so
    from credledger.ledger.vc.proof import KeyResolver

DID_WEB_PREFIX = "did:web:"
MULTIKEY = "Multikey"
WELL_KNOWN_PATH = "/.well-known/did.json"
DID_DOCUMENT_FILE = "did.json"
MAX_DID = 256
#: A DNS host name (lowercase letters, digits, hyphens, dots), as did:web allows it.
_HOST = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")
#: A path segment: RFC 3986 unreserved characters and percent-escapes (no ':' or '/').
_SEGMENT = re.compile(r"([A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})+")


class KeyStatus(Enum):
    """Where an issuer key stands in certified state."""

    VALID = "valid"
    RETIRED = "retired"
    COMPROMISED = "compromised"


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """One issuer key of a member: its 4-byte key id, raw Ed25519 public key and status."""

    key_id: bytes
    public_key: bytes
    status: KeyStatus

    def __post_init__(self) -> None:
        if len(self.key_id) != KEY_ID_SIZE:
            raise ValueError(f"expected a {KEY_ID_SIZE}-byte key id, got {len(self.key_id)}")
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise ValueError(f"expected a {PUBLIC_KEY_SIZE}-byte public key, got {len(self.public_key)}")


def verification_method_id(did: str, key_id: bytes) -> str:
    """``<did>#<key id hex>``: the id under which a member's issuer key appears in its DID document."""
    return f"{did}#{key_id.hex()}"


def member_method_id(did: str, key_id: bytes, public_key: bytes) -> str:
    """The verification method under which a member's issuer key signs: ``<did>#<key id hex>`` for a did:web; for a
    did:key, which names exactly one key, ``<did>#<multibase key>`` as did:key resolution defines it. Only that key
    can sign for a did:key member: `ProofError` (``issuer-key``) for any other."""
    if did.startswith(DID_KEY_PREFIX):
        method = did_key_verification_method(public_key)
        if method.partition("#")[0] != did:
            raise ProofError(
                "issuer-key",
                f"the member's DID {did[:60]}... names one key, and this issuer key {key_id.hex()} is not it: "
                "a did:key member signs standard credentials with the key its DID names",
            )
        return method
    return verification_method_id(did, key_id)


def check_did(did: str) -> str:
    """Return `did` if it is a ``did:web`` or ``did:key`` DID credledger accepts; else raise `DecodeError`."""
    if not isinstance(did, str) or len(did) > MAX_DID:
        raise DecodeError(f"expected a DID of at most {MAX_DID} characters")
    if did.startswith(DID_KEY_PREFIX):
        parse_did_key(did)
        if "#" in did:
            raise DecodeError("a did:key DID has no fragment")
        return did
    did_web_url(did)
    return did


def default_did(member_id: str) -> str:
    """``did:web:<member id>``: a member's DID unless genesis or governance names another (member ids are domains)."""
    did = DID_WEB_PREFIX + member_id
    try:
        return check_did(did)
    except DecodeError:
        raise ValueError(
            f"member id {member_id!r} is not a DNS name, so it has no default did:web: give a DID"
        ) from None


def did_document(did: str, keys: Iterable[IssuerKey]) -> dict[str, Any]:
    """The DID document of `did` listing every non-compromised issuer key as a ``Multikey`` assertion method.

    A did:key names one key, so its document lists that key alone (if it is a listed issuer key), under the id
    did:key resolution gives it (``<did>#<multibase key>``)."""
    check_did(did)
    listed = [key for key in keys if key.status is not KeyStatus.COMPROMISED]
    if did.startswith(DID_KEY_PREFIX):
        own = parse_did_key(did)
        listed = [key for key in listed if key.public_key == own]
    methods = [
        {
            "id": member_method_id(did, key.key_id, key.public_key),
            "type": MULTIKEY,
            "controller": did,
            "publicKeyMultibase": encode_public_key(key.public_key),
        }
        for key in listed
    ]
    ids = [method["id"] for method in methods]
    if len(set(ids)) != len(ids):
        raise DecodeError(f"two issuer keys of {did} share a key id")
    return {
        "@context": [DID_V1, MULTIKEY_V1],
        "id": did,
        "verificationMethod": methods,
        "assertionMethod": ids,
    }


def did_web_url(did: str) -> str:
    """The HTTPS URL of a ``did:web`` DID's document (host, optional ``%3A`` port, optional ``:`` path)."""
    if not isinstance(did, str) or not did.startswith(DID_WEB_PREFIX) or len(did) > MAX_DID:
        raise DecodeError(f"expected a did:web DID, got {str(did)[:60]!r}")
    host_port, *path = did[len(DID_WEB_PREFIX) :].split(":")
    host, _, port = host_port.partition("%3A")
    if not _HOST.fullmatch(host):
        raise DecodeError(f"did:web host {host!r} is not a lowercase DNS name")
    if port and (not port.isdigit() or not 0 < int(port) < 65536 or port.startswith("0")):
        raise DecodeError(f"did:web port {port!r} is not a port number")
    for segment in path:
        if not _SEGMENT.fullmatch(segment):
            raise DecodeError(f"did:web path segment {segment!r} is empty or has characters a URL path cannot")
    authority = f"{host}:{port}" if port else host
    return (
        f"https://{authority}/{'/'.join(path)}/{DID_DOCUMENT_FILE}" if path else f"https://{authority}{WELL_KNOWN_PATH}"
    )


def url_did_web(url: str) -> str:
    """The ``did:web`` DID whose document is at `url` (the inverse of `did_web_url`)."""
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.query or parts.fragment or parts.username or parts.password:
        raise DecodeError(f"a did:web document URL is https without query, fragment or user, got {url!r}")
    try:
        port = parts.port
    except ValueError:
        raise DecodeError(f"bad port in {url!r}") from None
    host = parts.hostname or ""
    host_port = f"{host}%3A{port}" if port is not None else host
    if parts.path == WELL_KNOWN_PATH:
        did = DID_WEB_PREFIX + host_port
    elif parts.path.endswith("/" + DID_DOCUMENT_FILE) and len(parts.path) > len(DID_DOCUMENT_FILE) + 2:
        segments = parts.path[1 : -len(DID_DOCUMENT_FILE) - 1].split("/")
        did = DID_WEB_PREFIX + ":".join([host_port, *segments])
    else:
        raise DecodeError(f"a did:web document URL ends in {WELL_KNOWN_PATH} or /<path>/did.json, got {url!r}")
    if did_web_url(did) != url:
        raise DecodeError(f"{url!r} is not the canonical URL of a did:web DID")
    return did


def _method_entries(document: Mapping[str, Any]) -> Sequence[Any]:
    entries = document.get("verificationMethod", [])
    return entries if isinstance(entries, list) else []


def key_in_did_document(document: Mapping[str, Any], verification_method: str) -> bytes:
    """The Ed25519 key of `verification_method` if `document` lists it for ``assertionMethod``; else `ProofError`."""
    did = document.get("id")
    if verification_method.partition("#")[0] != did:
        raise ProofError("verification-method", f"{verification_method!r} is not a method of {did!r}")
    assertion = document.get("assertionMethod", [])
    embedded = [m for m in assertion if isinstance(m, dict)] if isinstance(assertion, list) else []
    referenced = {m for m in assertion if isinstance(m, str)} if isinstance(assertion, list) else set()
    candidates = [m for m in embedded if m.get("id") == verification_method]
    if verification_method in referenced:
        candidates += [
            m for m in _method_entries(document) if isinstance(m, dict) and m.get("id") == verification_method
        ]
    if len(candidates) != 1:
        raise ProofError("verification-method", f"{verification_method!r} is not an assertion method of {did!r}")
    method = candidates[0]
    if method.get("type") != MULTIKEY or method.get("controller") != did:
        raise ProofError("verification-method", f"{verification_method!r} is not a Multikey controlled by {did!r}")
    try:
        return decode_public_key(method.get("publicKeyMultibase", ""))
    except DecodeError as exc:
        raise ProofError("verification-method", f"{verification_method!r}: {exc}") from None


def did_document_resolver(documents: Iterable[Mapping[str, Any]]) -> KeyResolver:
    """A `KeyResolver` over DID documents the caller already holds (e.g. derived from certified state)."""
    by_did = {document.get("id"): document for document in documents}

    def resolve(verification_method: str) -> bytes:
        did = verification_method.partition("#")[0]
        if did.startswith(DID_KEY_PREFIX):
            return parse_did_key(verification_method)
        if did not in by_did:
            raise ProofError("verification-method", f"no DID document for {did!r}")
        return key_in_did_document(by_did[did], verification_method)

    return resolve
