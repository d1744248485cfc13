"""Governance thresholds, membership changes, and issuer-key rotation, retirement and compromise."""

from __future__ import annotations

import dataclasses

import pytest

from credledger.ledger import membership_rules
from credledger.ledger.errors import InvalidEvent
from credledger.ledger.events import Event, KeyAdd, KeyRetire, MemberAdd, MemberRemove, MemberUpdate, Revoke
from credledger.ledger.keys import key_id
from credledger.ledger.state import (
    get_credential,
    get_directory,
    get_issuer_key,
    get_member,
    key_valid_at,
    validator_set,
)
from credledger.ledger.validators import Validator, ValidatorSet
from tests.factories import (
    T0,
    Ledger,
    Network,
    by_governance,
    digest,
    issue,
    key_for,
    make_member,
    make_network,
    signed,
)

A, B, C, D = "m0.test", "m1.test", "m2.test", "m3.test"
NEW = make_member("new.test", power=2)


@pytest.fixture
def net() -> Network:
    return make_network(4)


@pytest.fixture
def ledger(net: Network) -> Ledger:
    return Ledger(net)


def refuse(ledger: Ledger, *events: Event, rule: str) -> None:
    before = dict(ledger.state)
    with pytest.raises(InvalidEvent) as info:
        ledger.block(*events)
    assert info.value.rule == rule, info.value
    assert ledger.state == before


def update(net: Network, member: str, *, power: int, name: str = "Renamed") -> MemberUpdate:
    return MemberUpdate(member, name, power, net[member].node.public.raw)


# --- governance thresholds ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("powers", "signers", "refusal"),
    [
        ([1, 1, 1], [A, B], "insufficient-governance-power"),  # exactly 2/3
        ([1, 1, 1], [A, B, C], None),
        ([1, 1, 1, 1], [A, B], "insufficient-governance-power"),
        ([1, 1, 1, 1], [A, B, C], None),  # 3/4 > 2/3
        ([2, 1, 3], [B, C], "insufficient-governance-power"),  # 4 of 6: exactly 2/3
        ([2, 1, 3], [A, C], None),  # 5 of 6
        ([2, 1, 3, 0], [B, C, D], "not-a-validator"),  # a member without power cannot make up the difference
    ],
)
def test_governance_needs_strictly_more_than_two_thirds_of_the_power(
    powers: list[int], signers: list[str], refusal: str | None
) -> None:
    net = make_network(len(powers), powers=powers)
    ledger = Ledger(net)
    event = by_governance(net, update(net, A, power=2), signers)
    if refusal is not None:
        refuse(ledger, event, rule=refusal)
    else:
        ledger.block(event)
        member = get_member(ledger.state, A)
        assert member is not None and member.power == 2


def test_governance_signature_with_an_issuer_key_is_refused(ledger: Ledger, net: Network) -> None:
    event = signed(update(net, A, power=2), net[A].node, net[B].node, net[C].issuer)
    refuse(ledger, event, rule="unknown-key")


def test_membership_change_signed_by_an_issuer_key_is_refused(ledger: Ledger, net: Network) -> None:
    refuse(ledger, signed(update(net, A, power=9), net[A].issuer), rule="governance-required")


def test_single_validator_governs_alone() -> None:
    net = make_network(1)
    ledger = Ledger(net)
    ledger.block(by_governance(net, NEW.add_payload()))
    assert get_member(ledger.state, NEW.id) is not None


# --- member.add / update / remove ---------------------------------------------------------------------------------


def test_admitted_member_joins_the_validator_set_and_can_issue_in_the_same_block(ledger: Ledger, net: Network) -> None:
    effects = ledger.block(by_governance(net, NEW.add_payload()), issue(NEW, digest("x")))
    assert effects.next_validators == validator_set(ledger.state)
    assert effects.next_validators is not None and effects.next_validators.get(NEW.id) == Validator(
        NEW.id, 2, NEW.node.public.raw
    )
    assert get_directory(ledger.state).members == (A, B, C, D, NEW.id)
    key = get_issuer_key(ledger.state, NEW.id, NEW.issuer.key_id)
    assert key is not None and key.valid_from == 1
    credential = get_credential(ledger.state, digest("x"))
    assert credential is not None and credential.issuer == NEW.id


def test_admitting_a_current_member_again_is_refused(ledger: Ledger, net: Network) -> None:
    again = make_member(A, generation=1)
    refuse(ledger, by_governance(net, again.add_payload()), rule="duplicate-member")


def test_admitting_beyond_the_member_limit_is_refused(
    ledger: Ledger, net: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(membership_rules, "MAX_MEMBERS", 4)
    refuse(ledger, by_governance(net, NEW.add_payload()), rule="too-many-members")


def test_a_node_key_of_another_member_is_refused(ledger: Ledger, net: Network) -> None:
    payload = dataclasses.replace(NEW.add_payload(), node_key=net[B].node.public.raw)
    refuse(ledger, by_governance(net, payload), rule="duplicate-key")


def test_update_of_an_unknown_member_is_refused(ledger: Ledger, net: Network) -> None:
    payload = MemberUpdate("nobody.test", "Nobody", 1, NEW.node.public.raw)
    refuse(ledger, by_governance(net, payload), rule="unknown-member")


def test_update_of_a_removed_member_is_refused(ledger: Ledger, net: Network) -> None:
    ledger.block(by_governance(net, MemberRemove(D)))
    refuse(ledger, by_governance(net, update(net, D, power=1), [A, B, C]), rule="member-inactive")


def test_update_changing_only_the_name_leaves_the_validator_set(ledger: Ledger, net: Network) -> None:
    effects = ledger.block(by_governance(net, update(net, A, power=1, name="University A")))
    member = get_member(ledger.state, A)
    assert member is not None and member.name == "University A"
    assert effects.next_validators is None


def test_update_rotating_the_node_key_changes_who_governs(ledger: Ledger, net: Network) -> None:
    fresh = make_member(A, generation=1)
    ledger.block(by_governance(net, MemberUpdate(A, "A", 1, fresh.node.public.raw)))
    refuse(ledger, by_governance(net, update(net, B, power=3)), rule="unknown-key")  # A's old node key
    ledger.block(signed(update(net, B, power=3), fresh.node, net[B].node, net[C].node))
    assert validator_set(ledger.state).total_power == 6


def test_removing_the_last_validator_is_refused() -> None:
    net = make_network(2, powers=[1, 0])
    ledger = Ledger(net)
    refuse(ledger, by_governance(net, MemberRemove(A)), rule="would-remove-all-validators")
    refuse(ledger, by_governance(net, update(net, A, power=0)), rule="would-remove-all-validators")


def test_removed_member_stops_voting_and_issuing_but_its_credentials_stay(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[D], digest("x")))
    effects = ledger.block(by_governance(net, MemberRemove(D)))
    assert effects.next_validators == ValidatorSet.of([Validator(m, 1, net[m].node.public.raw) for m in (A, B, C)])
    member = get_member(ledger.state, D)
    assert member is not None and not member.active and member.issuer_keys == ()
    key = get_issuer_key(ledger.state, D, net[D].issuer.key_id)
    assert key is not None and key.retired_at == 3
    credential = get_credential(ledger.state, digest("x"))
    assert credential is not None and key_valid_at(key, credential.issued_height)
    refuse(ledger, issue(net[D], digest("y")), rule="member-inactive")
    refuse(ledger, signed(Revoke(digest("x"), 0), net[D].issuer), rule="member-inactive")


def test_removed_member_can_be_readmitted_with_new_keys(ledger: Ledger, net: Network) -> None:
    ledger.block(by_governance(net, MemberRemove(D)))
    reborn = make_member(D, generation=1)
    ledger.block(by_governance(net, reborn.add_payload(), [A, B, C]))
    ledger.block(issue(reborn, digest("x")))
    member = get_member(ledger.state, D)
    assert member is not None and member.active and member.since == 2
    old_key = get_issuer_key(ledger.state, D, net[D].issuer.key_id)
    assert old_key is not None and old_key.retired_at == 2


def test_readmission_cannot_reuse_a_retired_key(ledger: Ledger, net: Network) -> None:
    ledger.block(by_governance(net, MemberRemove(D)))
    reused = dataclasses.replace(make_member(D, generation=1).add_payload(), issuer_keys=(net[D].issuer.public.raw,))
    refuse(ledger, by_governance(net, reused, [A, B, C]), rule="duplicate-key")


# --- issuer keys --------------------------------------------------------------------------------------------------


def test_key_rotation_keeps_earlier_credentials_valid_and_refuses_the_retired_key(ledger: Ledger, net: Network) -> None:
    old, new = net[A].issuer, key_for(A, "rotated")
    ledger.block(issue(net[A], digest("before")))
    ledger.block(signed(KeyAdd(A, new.public.raw), old), signed(KeyRetire(A, old.key_id, None), new))
    ledger.block(issue(net[A], digest("after"), key=new))
    refuse(ledger, issue(net[A], digest("late"), key=old), rule="key-not-valid-at-height")

    retired = get_issuer_key(ledger.state, A, old.key_id)
    before = get_credential(ledger.state, digest("before"))
    assert retired is not None and before is not None
    assert retired.retired_at == 3 and key_valid_at(retired, before.issued_height)
    member = get_member(ledger.state, A)
    assert member is not None and member.issuer_keys == (new.key_id,)


def test_key_change_for_another_member_is_refused(ledger: Ledger, net: Network) -> None:
    refuse(ledger, signed(KeyAdd(B, key_for(B, "x").public.raw), net[A].issuer), rule="not-the-member")
    refuse(ledger, signed(KeyRetire(B, net[B].issuer.key_id, None), net[A].issuer), rule="not-the-member")


def test_adding_a_key_twice_or_the_node_key_is_refused(ledger: Ledger, net: Network) -> None:
    refuse(ledger, signed(KeyAdd(A, net[A].issuer.public.raw), net[A].issuer), rule="duplicate-key")
    refuse(ledger, signed(KeyAdd(A, net[A].node.public.raw), net[A].issuer), rule="duplicate-key")


def test_adding_keys_beyond_the_limit_is_refused(ledger: Ledger, net: Network, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(membership_rules, "MAX_ISSUER_KEYS", 2)
    ledger.block(signed(KeyAdd(A, key_for(A, "2").public.raw), net[A].issuer))
    refuse(ledger, signed(KeyAdd(A, key_for(A, "3").public.raw), net[A].issuer), rule="too-many-keys")


def test_key_add_for_an_unknown_member_by_governance_is_refused(ledger: Ledger, net: Network) -> None:
    refuse(ledger, by_governance(net, KeyAdd("nobody.test", NEW.issuer.public.raw)), rule="unknown-member")


def test_governance_can_give_a_member_a_new_key(ledger: Ledger, net: Network) -> None:
    recovery = key_for(A, "recovery")
    ledger.block(by_governance(net, KeyAdd(A, recovery.public.raw)))
    ledger.block(issue(net[A], digest("x"), key=recovery))
    assert get_credential(ledger.state, digest("x")) is not None


def test_retiring_an_unknown_or_retired_key_is_refused(ledger: Ledger, net: Network) -> None:
    refuse(ledger, signed(KeyRetire(A, b"\x00" * 4, None), net[A].issuer), rule="unknown-key")
    second = key_for(A, "second")
    ledger.block(signed(KeyAdd(A, second.public.raw), net[A].issuer))
    ledger.block(signed(KeyRetire(A, second.key_id, None), net[A].issuer))
    refuse(ledger, by_governance(net, KeyRetire(A, second.key_id, None), time_ms=T0 + 1), rule="already-retired")


def test_a_member_cannot_retire_its_last_key_but_governance_can(ledger: Ledger, net: Network) -> None:
    retire = KeyRetire(A, net[A].issuer.key_id, None)
    refuse(ledger, signed(retire, net[A].issuer), rule="would-retire-last-key")
    ledger.block(by_governance(net, retire))
    member = get_member(ledger.state, A)
    assert member is not None and member.issuer_keys == ()


def test_only_governance_marks_a_key_compromised(ledger: Ledger, net: Network) -> None:
    refuse(ledger, signed(KeyRetire(A, net[A].issuer.key_id, 0), net[A].issuer), rule="governance-required")


def test_compromised_key_voids_what_it_signed_from_that_height(ledger: Ledger, net: Network) -> None:
    key = net[A].issuer
    ledger.block(issue(net[A], digest("h1")))
    ledger.block(issue(net[A], digest("h2")))
    ledger.block(by_governance(net, KeyRetire(A, key.key_id, 2)))
    refuse(ledger, issue(net[A], digest("h4")), rule="key-compromised")

    record = get_issuer_key(ledger.state, A, key.key_id)
    h1, h2 = get_credential(ledger.state, digest("h1")), get_credential(ledger.state, digest("h2"))
    assert record is not None and h1 is not None and h2 is not None
    assert (record.compromised_since, record.retired_at) == (2, 4)
    assert key_valid_at(record, h1.issued_height)
    assert not key_valid_at(record, h2.issued_height)


def test_a_retired_key_can_later_be_marked_compromised_earlier(ledger: Ledger, net: Network) -> None:
    second = key_for(A, "second")
    ledger.block(signed(KeyAdd(A, second.public.raw), net[A].issuer))
    ledger.block(signed(KeyRetire(A, second.key_id, None), net[A].issuer))
    ledger.block(by_governance(net, KeyRetire(A, second.key_id, 2)))
    ledger.block(by_governance(net, KeyRetire(A, second.key_id, 1)))
    record = get_issuer_key(ledger.state, A, second.key_id)
    assert record is not None and (record.retired_at, record.compromised_since) == (3, 1)
    refuse(ledger, by_governance(net, KeyRetire(A, second.key_id, 1), time_ms=T0 + 1), rule="already-compromised")


def test_compromise_height_in_the_future_is_refused(ledger: Ledger, net: Network) -> None:
    refuse(ledger, by_governance(net, KeyRetire(A, net[A].issuer.key_id, 5)), rule="compromise-in-future")


def test_key_id_is_the_c2sp_id_named_by_the_member() -> None:
    new = key_for(A, "k")
    assert new.key_id == key_id(A, new.public.raw)


def test_member_add_payload_rejects_the_node_key_as_an_issuer_key() -> None:
    with pytest.raises(ValueError, match="node key"):
        MemberAdd(NEW.id, "New", 1, NEW.node.public.raw, (NEW.node.public.raw,))


DAY_MS = 86_400_000


def test_governance_event_may_be_days_old_while_an_issuers_may_not(ledger: Ledger, net: Network) -> None:
    ledger.block(by_governance(net, update(net, A, power=2), time_ms=ledger.next_block_time - 6 * DAY_MS))
    refuse(ledger, issue(net[A], digest("x"), time_ms=ledger.next_block_time - DAY_MS), rule="time-out-of-range")


@pytest.mark.parametrize("offset", [-7 * DAY_MS - 1, 300_001])
def test_governance_event_beyond_its_window_or_from_the_future_is_refused(
    ledger: Ledger, net: Network, offset: int
) -> None:
    late = by_governance(net, update(net, A, power=2), time_ms=ledger.next_block_time + offset)
    refuse(ledger, late, rule="time-out-of-range")


# --- member DIDs (DESIGN §13) -------------------------------------------------------------------------------------


def test_admitted_member_gets_did_web_of_its_id_by_default_or_the_did_it_names(ledger: Ledger, net: Network) -> None:
    named = make_member("named.test", power=0)
    did_key = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
    ledger.block(
        by_governance(net, dataclasses.replace(named.add_payload(), did=did_key)),
        by_governance(net, NEW.add_payload()),
    )
    new, other = get_member(ledger.state, NEW.id), get_member(ledger.state, named.id)
    assert new is not None and new.did == "did:web:new.test"
    assert other is not None and other.did == did_key


def test_update_changes_the_did_only_when_it_names_one(ledger: Ledger, net: Network) -> None:
    ledger.block(by_governance(net, update(net, A, power=1)))
    member = get_member(ledger.state, A)
    assert member is not None and member.did == f"did:web:{A}"
    moved = dataclasses.replace(update(net, A, power=1), did="did:web:credentials.m0.test")
    ledger.block(by_governance(net, moved))
    member = get_member(ledger.state, A)
    assert member is not None and member.did == "did:web:credentials.m0.test"


def test_a_did_another_member_holds_is_refused(ledger: Ledger, net: Network) -> None:
    refuse(ledger, by_governance(net, dataclasses.replace(NEW.add_payload(), did=f"did:web:{B}")), rule="duplicate-did")
    taken = dataclasses.replace(update(net, A, power=1), did=f"did:web:{B}")
    refuse(ledger, by_governance(net, taken), rule="duplicate-did")


@pytest.mark.parametrize(
    ("did", "message"),
    [
        ("did:web:Upper.Case", "not a lowercase DNS name"),
        ("did:example:123", "expected a did:web DID"),
        ("did:key:z6Mk", "did:"),
    ],
)
def test_member_payloads_refuse_a_did_that_is_not_did_web_or_did_key(did: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(NEW.add_payload(), did=did)
    with pytest.raises(ValueError, match=message):
        MemberUpdate(A, "A", 1, NEW.node.public.raw, did)


def test_a_member_id_that_is_no_dns_name_needs_a_did() -> None:
    with pytest.raises(ValueError, match="has no default did:web"):
        MemberAdd("a..b", "A", 1, b"\x01" * 32, (b"\x02" * 32,))
    assert MemberAdd("a..b", "A", 1, b"\x01" * 32, (b"\x02" * 32,), "did:web:a.example").did == "did:web:a.example"
