from __future__ import annotations

import base64

import pytest

from credledger.ledger.errors import BadSignature, DecodeError
from credledger.ledger.keys import PublicKey, SigningKey, key_id


def test_vkey_round_trips_and_names_the_key() -> None:
    key = SigningKey.generate("uni.example")
    text = key.public.vkey()
    name, hex_id, _ = text.split("+", 2)
    assert name == "uni.example"
    assert bytes.fromhex(hex_id) == key.key_id == key_id("uni.example", key.public.raw)
    assert PublicKey.from_vkey(text) == key.public


def test_c2sp_signed_note_example_vkey_parses() -> None:
    # The verifier key from C2SP signed-note.md's example.
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    key = PublicKey.from_vkey(vkey)
    assert key.name == "PeterNeumann"
    assert key.key_id.hex() == "c74f20a3"


def test_vkey_with_wrong_key_id_is_rejected() -> None:
    text = SigningKey.generate("a").public.vkey()
    name, _, b64 = text.split("+", 2)
    with pytest.raises(DecodeError, match="does not match"):
        PublicKey.from_vkey(f"{name}+00000000+{b64}")


def test_vkey_with_wrong_algorithm_is_rejected() -> None:
    key = SigningKey.generate("a").public
    blob = base64.b64encode(b"\x02" + key.raw).decode()
    with pytest.raises(DecodeError, match="0x01"):
        PublicKey.from_vkey(f"a+{key.key_id.hex()}+{blob}")


def test_signature_verifies_only_in_its_domain() -> None:
    key = SigningKey.generate("a")
    sig = key.sign(b"dom-a\x00", b"message")
    key.public.verify(b"dom-a\x00", b"message", sig)
    with pytest.raises(BadSignature):
        key.public.verify(b"dom-b\x00", b"message", sig)
    with pytest.raises(BadSignature):
        key.public.verify(b"dom-a\x00", b"messagf", sig)


def test_seed_round_trip_gives_the_same_key() -> None:
    key = SigningKey.generate("a")
    assert SigningKey("a", key.seed()).public == key.public


def test_repr_never_shows_the_private_key() -> None:
    key = SigningKey.generate("a")
    assert key.seed().hex() not in repr(key)


def test_skey_round_trips_and_matches_the_reference_signer_key() -> None:
    reference = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    key = SigningKey.from_skey(reference)
    assert key.skey() == reference
    assert key.public.vkey() == "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"


def test_skey_with_wrong_id_or_prefix_is_rejected() -> None:
    text = SigningKey.generate("a").skey()
    with pytest.raises(DecodeError, match="does not match"):
        SigningKey.from_skey(text.replace(text.split("+")[3], "00000000"))
    with pytest.raises(DecodeError, match="PRIVATE"):
        SigningKey.from_skey(text[1:])
