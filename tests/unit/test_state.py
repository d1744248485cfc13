"""State records, their keys, and typed access."""

from __future__ import annotations

import hashlib

import pytest

from credledger.ledger import codec
from credledger.ledger.errors import DecodeError, StorageError
from credledger.ledger.keys import key_id
from credledger.ledger.state import (
    DIRECTORY_KEY,
    CredentialRecord,
    IssuerKeyRecord,
    MemberDirectory,
    MemberRecord,
    StateOverlay,
    Status,
    cred_key,
    get_credential,
    issuer_key_key,
    key_valid_at,
    member_key,
    validator_set,
)
from tests.factories import digest

PUB = b"\x11" * 32
KID = key_id("uni.example", PUB)

CREDENTIAL = CredentialRecord("uni.example", KID, 7, 3, 1_000, Status.SUSPENDED, None, 9, 4)
RECORDS: list[object] = [
    CREDENTIAL,
    CredentialRecord("uni.example", KID, 0, 1, 5, Status.ACTIVE, 10_000, None, None),
    MemberRecord("uni.example", "University", 2, b"\x22" * 32, True, 0, (KID,), "did:web:uni.example"),
    MemberRecord("old.example", "Old", 0, b"\x23" * 32, False, 5, (), "did:web:old.example"),
    IssuerKeyRecord("uni.example", KID, PUB, 0, None, None),
    IssuerKeyRecord("uni.example", KID, PUB, 0, 9, 4),
    MemberDirectory(("a.example", "b.example")),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_every_record_round_trips(record: object) -> None:
    assert codec.decode(type(record), codec.encode(record)) == record


def test_state_keys_follow_the_design_namespaces() -> None:
    assert cred_key(b"\x01" * 32) == hashlib.sha256(b"cred\x00" + b"\x01" * 32).digest()
    assert member_key("uni.example") == hashlib.sha256(b"member\x00uni.example").digest()
    assert (
        issuer_key_key("uni.example", b"\xaa\xbb\xcc\xdd")
        == hashlib.sha256(b"key\x00uni.example\x00\xaa\xbb\xcc\xdd").digest()
    )
    assert hashlib.sha256(b"member\x00").digest() == DIRECTORY_KEY


def test_credential_status_must_be_known_and_backed_by_an_index() -> None:
    with pytest.raises(ValueError, match="'expired' is not a valid Status"):
        CredentialRecord("uni.example", KID, 0, 1, 5, "expired", None, None, None)
    with pytest.raises(ValueError, match="needs the index"):
        CredentialRecord("uni.example", KID, 0, 1, 5, Status.REVOKED, None, None, None)
    with pytest.raises(ValueError, match="set together"):
        CredentialRecord("uni.example", KID, 0, 1, 5, Status.ACTIVE, None, 3, None)


def test_decoded_status_is_the_enum() -> None:
    decoded = codec.decode(CredentialRecord, codec.encode(CREDENTIAL))
    assert decoded.status is Status.SUSPENDED


def test_issuer_key_record_must_carry_its_own_key_id() -> None:
    with pytest.raises(ValueError, match="does not match"):
        IssuerKeyRecord("other.example", KID, PUB, 0, None, None)


def test_directory_must_be_sorted_and_unique() -> None:
    with pytest.raises(ValueError, match="sorted and unique"):
        MemberDirectory(("b.example", "a.example"))
    directory = MemberDirectory(("b.example",)).with_member("a.example").with_member("b.example")
    assert directory.members == ("a.example", "b.example")
    assert directory.without_member("a.example").members == ("b.example",)


@pytest.mark.parametrize(
    ("valid_from", "retired_at", "compromised_since", "valid_heights"),
    [
        (0, None, None, range(10)),
        (3, None, None, range(3, 10)),
        (0, 4, None, range(4)),
        (0, None, 2, range(2)),
        (1, 6, 3, range(1, 3)),
        (1, 3, 6, range(1, 3)),
    ],
)
def test_key_valid_at_respects_every_bound(
    valid_from: int, retired_at: int | None, compromised_since: int | None, valid_heights: range
) -> None:
    record = IssuerKeyRecord("uni.example", KID, PUB, valid_from, retired_at, compromised_since)
    assert [h for h in range(10) if key_valid_at(record, h)] == list(valid_heights)


def test_overlay_reads_its_writes_first_and_merges_into_its_parent() -> None:
    base = {cred_key(digest("x")): codec.encode(CREDENTIAL)}
    parent = StateOverlay(base)
    child = StateOverlay(parent)
    replaced = CredentialRecord("uni.example", KID, 7, 3, 1_000, Status.ACTIVE, None, 10, 5)
    child.put_credential(digest("x"), replaced)
    assert get_credential(parent, digest("x")) == CREDENTIAL
    assert get_credential(child, digest("x")) == replaced
    parent.merge(child)
    assert get_credential(parent, digest("x")) == replaced
    assert get_credential(base, digest("x")) == CREDENTIAL


def test_validator_set_comes_from_active_members_with_power() -> None:
    view = StateOverlay({})
    view.put_member(MemberRecord("a.example", "A", 2, b"\x01" * 32, True, 0, (), "did:web:a.example"))
    view.put_member(MemberRecord("b.example", "B", 0, b"\x02" * 32, True, 0, (), "did:web:b.example"))
    view.put_directory(MemberDirectory(("a.example", "b.example")))
    validators = validator_set(view)
    assert [v.member_id for v in validators.validators] == ["a.example"]
    assert validators.total_power == 2


def test_state_without_validators_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="no member with voting power"):
        validator_set({})


def test_directory_naming_a_missing_member_is_a_storage_error() -> None:
    view = StateOverlay({})
    view.put_directory(MemberDirectory(("ghost.example",)))
    with pytest.raises(StorageError, match=r"ghost\.example"):
        validator_set(view)


def test_corrupt_state_value_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        get_credential({cred_key(digest("x")): b"\x90"}, digest("x"))
