"""Preparing an unsigned credential for the member that issues it, and choosing its status entry."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from credledger.ledger.errors import DecodeError
from credledger.ledger.keys import SigningKey
from credledger.ledger.state import MemberRecord
from credledger.ledger.vc.issuing import (
    CredentialRefused,
    check_awarded_achievement,
    choose_list,
    choose_status_entry,
    prepare_credential,
    sign_issued,
)
from credledger.ledger.vc.loader import CREDENTIALS_V2
from credledger.ledger.vc.multikey import did_key, did_key_verification_method
from credledger.ledger.vc.proof import resolve_did_key, verify_credential

MEMBER = MemberRecord("uni.example", "University", 1, b"\x01" * 32, True, 0, (), "did:web:uni.example")
DID_KEY_MEMBER = MemberRecord(
    "k.example", "K", 1, b"\x02" * 32, True, 0, (), "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
)
PLAIN = {
    "@context": [CREDENTIALS_V2],
    "type": ["VerifiableCredential"],
    "credentialSubject": {"id": "did:example:learner"},
}


def test_a_plain_credential_gets_the_did_as_issuer_a_validity_start_and_two_status_entries() -> None:
    prepared = prepare_credential(PLAIN, MEMBER, 2, 4711, 1_767_225_600_000)
    assert prepared["issuer"] == "did:web:uni.example"
    assert prepared["validFrom"] == "2026-01-01T00:00:00Z"
    assert [(e["statusPurpose"], e["statusListIndex"]) for e in prepared["credentialStatus"]] == [
        ("revocation", "4711"),
        ("suspension", "4711"),
    ]
    assert prepared["credentialStatus"][1]["statusListCredential"].endswith(
        "/v1/members/uni.example/status/2/suspension"
    )
    assert "issuer" not in PLAIN  # the input is not changed


def test_a_did_key_member_publishes_its_lists_under_its_member_id_domain() -> None:
    prepared = prepare_credential(PLAIN, DID_KEY_MEMBER, 0, 1, 0)
    assert prepared["issuer"] == DID_KEY_MEMBER.did
    assert [e["statusListCredential"] for e in prepared["credentialStatus"]] == [
        "https://k.example/v1/members/k.example/status/0/revocation",
        "https://k.example/v1/members/k.example/status/0/suspension",
    ]


def test_a_did_key_member_whose_id_is_no_dns_name_has_no_lists_and_says_why() -> None:
    member = replace(DID_KEY_MEMBER, id="k..example")
    with pytest.raises(DecodeError, match="names no web host, and its member id is not a DNS name"):
        prepare_credential(PLAIN, member, 0, 1, 0)


def test_a_did_key_member_signs_with_the_key_its_did_names_and_no_other() -> None:
    key = SigningKey("k.example", b"\x07" * 32)
    member = replace(DID_KEY_MEMBER, did=did_key(key.public.raw))
    signed = sign_issued(prepare_credential(PLAIN, member, 0, 1, 0), member, key, 0)
    assert signed["proof"]["verificationMethod"] == did_key_verification_method(key.public.raw)
    verify_credential(signed, resolve_did_key)
    other = SigningKey("k.example", b"\x08" * 32)
    with pytest.raises(CredentialRefused, match=r"issuer-key: .* names one key, and this issuer key"):
        sign_issued(prepare_credential(PLAIN, member, 0, 1, 0), member, other, 0)


def test_status_entries_already_given_are_refused() -> None:
    with pytest.raises(CredentialRefused, match="status-absent"):
        prepare_credential({**PLAIN, "credentialStatus": []}, MEMBER, 0, 1, 0)


def test_the_first_list_less_than_half_full_is_chosen_or_the_next_opened() -> None:
    assert choose_list([]) == 0
    assert choose_list([65_535, 10]) == 0
    assert choose_list([65_536, 10]) == 1
    assert choose_list([65_536, 65_536]) == 2


def test_a_taken_index_is_drawn_again() -> None:
    draws = iter([7, 7, 9])
    taken = {(0, 7)}
    assert choose_status_entry([3], lambda lst, i: (lst, i) in taken, lambda _n: next(draws)) == (0, 9)
    with pytest.raises(CredentialRefused, match="no free entry"):
        choose_status_entry([3], lambda _l, _i: True)


TEAMWORK = "https://example.com/achievements/teamwork"


def _badge(*subjects: object) -> dict[str, object]:
    return {**PLAIN, "credentialSubject": list(subjects) if len(subjects) > 1 else subjects[0]}


def test_a_credential_awarding_the_named_achievement_or_none_at_all_passes() -> None:
    check_awarded_achievement(_badge({"achievement": {"id": TEAMWORK}}), TEAMWORK)
    check_awarded_achievement(_badge({"id": "did:example:learner"}), TEAMWORK)  # no Open Badges achievement
    check_awarded_achievement(_badge({"achievement": {"id": "https://elsewhere.example/a"}}), None)  # none named


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            _badge({"achievement": {"id": "https://example.com/achievements/leadership"}}),
            "achievement: credentialSubject.achievement.id is 'https://example.com/achievements/leadership', "
            "but the issue names the achievement 'https://example.com/achievements/teamwork'",
        ),
        (
            _badge({"achievement": {"id": TEAMWORK}}, {"achievement": {"id": "x"}}),
            "credentialSubject[1].achievement.id is 'x'",
        ),
        (_badge({"achievement": {"name": "Teamwork"}}), "credentialSubject.achievement has no id to compare"),
    ],
)
def test_a_credential_awarding_another_achievement_is_refused(document: dict[str, object], message: str) -> None:
    with pytest.raises(CredentialRefused, match=re.escape(message)):
        check_awarded_achievement(document, TEAMWORK)
