from __future__ import annotations

import hashlib

import pytest

from credledger.ledger.errors import DecodeError
from credledger.ledger.keys import SigningKey
from credledger.ledger.vc.canon import canonicalize
from credledger.ledger.vc.did import (
    IssuerKey,
    KeyStatus,
    did_document,
    did_document_resolver,
    did_web_url,
    key_in_did_document,
    url_did_web,
    verification_method_id,
)
from credledger.ledger.vc.errors import ProofError
from credledger.ledger.vc.multikey import did_key, did_key_verification_method, encode_public_key
from credledger.ledger.vc.proof import sign_credential, verify_credential
from credledger.ledger.vc.statuslist import Bitstring, status_list_credential

DID = "did:web:uni.example"


def _key(n: int) -> SigningKey:
    return SigningKey("uni.example", hashlib.sha256(f"issuer {n}".encode()).digest())


def _record(n: int, status: KeyStatus) -> IssuerKey:
    key = _key(n)
    return IssuerKey(key.key_id, key.public.raw, status)


KEYS = [_record(1, KeyStatus.RETIRED), _record(2, KeyStatus.COMPROMISED), _record(3, KeyStatus.VALID)]


def test_did_document_lists_every_key_ever_valid_as_a_multikey_assertion_method() -> None:
    document = did_document(DID, KEYS)
    kept = [KEYS[0], KEYS[2]]
    assert document["@context"] == ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]
    assert document["id"] == DID
    assert document["verificationMethod"] == [
        {
            "id": f"{DID}#{k.key_id.hex()}",
            "type": "Multikey",
            "controller": DID,
            "publicKeyMultibase": encode_public_key(k.public_key),
        }
        for k in kept
    ]
    assert document["assertionMethod"] == [f"{DID}#{k.key_id.hex()}" for k in kept]


def test_did_document_leaves_out_compromised_keys() -> None:
    document = did_document(DID, KEYS)
    assert verification_method_id(DID, KEYS[1].key_id) not in document["assertionMethod"]
    with pytest.raises(ProofError, match="not an assertion method"):
        key_in_did_document(document, verification_method_id(DID, KEYS[1].key_id))


def test_did_document_is_valid_json_ld_under_the_shipped_contexts() -> None:
    assert "Multikey" in canonicalize(did_document(DID, KEYS))


def test_a_credential_signed_by_a_retired_key_still_verifies_through_the_did_document() -> None:
    resolver = did_document_resolver([did_document(DID, KEYS)])
    unsigned = status_list_credential(DID, "https://uni.example/status/1", "revocation", Bitstring.of([]), 0)
    signed = sign_credential(unsigned, _key(1), verification_method_id(DID, KEYS[0].key_id), 1000)
    assert verify_credential(signed, resolver).verification_method.endswith(KEYS[0].key_id.hex())


def test_a_credential_signed_by_a_compromised_key_fails_through_the_did_document() -> None:
    resolver = did_document_resolver([did_document(DID, KEYS)])
    unsigned = status_list_credential(DID, "https://uni.example/status/1", "revocation", Bitstring.of([]), 0)
    signed = sign_credential(unsigned, _key(2), verification_method_id(DID, KEYS[1].key_id), 1000)
    with pytest.raises(ProofError) as raised:
        verify_credential(signed, resolver)
    assert raised.value.check == "verification-method"


def test_resolver_knows_did_key_without_a_document_and_refuses_unknown_dids() -> None:
    raw = _key(1).public.raw
    resolver = did_document_resolver([])
    assert resolver(did_key_verification_method(raw)) == raw
    with pytest.raises(ProofError, match="no DID document"):
        resolver("did:web:unknown.example#00000000")


def test_two_keys_with_one_key_id_are_refused() -> None:
    with pytest.raises(DecodeError, match="share a key id"):
        did_document(DID, [KEYS[0], KEYS[0]])


def test_did_document_accepts_did_key_and_refuses_other_methods() -> None:
    assert did_document(did_key(_key(1).public.raw), [])["id"].startswith("did:key:z6Mk")
    with pytest.raises(DecodeError, match="did:web"):
        did_document("did:example:123", KEYS)


@pytest.mark.parametrize(
    ("did", "url"),
    [
        ("did:web:uni.example", "https://uni.example/.well-known/did.json"),
        ("did:web:w3c-ccg.github.io", "https://w3c-ccg.github.io/.well-known/did.json"),
        ("did:web:w3c-ccg.github.io:user:alice", "https://w3c-ccg.github.io/user/alice/did.json"),
        ("did:web:example.com%3A3000", "https://example.com:3000/.well-known/did.json"),
        ("did:web:example.com%3A3000:user:alice", "https://example.com:3000/user/alice/did.json"),
    ],
)
def test_did_web_maps_to_its_document_url_and_back_as_the_spec_examples_do(did: str, url: str) -> None:
    assert did_web_url(did) == url
    assert url_did_web(url) == did


@pytest.mark.parametrize(
    ("did", "message"),
    [
        ("did:web:Uni.Example", "lowercase DNS name"),
        ("did:web:uni.example%3A0", "not a port number"),
        ("did:web:uni.example%3A99999", "not a port number"),
        ("did:web:uni.example::a", "path segment ''"),
        ("did:web:uni.example:a/b", "path segment 'a/b'"),
        ("did:key:z6Mk", "expected a did:web"),
    ],
)
def test_a_malformed_did_web_is_refused_naming_the_part(did: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        did_web_url(did)


@pytest.mark.parametrize(
    "url",
    ["http://uni.example/.well-known/did.json", "https://uni.example/did.json", "https://uni.example/a/doc.json"],
)
def test_a_url_that_is_no_did_web_document_location_is_refused(url: str) -> None:
    with pytest.raises(DecodeError):
        url_did_web(url)


def test_a_did_key_document_lists_the_key_its_did_names_under_the_did_key_method_id() -> None:
    own, other = _key(1), _key(2)
    did = did_key(own.public.raw)
    keys = [IssuerKey(k.key_id, k.public.raw, KeyStatus.VALID) for k in (own, other)]
    document = did_document(did, keys)
    method = did_key_verification_method(own.public.raw)
    assert [m["id"] for m in document["verificationMethod"]] == [method] and document["assertionMethod"] == [method]
    assert key_in_did_document(document, method) == own.public.raw
    compromised = [IssuerKey(own.key_id, own.public.raw, KeyStatus.COMPROMISED)]
    assert did_document(did, compromised)["verificationMethod"] == []
