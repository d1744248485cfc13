"""Data Integrity proofs with cryptosuite ``eddsa-rdfc-2022`` (W3C vc-di-eddsa v1.0 §3.3), create and verify.

Creating (§3.3.1 Create Proof, §3.3.4 to §3.3.6): the proof configuration is the proof options (without
``proofValue``) under the document's ``@context``; both it and the document without ``proof`` are canonicalized
with RDFC-1.0; the signed bytes are SHA-256(canonical proof configuration) || SHA-256(canonical document); the
``proofValue`` is the base58btc multibase of the 64-byte Ed25519 signature.

Verifying (§3.3.2 Verify Proof) recomputes the same bytes and checks the signature under the key the caller's
resolver returns for ``verificationMethod``. Every refusal is a `ProofError` whose `check` names the step.
The Ed25519 signature covers the hash data alone: Data Integrity fixes the message, so no ledger domain prefix.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from credledger.ledger.errors import BadSignature, CredledgerError
from credledger.ledger.keys import SIGNATURE_SIZE, SigningKey, verify_signature
from credledger.ledger.vc.canon import canonicalize
from credledger.ledger.vc.errors import ProofError
from credledger.ledger.vc.loader import DocumentLoader, shipped_loader
from credledger.ledger.vc.multikey import decode_multibase_base58btc, multibase_base58btc, parse_did_key

PROOF_TYPE = "DataIntegrityProof"
CRYPTOSUITE = "eddsa-rdfc-2022"
ASSERTION_METHOD = "assertionMethod"
#: XML Schema dateTime as Data Integrity requires for ``created`` (a time zone is required here).
DATETIME = re.compile(r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")

#: Maps a verification method id to the raw Ed25519 key it names, raising a `CredledgerError` if it cannot.
KeyResolver = Callable[[str], bytes]


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """What a verified proof asserts: who (verification method), when (created), for what (purpose)."""

    verification_method: str
    created: str | None
    proof_purpose: str


def format_datetime(time_ms: int) -> str:
    """An XML Schema dateTime in UTC to the second (``2026-01-01T00:00:00Z``) for a Unix time in milliseconds."""
    return datetime.fromtimestamp(time_ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _hash_data(proof_config: dict[str, Any], unsecured: dict[str, Any], loader: DocumentLoader) -> bytes:
    """SHA-256(canonical proof configuration) || SHA-256(canonical document) (vc-di-eddsa §3.3.5)."""
    config_hash = hashlib.sha256(canonicalize(proof_config, loader).encode()).digest()
    document_hash = hashlib.sha256(canonicalize(unsecured, loader).encode()).digest()
    return config_hash + document_hash


def sign_credential(
    document: Mapping[str, Any],
    key: SigningKey,
    verification_method: str,
    created_ms: int,
    loader: DocumentLoader | None = None,
) -> dict[str, Any]:
    """A copy of `document` with an ``eddsa-rdfc-2022`` proof for purpose ``assertionMethod`` signed by `key`.

    `verification_method` is the id under which verifiers find `key` (``<did>#<key id>``); `created_ms` is the
    proof's creation time (Unix milliseconds), passed in so signing stays a pure function.
    """
    if "proof" in document:
        raise ProofError("proof-absent", "the document already carries a proof; sign the unsecured document")
    if "@context" not in document:
        raise ProofError("context", "the document has no @context")
    loader = loader or shipped_loader()
    options: dict[str, Any] = {
        "type": PROOF_TYPE,
        "cryptosuite": CRYPTOSUITE,
        "created": format_datetime(created_ms),
        "verificationMethod": verification_method,
        "proofPurpose": ASSERTION_METHOD,
    }
    unsecured = copy.deepcopy(dict(document))  # the signed copy shares nothing with the caller's document
    signature = key.sign(b"", _hash_data({**options, "@context": unsecured["@context"]}, unsecured, loader))
    return {**unsecured, "proof": {**options, "proofValue": multibase_base58btc(signature)}}


def _the_proof(document: Mapping[str, Any]) -> dict[str, Any]:
    proof = document.get("proof")
    if isinstance(proof, list) and len(proof) == 1:
        proof = proof[0]
    if proof is None:
        raise ProofError("proof-present", "the document carries no proof")
    if not isinstance(proof, dict):
        raise ProofError("proof-present", "expected one proof object")
    return proof


def _require(proof: Mapping[str, Any], name: str, expected: str | None, check: str) -> str:
    value = proof.get(name)
    if not isinstance(value, str):
        raise ProofError(check, f"expected {name} to be a string, got {type(value).__name__}")
    if expected is not None and value != expected:
        raise ProofError(check, f"expected {name} {expected!r}, got {value!r}")
    return value


def verify_proof(
    document: Mapping[str, Any], resolve_key: KeyResolver, loader: DocumentLoader | None = None
) -> VerifiedProof:
    """Check the document's ``eddsa-rdfc-2022`` proof for purpose ``assertionMethod``; raise `ProofError`."""
    loader = loader or shipped_loader()
    if not isinstance(document, Mapping):
        raise ProofError("document", f"expected a JSON object, got {type(document).__name__}")
    proof = _the_proof(document)
    _require(proof, "type", PROOF_TYPE, "proof-type")
    _require(proof, "cryptosuite", CRYPTOSUITE, "cryptosuite")
    purpose = _require(proof, "proofPurpose", ASSERTION_METHOD, "proof-purpose")
    method = _require(proof, "verificationMethod", None, "verification-method")
    created = proof.get("created")
    if created is not None and (not isinstance(created, str) or not DATETIME.fullmatch(created)):
        raise ProofError("created", f"expected an XML Schema dateTime with a time zone, got {created!r}")
    try:
        signature = decode_multibase_base58btc(_require(proof, "proofValue", None, "proof-value"))
    except CredledgerError as exc:
        raise ProofError("proof-value", str(exc)) from None
    if len(signature) != SIGNATURE_SIZE:
        raise ProofError("proof-value", f"expected a {SIGNATURE_SIZE}-byte signature, got {len(signature)} bytes")
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    options = {k: v for k, v in proof.items() if k != "proofValue"}
    if "@context" in options:
        # §3.3.2 step 4: the proof's contexts must open the document's, and then they are the document's.
        proof_ctx, doc_ctx = _as_list(options["@context"]), _as_list(unsecured.get("@context"))
        if doc_ctx[: len(proof_ctx)] != proof_ctx:
            raise ProofError("context", "the proof's @context does not open the document's @context")
        unsecured["@context"] = options["@context"]
    if "@context" not in unsecured:
        raise ProofError("context", "the document has no @context")
    options["@context"] = unsecured["@context"]
    try:
        public_key = resolve_key(method)
    except CredledgerError as exc:
        raise ProofError("verification-method", f"{method}: {exc}") from None
    try:
        hash_data = _hash_data(options, unsecured, loader)
    except CredledgerError as exc:
        raise ProofError("canonicalization", str(exc)) from None
    try:
        verify_signature(public_key, hash_data, signature)
    except BadSignature as exc:
        raise ProofError("signature", f"{exc} under {method}") from None
    return VerifiedProof(method, created, purpose)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def issuer_id(document: Mapping[str, Any]) -> str:
    """The credential's ``issuer`` (a URL string, or an object's ``id``)."""
    issuer = document.get("issuer")
    if isinstance(issuer, dict):
        issuer = issuer.get("id")
    if not isinstance(issuer, str):
        raise ProofError("issuer", "the credential has no issuer id")
    return issuer


def verify_credential(
    document: Mapping[str, Any], resolve_key: KeyResolver, loader: DocumentLoader | None = None
) -> VerifiedProof:
    """`verify_proof`, after checking that the proof's key belongs to the credential's issuer (``<issuer>#…``)."""
    if not isinstance(document, Mapping):
        raise ProofError("document", f"expected a JSON object, got {type(document).__name__}")
    method = _require(_the_proof(document), "verificationMethod", None, "verification-method")
    controller = method.partition("#")[0]
    issuer = issuer_id(document)
    if controller != issuer:
        raise ProofError("issuer-key", f"signed by a key of {controller!r}, but the issuer is {issuer!r}")
    return verify_proof(document, resolve_key, loader)


def resolve_did_key(verification_method: str) -> bytes:
    """A `KeyResolver` for ``did:key`` methods, which carry their key in the identifier."""
    return parse_did_key(verification_method)
