"""Credential digests: JCS for JSON objects, raw bytes otherwise, and a precise refusal for JSON JCS cannot take."""

from __future__ import annotations

import hashlib

import pytest

from credledger.ledger.digest import DigestMethod, credential_digest, document_digest, parse_digest
from credledger.ledger.errors import DecodeError

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
    [
        b"%PDF-1.7 binary document",
        b"[1, 2, 3]",
        b'"a JSON string"',
        b'{"broken": ',
        b'{"n": NaN}',
        b"\xff{",
        b'{"a": 1} trailing',
        b'{"a": [1,]}',
        b'{"a": 01}',
    ],
)
def test_anything_but_a_json_object_is_hashed_as_it_is(data: bytes) -> None:
    assert credential_digest(data) == hashlib.sha256(data).digest()


def test_json_object_with_a_repeated_name_is_refused() -> None:
    with pytest.raises(DecodeError, match='member name "id" appears twice in the top-level object'):
        credential_digest(b'{"id": 1, "id": 2}')


def test_deeply_nested_objects_are_canonicalised_not_hashed_as_bytes() -> None:
    nested = b'{"a":' * 1500 + b"1" + b"}" * 1500
    spaced = b'{ "a" : ' * 1500 + b"1.0" + b" }" * 1500
    assert document_digest(spaced) == document_digest(nested)
    assert document_digest(spaced).digest == hashlib.sha256(nested).digest()
    assert document_digest(spaced).method is DigestMethod.JCS


def test_deeply_nested_arrays_are_canonicalised_not_hashed_as_bytes() -> None:
    canonical = b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"
    spaced = b'{"a": ' + b"[ " * 5000 + b"] " * 5000 + b"}\n"
    assert document_digest(spaced).digest == hashlib.sha256(canonical).digest()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"n": ' + b"1" * 5000 + b"}", r"the number 11111111111111111111\u2026 \(5000 characters\) at /n is beyond"),
        (b'{"n": 1e400}', "the number 1e400 at /n is beyond the range of an IEEE 754 double"),
        (b'{"n": [-1E+309]}', "the number -1E\\+309 at /n/0 is beyond"),
        (b'{"\\ud83d": 1}', r"a member name in the top-level object holds a lone surrogate \(\\ud83d\)"),
        (b'{"a": {"b~/c": "x\\udc00"}}', r"the string at /a/b~0~1c holds a lone surrogate \(\\udc00\)"),
    ],
)
def test_json_that_rfc_8785_cannot_canonicalise_is_refused_with_what_and_where(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        credential_digest(data)


def test_a_refused_json_credential_can_still_be_hashed_as_bytes_when_asked() -> None:
    data = b'{"n": 1e400}'
    assert document_digest(data, raw=True).digest == hashlib.sha256(data).digest()
    assert document_digest(data, raw=True).method is DigestMethod.RAW


def test_the_digest_says_how_it_was_computed() -> None:
    assert document_digest(CREDENTIAL).method.value == "RFC 8785 JSON"
    assert document_digest(b"%PDF-1.7").method.value == "SHA-256 of the file's bytes"


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
