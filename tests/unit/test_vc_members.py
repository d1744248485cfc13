"""Members as standard verifiers see them: DID documents from key records, and the known-issuer registry."""

from __future__ import annotations

import pytest

from credledger.ledger.keys import key_id
from credledger.ledger.state import IssuerKeyRecord, MemberRecord
from credledger.ledger.vc.did import KeyStatus
from credledger.ledger.vc.members import issuer_key, issuer_registry, member_did_document
from tests.factories import key_for

DID_KEY = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"


def member(member_id: str, did: str, *, active: bool = True) -> MemberRecord:
    return MemberRecord(member_id, member_id.upper(), 1, key_for(member_id, "node").public.raw, active, 0, (), did)


def key(member_id: str, label: str, retired_at: int | None = None, compromised: int | None = None) -> IssuerKeyRecord:
    public = key_for(member_id, label).public.raw
    return IssuerKeyRecord(member_id, key_id(member_id, public), public, 0, retired_at, compromised)


def test_key_status_follows_retirement_and_compromise() -> None:
    assert issuer_key(key("a.test", "1")).status is KeyStatus.VALID
    assert issuer_key(key("a.test", "1", retired_at=5)).status is KeyStatus.RETIRED
    assert issuer_key(key("a.test", "1", retired_at=5, compromised=2)).status is KeyStatus.COMPROMISED


def test_document_names_the_members_did_and_refuses_another_members_keys() -> None:
    record = member("a.test", DID_KEY)
    assert member_did_document(record, [key("a.test", "1")])["id"] == DID_KEY
    with pytest.raises(ValueError, match=r"issuer keys of b\.test are not a\.test.s"):
        member_did_document(record, [key("b.test", "1")])


def test_registry_keys_active_members_by_did_with_a_home_page_for_did_web_only() -> None:
    registry = issuer_registry(
        [
            member("b.test", DID_KEY),
            member("a.test", "did:web:a.test%3A8443"),
            member("c.test", "did:web:c.test", active=False),
        ],
        "credledger.test/unit",
    )
    assert registry["registry"] == {
        "did:web:a.test%3A8443": {"name": "A.TEST", "url": "https://a.test:8443", "id": "a.test"},
        DID_KEY: {"name": "B.TEST", "id": "b.test"},
    }
