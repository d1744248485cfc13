"""Credential digests: JCS for JSON objects, raw bytes otherwise."""

from __future__ import annotations

import hashlib

import pytest

from ledger.digest import credential_digest, parse_digest
from ledger.errors import DecodeError

CREDENTIAL = b"""{
  "@context": ["https://www.w3.org/ns/credentials/v2"],
  "type": ["VerifiableCredential", "OpenBadgeCredential"],
  "issuer": {"id": "did:example:uni", "name": "Universit\\u00e9 A"},
  "validFrom": "2026-01-01T00:00:00Z",
  "credentialSubject": {"achievement": {"name": "Data Science", "credits": 30.0}}
}"""
REORDERED = (
    b'{"validFrom":"2026-01-01T00:00:00Z","credentialSubject":{"achievement":{"credits":3e1,"name":"Data Science"}},'
    b'"issuer":{"name":"Universit\xc3\xa9 A","id":"did:example:uni"},'
    b'"type":["VerifiableCredential","OpenBadgeCredential"],"@context":["https://www.w3.org/ns/credentials/v2"]}'
)
CANONICAL = (
    b'{"@context":["https://www.w3.org/ns/credentials/v2"],"credentialSubject":{"achievement":{"credits":30,'
    b'"name":"Data Science"}},"issuer":{"id":"did:example:uni","name":"Universit\xc3\xa9 A"},'
    b'"type":["VerifiableCredential","OpenBadgeCredential"],"validFrom":"2026-01-01T00:00:00Z"}'
)


def test_json_credential_digest_is_the_hash_of_its_jcs_form() -> None:
    assert credential_digest(CREDENTIAL) == hashlib.sha256(CANONICAL).digest()


def test_key_order_whitespace_escapes_and_number_spelling_do_not_change_the_digest() -> None:
    assert credential_digest(REORDERED) == credential_digest(CREDENTIAL)


def test_byte_order_mark_does_not_change_the_digest() -> None:
    assert credential_digest(b"\xef\xbb\xbf" + CREDENTIAL) == credential_digest(CREDENTIAL)


def test_large_integers_are_read_as_doubles_like_other_jcs_implementations() -> None:
    assert credential_digest(b'{"n": 12345678901234567890}') == hashlib.sha256(b'{"n":12345678901234567000}').digest()


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7 binary document", b"[1, 2, 3]", b'"a JSON string"', b'{"broken": ', b'{"n": NaN}', b"\xff{"],
)
def test_anything_but_a_json_object_is_hashed_as_it_is(data: bytes) -> None:
    assert credential_digest(data) == hashlib.sha256(data).digest()


def test_json_object_with_a_repeated_name_is_refused() -> None:
    with pytest.raises(DecodeError, match="'id' appears twice"):
        credential_digest(b'{"id": 1, "id": 2}')


def test_parse_digest_accepts_64_hex_digits_in_either_case() -> None:
    digest = hashlib.sha256(b"x").digest()
    assert parse_digest(digest.hex()) == digest
    assert parse_digest(digest.hex().upper()) == digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ab" * 31, "64 hexadecimal digits, got 62 characters"),
        ("ab" * 32 + "0", "got 65 characters"),
        ("g" + "a" * 63, "'g' at position 0 is not a hex digit"),
        ("a" * 63 + " ", "' ' at position 63"),
    ],
)
def test_parse_digest_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_digest(text)
