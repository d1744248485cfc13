from __future__ import annotations

import base64
import gzip
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credledger.ledger.keys import SigningKey
from credledger.ledger.vc.errors import StatusListError
from credledger.ledger.vc.loader import CREDENTIALS_V2
from credledger.ledger.vc.multikey import multibase_base64url
from credledger.ledger.vc.proof import sign_credential, verify_credential
from credledger.ledger.vc.statuslist import (
    MAX_LIST_ENTRIES,
    MIN_LIST_ENTRIES,
    Bitstring,
    decode_list,
    encode_list,
    entry_index,
    read_status_list_credential,
    status_entries,
    status_entry,
    status_list_credential,
)
from tests.conftest import VECTORS

LIST = "https://uni.example/status/7"


def test_spec_example_list_decodes_to_131072_entries_none_set() -> None:
    example = json.loads((VECTORS / "bitstring-status-list" / "example-credential.json").read_text())
    status = read_status_list_credential(example)
    assert (status.issuer, status.purpose, status.list_url) == (
        "did:example:12345",
        "revocation",
        "https://example.com/credentials/status/3",
    )
    assert status.bits.length == MIN_LIST_ENTRIES
    assert status.bits.set_indices() == []


def test_index_zero_is_the_left_most_bit_of_the_first_byte() -> None:
    bits = Bitstring.of([0, 9])
    assert bits.data[:2] == bytes([0b1000_0000, 0b0100_0000])
    assert bits.is_set(0) and bits.is_set(9) and not bits.is_set(1)


def test_encoded_list_is_base64url_multibase_of_gzip() -> None:
    bits = Bitstring.of([3, 94567])
    encoded = encode_list(bits)
    assert encoded.startswith("u") and "=" not in encoded and "+" not in encoded and "/" not in encoded
    raw = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
    assert gzip.decompress(raw) == bits.data


@given(st.sets(st.integers(min_value=0, max_value=MIN_LIST_ENTRIES - 1), max_size=50))
def test_set_indices_round_trip_through_the_encoded_list(indices: set[int]) -> None:
    assert decode_list(encode_list(Bitstring.of(indices))).set_indices() == sorted(indices)


def test_a_list_shorter_than_the_minimum_is_refused() -> None:
    with pytest.raises(StatusListError, match="131072"):
        decode_list(multibase_base64url(gzip.compress(bytes(1024))))


def test_a_list_that_inflates_beyond_the_maximum_is_refused_without_inflating_it_all() -> None:
    bomb = multibase_base64url(gzip.compress(bytes(MAX_LIST_ENTRIES // 8 * 4)))
    with pytest.raises(StatusListError, match="more than"):
        decode_list(bomb)


@pytest.mark.parametrize(
    ("encoded", "message"),
    [
        ("zABC", "starting with 'u'"),
        ("u" + base64.urlsafe_b64encode(b"not gzip").decode().rstrip("="), "not GZIP"),
        (multibase_base64url(gzip.compress(bytes(16384)) + b"x"), "exactly one complete GZIP member"),
        (multibase_base64url(gzip.compress(bytes(16384))[:-4]), "exactly one complete GZIP member"),
    ],
)
def test_a_malformed_encoded_list_is_refused_naming_the_problem(encoded: str, message: str) -> None:
    with pytest.raises(StatusListError, match=message):
        decode_list(encoded)


def test_an_index_outside_the_list_is_refused() -> None:
    with pytest.raises(StatusListError, match=r"\[0, 131072\)"):
        Bitstring.of([MIN_LIST_ENTRIES])


def test_status_list_credential_has_the_shape_the_spec_gives() -> None:
    credential = status_list_credential(
        "did:web:uni.example", LIST, "suspension", Bitstring.of([5]), 0, valid_until_ms=86_400_000, ttl_ms=300_000
    )
    assert credential == {
        "@context": [CREDENTIALS_V2],
        "id": LIST,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": "did:web:uni.example",
        "validFrom": "1970-01-01T00:00:00Z",
        "validUntil": "1970-01-02T00:00:00Z",
        "credentialSubject": {
            "id": f"{LIST}#list",
            "type": "BitstringStatusList",
            "statusPurpose": "suspension",
            "encodedList": encode_list(Bitstring.of([5])),
            "ttl": 300_000,
        },
    }
    assert read_status_list_credential(credential).bits.set_indices() == [5]


def test_a_signed_status_list_credential_verifies() -> None:
    key = SigningKey("uni.example", bytes(range(32)))
    method = f"did:web:uni.example#{key.key_id.hex()}"
    unsigned = status_list_credential("did:web:uni.example", LIST, "revocation", Bitstring.of([1, 2]), 1000)
    signed = sign_credential(unsigned, key, method, 2000)
    assert verify_credential(signed, lambda m: key.public.raw).verification_method == method


def test_status_entries_point_both_purposes_at_one_index() -> None:
    urls = {"revocation": LIST + "/revocation", "suspension": LIST + "/suspension"}
    entries = status_entries(urls, 94567)
    assert entries == [
        {
            "id": f"{LIST}/revocation#94567",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "revocation",
            "statusListIndex": "94567",
            "statusListCredential": f"{LIST}/revocation",
        },
        {
            "id": f"{LIST}/suspension#94567",
            "type": "BitstringStatusListEntry",
            "statusPurpose": "suspension",
            "statusListIndex": "94567",
            "statusListCredential": f"{LIST}/suspension",
        },
    ]
    assert [entry_index(e) for e in entries] == [94567, 94567]


@pytest.mark.parametrize("index", ["-1", "1e3", " 5", "", "٣"])
def test_an_entry_index_that_is_not_a_decimal_string_is_refused(index: str) -> None:
    entry = {**status_entry(LIST, "revocation", 0), "statusListIndex": index}
    with pytest.raises(StatusListError, match="decimal string"):
        entry_index(entry)


def test_validity_window_and_purpose_are_checked() -> None:
    with pytest.raises(StatusListError, match="validUntil"):
        status_list_credential("did:web:u.example", LIST, "revocation", Bitstring.of([]), 10, valid_until_ms=10)
    with pytest.raises(StatusListError, match="status purpose"):
        status_list_credential("did:web:u.example", LIST, "refresh", Bitstring.of([]), 10)
