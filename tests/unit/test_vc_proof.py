from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest

from credledger.ledger.keys import SigningKey
from credledger.ledger.vc.canon import canonicalize
from credledger.ledger.vc.errors import ProofError
from credledger.ledger.vc.multikey import (
    decode_multibase_base58btc,
    decode_public_key,
    did_key_verification_method,
    encode_public_key,
    multibase_base58btc,
)
from credledger.ledger.vc.proof import (
    format_datetime,
    resolve_did_key,
    sign_credential,
    verify_credential,
    verify_proof,
)
from tests.conftest import VECTORS
from tests.unit.test_vc_canon import examples_loader

EDDSA = VECTORS / "vc-di-eddsa"
RDFC = EDDSA / "eddsa-rdfc-2022"
OB = VECTORS / "ob-v3p0"
#: 2023-02-24T23:36:38Z, the W3C vector's `created`.
W3C_CREATED_MS = 1_677_281_798_000
ISSUER_DID = "did:web:uni.example"


def _json(path: str) -> Any:
    return json.loads((VECTORS / path).read_text())


def w3c_key() -> SigningKey:
    private = decode_multibase_base58btc(_json("vc-di-eddsa/keyPair.json")["privateKeyMultibase"])
    assert private[:2] == b"\x80\x26"  # multicodec ed25519-priv
    return SigningKey("w3c-example", private[2:])


def ob_key() -> SigningKey:
    return SigningKey("ob-example", bytes.fromhex(_json("ob-v3p0/vector.json")["privateKeyHex"])[:32])


def test_w3c_example_private_key_matches_its_public_multikey() -> None:
    assert encode_public_key(w3c_key().public.raw) == _json("vc-di-eddsa/keyPair.json")["publicKeyMultibase"]


def test_w3c_proof_configuration_canonicalizes_and_hashes_to_the_published_values() -> None:
    config = _json("vc-di-eddsa/eddsa-rdfc-2022/proofConfigDataInt.json")
    canonical = canonicalize(config, examples_loader())
    assert canonical == (RDFC / "proofCanonDataInt.txt").read_text()
    assert hashlib.sha256(canonical.encode()).hexdigest() == (RDFC / "proofHashDataInt.txt").read_text().strip()


def test_w3c_document_hash_is_the_published_one() -> None:
    canonical = canonicalize(_json("vc-di-eddsa/unsigned.json"), examples_loader())
    assert hashlib.sha256(canonical.encode()).hexdigest() == (RDFC / "docHashDataInt.txt").read_text().strip()


def test_signing_the_w3c_example_reproduces_the_published_signed_credential_byte_for_byte() -> None:
    vm = did_key_verification_method(w3c_key().public.raw)
    signed = sign_credential(_json("vc-di-eddsa/unsigned.json"), w3c_key(), vm, W3C_CREATED_MS, examples_loader())
    expected = _json("vc-di-eddsa/eddsa-rdfc-2022/signedDataInt.json")
    assert signed == expected
    assert signed["proof"]["proofValue"] == (RDFC / "sigBTC58DataInt.txt").read_text().strip()
    signature = decode_multibase_base58btc(signed["proof"]["proofValue"])
    assert signature.hex() == (RDFC / "sigHexDataInt.txt").read_text().strip()


def test_the_published_w3c_signed_credential_verifies() -> None:
    signed = _json("vc-di-eddsa/eddsa-rdfc-2022/signedDataInt.json")
    verified = verify_proof(signed, resolve_did_key, examples_loader())
    assert verified.verification_method == signed["proof"]["verificationMethod"]
    assert verified.created == "2023-02-24T23:36:38Z"


def test_open_badges_vector_signature_is_reproduced_and_verifies() -> None:
    vector = _json("ob-v3p0/vector.json")
    signed = _json("ob-v3p0/signed.json")
    unsigned = {k: v for k, v in signed.items() if k != "proof"}
    vm = signed["proof"]["verificationMethod"]
    created_ms = 1_262_373_804_000  # 2010-01-01T19:23:24Z
    ours = sign_credential(unsigned, ob_key(), vm, created_ms)
    assert decode_multibase_base58btc(ours["proof"]["proofValue"]).hex() == vector["signatureHex"]
    assert ours["proof"]["proofValue"] == vector["proofValue"]
    key = bytes.fromhex(vector["publicKeyHex"])
    verified = verify_credential(signed, lambda method: key if method == vm else b"")
    assert verified.proof_purpose == "assertionMethod"


def _signed(issuer: str = ISSUER_DID) -> dict[str, Any]:
    document = {k: v for k, v in _json("ob-v3p0/signed.json").items() if k != "proof"}
    document["issuer"] = {**document["issuer"], "id": issuer}
    key = SigningKey("uni.example", hashlib.sha256(b"test issuer").digest())
    return sign_credential(document, key, f"{ISSUER_DID}#0a0b0c0d", 1_767_225_600_000)


def _issuer_key(method: str) -> bytes:
    if method != f"{ISSUER_DID}#0a0b0c0d":
        raise ProofError("verification-method", f"unknown {method}")
    return SigningKey("uni.example", hashlib.sha256(b"test issuer").digest()).public.raw


def test_a_credential_we_sign_verifies_and_names_its_method_and_time() -> None:
    verified = verify_credential(_signed(), _issuer_key)
    assert verified.verification_method == f"{ISSUER_DID}#0a0b0c0d"
    assert verified.created == "2026-01-01T00:00:00Z"


def _tampered(change: Any) -> dict[str, Any]:
    signed = copy.deepcopy(_signed())
    change(signed)
    return signed


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (lambda d: d["credentialSubject"]["achievement"].update(name="Leadership"), "signature"),
        (lambda d: d.update(validFrom="2011-01-01T00:00:00Z"), "signature"),
        (lambda d: d["proof"].update(created="2026-01-02T00:00:00Z"), "signature"),
        (lambda d: d["proof"].update(cryptosuite="eddsa-jcs-2022"), "cryptosuite"),
        (lambda d: d["proof"].update(type="Ed25519Signature2020"), "proof-type"),
        (lambda d: d["proof"].update(proofPurpose="authentication"), "proof-purpose"),
        (lambda d: d["proof"].update(created="yesterday"), "created"),
        (lambda d: d["proof"].update(proofValue="uAAAA"), "proof-value"),
        (lambda d: d["proof"].update(proofValue=multibase_base58btc(bytes(63))), "proof-value"),
        (lambda d: d["proof"].update(verificationMethod=f"{ISSUER_DID}#ffffffff"), "verification-method"),
        (lambda d: d.pop("proof"), "proof-present"),
        (lambda d: d.update(undefinedTerm=1), "canonicalization"),
        (lambda d: d["type"].append("UndefinedType"), "canonicalization"),
    ],
)
def test_a_changed_credential_fails_naming_the_check(change: Any, check: str) -> None:
    with pytest.raises(ProofError) as raised:
        verify_credential(_tampered(change), _issuer_key)
    assert raised.value.check == check


def test_a_proof_by_a_key_of_someone_other_than_the_issuer_fails_the_issuer_check() -> None:
    with pytest.raises(ProofError) as raised:
        verify_credential(_signed(issuer="did:web:other.example"), _issuer_key)
    assert raised.value.check == "issuer-key"


def test_a_proof_signed_by_another_key_fails_the_signature_check() -> None:
    other = SigningKey("x", bytes(32)).public.raw
    with pytest.raises(ProofError) as raised:
        verify_credential(_signed(), lambda method: other)
    assert raised.value.check == "signature"


def test_signing_a_document_that_already_has_a_proof_is_refused() -> None:
    with pytest.raises(ProofError, match="already carries a proof"):
        sign_credential(_signed(), SigningKey("x", bytes(32)), "did:web:x#1", 0)


def test_created_is_an_xml_schema_datetime_in_utc() -> None:
    assert format_datetime(W3C_CREATED_MS) == "2023-02-24T23:36:38Z"
    assert format_datetime(1_767_225_600_999) == "2026-01-01T00:00:00Z"


def test_did_key_resolver_returns_the_key_in_the_identifier() -> None:
    raw = w3c_key().public.raw
    assert resolve_did_key(did_key_verification_method(raw)) == raw
    assert decode_public_key(encode_public_key(raw)) == raw


def test_signing_leaves_the_callers_document_untouched_and_unshared() -> None:
    document = {k: v for k, v in _json("ob-v3p0/signed.json").items() if k != "proof"}
    before = copy.deepcopy(document)
    signed = sign_credential(document, ob_key(), "https://example.edu/issuers/565049#k", 0)
    signed["credentialSubject"]["achievement"]["name"] = "Changed"
    assert document == before
