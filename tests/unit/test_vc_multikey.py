from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from credledger.ledger.errors import DecodeError
from credledger.ledger.vc.multikey import (
    base58_decode,
    base58_encode,
    decode_multibase_base58btc,
    decode_multibase_base64url,
    decode_public_key,
    did_key,
    did_key_verification_method,
    encode_public_key,
    multibase_base64url,
    parse_did_key,
)
from tests.conftest import VECTORS

W3C_KEY = json.loads((VECTORS / "vc-di-eddsa" / "keyPair.json").read_text())
W3C_PUBLIC_HEX = "b00d8d938e7f773d51565aad36a623f5344f7f5d1960f9cf3e8e12620ea2810f"


def test_w3c_example_public_key_round_trips_through_multikey() -> None:
    raw = decode_public_key(W3C_KEY["publicKeyMultibase"])
    assert raw.hex() == W3C_PUBLIC_HEX
    assert encode_public_key(raw) == W3C_KEY["publicKeyMultibase"]


def test_open_badges_example_key_encodes_to_its_published_multikey() -> None:
    vector = json.loads((VECTORS / "ob-v3p0" / "vector.json").read_text())
    assert encode_public_key(bytes.fromhex(vector["publicKeyHex"])) == vector["publicKeyMultibase"]


def test_ed25519_multikeys_start_with_z6mk() -> None:
    assert encode_public_key(bytes(32)).startswith("z6Mk")


@given(st.binary(max_size=64))
def test_base58_round_trips_including_leading_zero_bytes(data: bytes) -> None:
    assert base58_decode(base58_encode(data)) == data


@given(st.binary(max_size=64))
def test_base64url_multibase_round_trips(data: bytes) -> None:
    encoded = multibase_base64url(data)
    assert encoded.startswith("u") and "=" not in encoded
    assert decode_multibase_base64url(encoded) == data


def test_base58_refuses_a_character_outside_the_alphabet() -> None:
    with pytest.raises(DecodeError, match="'0' is not a base58btc character"):
        base58_decode("z0OIl")


def test_multibase_refuses_another_base() -> None:
    with pytest.raises(DecodeError, match="starting with 'z'"):
        decode_multibase_base58btc("mAAAA")


def test_public_key_of_another_key_type_is_refused_naming_the_codec() -> None:
    p256 = "zDnaegE6RR3atJtHKwTRTWHsJ3kNHqFwv7n9YjTgmU7TyfU76"
    with pytest.raises(DecodeError, match="multicodec 0xed01"):
        decode_public_key(p256)


def test_public_key_of_the_wrong_length_is_refused() -> None:
    from credledger.ledger.vc.multikey import multibase_base58btc

    with pytest.raises(DecodeError, match="31-byte key"):
        decode_public_key(multibase_base58btc(b"\xed\x01" + bytes(31)))


def test_did_key_and_its_verification_method_name_the_same_key() -> None:
    raw = decode_public_key(W3C_KEY["publicKeyMultibase"])
    assert did_key(raw) == "did:key:" + W3C_KEY["publicKeyMultibase"]
    method = did_key_verification_method(raw)
    assert method == f"did:key:{W3C_KEY['publicKeyMultibase']}#{W3C_KEY['publicKeyMultibase']}"
    assert parse_did_key(method) == raw
    assert parse_did_key(did_key(raw)) == raw


def test_did_key_method_whose_fragment_names_another_key_is_refused() -> None:
    other = encode_public_key(bytes(32))
    with pytest.raises(DecodeError, match="does not name the DID's key"):
        parse_did_key(f"did:key:{W3C_KEY['publicKeyMultibase']}#{other}")


def test_parse_did_key_refuses_another_did_method() -> None:
    with pytest.raises(DecodeError, match="expected a did:key"):
        parse_did_key("did:web:uni.example")
