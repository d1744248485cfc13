"""The envelope, authentication and credential rules; block-level behaviour of apply_block."""

from __future__ import annotations

import dataclasses

import pytest

from credledger.ledger import codec
from credledger.ledger.errors import DecodeError, InvalidEvent, Unauthorized
from credledger.ledger.events import Event, Issue, MemberUpdate, Reinstate, Revoke, Signature, Suspend
from credledger.ledger.genesis import Params
from credledger.ledger.merkle import leaf_hash
from credledger.ledger.rules import RULES, select_events
from credledger.ledger.state import Status, cred_key, get_credential
from tests.factories import (
    T0,
    Ledger,
    Network,
    by_governance,
    digest,
    issue,
    key_for,
    make_network,
    signed,
)

A, B, C, D = "m0.test", "m1.test", "m2.test", "m3.test"


@pytest.fixture
def net() -> Network:
    return make_network(4)


@pytest.fixture
def ledger(net: Network) -> Ledger:
    return Ledger(net)


def refuse(ledger: Ledger, *events: Event, rule: str) -> InvalidEvent:
    """Assert the block of `events` is refused for `rule`, changing nothing; for one event, admission agrees."""
    before = dict(ledger.state)
    with pytest.raises(InvalidEvent) as info:
        ledger.block(*events)
    assert info.value.rule == rule, info.value
    assert rule in RULES
    assert ledger.state == before
    if len(events) == 1:
        with pytest.raises(InvalidEvent) as admission:
            ledger.check(events[0])
        assert admission.value.rule == rule
    return info.value


# --- envelope -----------------------------------------------------------------------------------------------------


def test_event_for_another_chain_is_refused(ledger: Ledger, net: Network) -> None:
    event = signed(Issue(digest("x"), A, None, ()), net[A].issuer, origin="credledger.test/other")
    refuse(ledger, event, rule="wrong-origin")


def test_event_larger_than_the_genesis_limit_is_refused(net: Network) -> None:
    small = make_network(4, params=Params(max_event_bytes=1024))
    components = tuple(digest(f"c{i}") for i in range(40))
    event = issue(small[A], digest("big"), components=components)
    refuse(Ledger(small), event, rule="event-too-large")


@pytest.mark.parametrize("offset", [-300_001 - 1_000, 300_001 + 1_000])
def test_event_time_far_from_the_block_time_is_refused(ledger: Ledger, net: Network, offset: int) -> None:
    event = issue(net[A], digest("x"), time_ms=ledger.next_block_time + offset)
    refuse(ledger, event, rule="time-out-of-range")


def test_event_time_at_the_skew_limit_is_accepted(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[A], digest("x"), time_ms=ledger.next_block_time - Params().max_clock_skew_ms))
    assert get_credential(ledger.state, digest("x")) is not None


def test_replaying_a_committed_event_is_refused(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[A], digest("x")))
    suspend = signed(Suspend(digest("x"), 0), net[A].issuer)
    ledger.block(suspend)
    ledger.block(signed(Reinstate(digest("x")), net[A].issuer, time_ms=T0 + 1))
    # The state would accept a suspend again; the very same event must still never be committed twice.
    refuse(ledger, suspend, rule="replayed-event")


def test_the_same_event_twice_in_one_block_is_refused(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[A], digest("x")))
    suspend = signed(Suspend(digest("x"), 0), net[A].issuer)
    reinstate = signed(Reinstate(digest("x")), net[A].issuer)
    refuse(ledger, suspend, reinstate, suspend, rule="replayed-event")


# --- signatures ---------------------------------------------------------------------------------------------------


def test_tampered_signature_is_refused(ledger: Ledger, net: Network) -> None:
    event = issue(net[A], digest("x"))
    sig = event.signatures[0]
    broken = dataclasses.replace(sig, sig=bytes([sig.sig[0] ^ 1]) + sig.sig[1:])
    refuse(ledger, dataclasses.replace(event, signatures=(broken,)), rule="bad-signature")


def test_tampered_payload_is_refused(ledger: Ledger, net: Network) -> None:
    event = issue(net[A], digest("x"))
    forged = dataclasses.replace(event, payload=Issue(digest("y"), A, None, ()))
    refuse(ledger, forged, rule="bad-signature")


def test_signature_for_another_chain_does_not_verify_here(ledger: Ledger, net: Network) -> None:
    other = issue(net[A], digest("x"))
    elsewhere = signed(other.payload, net[A].issuer, origin="credledger.test/other")
    moved = dataclasses.replace(other, signatures=elsewhere.signatures)
    refuse(ledger, moved, rule="bad-signature")


def test_verified_cache_skips_only_the_exact_encoding_it_names(ledger: Ledger, net: Network) -> None:
    good = issue(net[A], digest("x"))
    sig = good.signatures[0]
    junk = dataclasses.replace(good, signatures=(dataclasses.replace(sig, sig=bytes(64)),))
    assert junk.id == good.id  # the id ignores signatures, so it cannot key the cache
    with pytest.raises(Unauthorized) as info:
        ledger.block(junk, verified=[leaf_hash(good.encode())])
    assert info.value.rule == "bad-signature"
    # The cache is trusted for the encoding it names: the node verified it at admission.
    ledger.block(junk, verified=[leaf_hash(junk.encode())])
    assert get_credential(ledger.state, digest("x")) is not None


def test_signer_that_is_not_a_member_is_refused(ledger: Ledger) -> None:
    stranger = key_for("stranger.test", "issuer")
    refuse(ledger, signed(Issue(digest("x"), "stranger.test", None, ()), stranger), rule="unknown-issuer")


def test_unregistered_issuer_key_is_refused(ledger: Ledger) -> None:
    rogue = key_for(A, "rogue")
    refuse(ledger, signed(Issue(digest("x"), A, None, ()), rogue), rule="unknown-key")


def test_repeated_signer_is_refused_not_counted_twice(ledger: Ledger, net: Network) -> None:
    event = by_governance(net, MemberUpdate(A, "A", 5, net[A].node.public.raw), [A, B])
    doubled = dataclasses.replace(event, signatures=(event.signatures[0], *event.signatures))
    # A, A, B would be 3 of 4 votes if A counted twice; it counts as malformed instead.
    refuse(ledger, doubled, rule="duplicate-signer")


def test_unsorted_signatures_are_refused(ledger: Ledger, net: Network) -> None:
    event = by_governance(net, MemberUpdate(A, "A", 5, net[A].node.public.raw), [A, B, C])
    reordered = dataclasses.replace(event, signatures=tuple(reversed(event.signatures)))
    refuse(ledger, reordered, rule="signatures-not-sorted")


def test_issue_signed_by_governance_is_refused(ledger: Ledger, net: Network) -> None:
    refuse(ledger, by_governance(net, Issue(digest("x"), A, None, ())), rule="issuer-signature-required")


def test_issue_with_two_issuer_signatures_is_refused(ledger: Ledger, net: Network) -> None:
    event = signed(Issue(digest("x"), A, None, ()), net[A].issuer, net[B].issuer)
    refuse(ledger, event, rule="unknown-key")


# --- issue --------------------------------------------------------------------------------------------------------


def test_issue_records_issuer_key_index_height_and_time(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[B], digest("other")))
    event = issue(net[A], digest("x"), expires_ms=T0 + 10**9, time_ms=T0 + 5)
    ledger.block(event)
    record = get_credential(ledger.state, digest("x"))
    assert record is not None
    assert (record.issuer, record.key_id) == (A, net[A].issuer.key_id)
    assert (record.issue_index, record.issued_height, record.issued_ms) == (1, 2, T0 + 5)
    assert (record.status, record.expires_ms) == (Status.ACTIVE, T0 + 10**9)
    assert (record.status_index, record.status_height) == (None, None)


def test_issue_in_another_members_name_is_refused(ledger: Ledger, net: Network) -> None:
    refuse(ledger, signed(Issue(digest("x"), B, None, ()), net[A].issuer), rule="not-the-issuer")


def test_issuing_a_digest_twice_is_refused_even_after_revocation(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[A], digest("x")), signed(Revoke(digest("x"), 0), net[A].issuer))
    refuse(ledger, issue(net[B], digest("x"), time_ms=T0 + 1), rule="already-issued")


def test_expiry_not_after_the_issue_time_is_refused_naming_both_as_dates(ledger: Ledger, net: Network) -> None:
    refused = refuse(ledger, issue(net[A], digest("x"), time_ms=T0 + 250, expires_ms=T0), rule="expires-before-issue")
    assert refused.detail.endswith("expiry 2026-01-01T00:00:00Z is not after the issue time 2026-01-01T00:00:00.250Z")


def test_stacked_credential_needs_every_component_issued(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[A], digest("micro-1")))
    stack = issue(net[A], digest("award"), components=[digest("micro-1"), digest("micro-2")])
    refuse(ledger, stack, rule="component-missing")


def test_stacked_credential_refuses_a_revoked_component(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[A], digest("micro-1")), issue(net[B], digest("micro-2")))
    ledger.block(signed(Revoke(digest("micro-2"), 0), net[B].issuer))
    stack = issue(net[A], digest("award"), components=[digest("micro-1"), digest("micro-2")])
    refuse(ledger, stack, rule="component-revoked")


def test_stacked_credential_accepts_components_issued_earlier_in_the_block_and_suspended_ones(
    ledger: Ledger, net: Network
) -> None:
    ledger.block(issue(net[B], digest("micro-1")))
    ledger.block(signed(Suspend(digest("micro-1"), 0), net[B].issuer))
    ledger.block(
        issue(net[A], digest("micro-2")),
        issue(net[A], digest("award"), components=[digest("micro-1"), digest("micro-2")]),
    )
    assert get_credential(ledger.state, digest("award")) is not None


# --- revoke, suspend, reinstate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [Revoke(digest("x"), 0), Suspend(digest("x"), 0), Reinstate(digest("x"))])
def test_status_change_of_an_unknown_credential_is_refused(
    ledger: Ledger, net: Network, payload: Revoke | Suspend | Reinstate
) -> None:
    refuse(ledger, signed(payload, net[A].issuer), rule="not-issued")


@pytest.mark.parametrize("payload", [Revoke(digest("x"), 0), Suspend(digest("x"), 0)])
def test_status_change_by_another_member_is_refused(ledger: Ledger, net: Network, payload: Revoke | Suspend) -> None:
    ledger.block(issue(net[A], digest("x")))
    refuse(ledger, signed(payload, net[B].issuer), rule="not-the-issuer")


def test_issuer_may_use_any_of_its_valid_keys_to_revoke() -> None:
    net = make_network(1, issuer_keys=2)
    ledger, member = Ledger(net), net[A]
    ledger.block(issue(member, digest("x"), key=member.issuers[0]))
    ledger.block(signed(Revoke(digest("x"), 0), member.issuers[1]))
    record = get_credential(ledger.state, digest("x"))
    assert record is not None and record.status == Status.REVOKED


@pytest.mark.parametrize("payload", [Revoke(digest("x"), 1), Suspend(digest("x"), 0), Reinstate(digest("x"))])
def test_revoked_is_terminal(ledger: Ledger, net: Network, payload: Revoke | Suspend | Reinstate) -> None:
    ledger.block(issue(net[A], digest("x")), signed(Revoke(digest("x"), 0), net[A].issuer))
    refuse(ledger, signed(payload, net[A].issuer, time_ms=T0 + 1), rule="revoked-is-terminal")


def test_suspending_twice_is_refused(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[A], digest("x")), signed(Suspend(digest("x"), 0), net[A].issuer))
    refuse(ledger, signed(Suspend(digest("x"), 6), net[A].issuer), rule="already-suspended")


def test_reinstating_an_active_credential_is_refused(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[A], digest("x")))
    refuse(ledger, signed(Reinstate(digest("x")), net[A].issuer), rule="not-suspended")


def test_suspend_reinstate_suspend_revoke_in_one_block(ledger: Ledger, net: Network) -> None:
    key = net[A].issuer
    ledger.block(issue(net[B], digest("unrelated")))
    ledger.block(
        issue(net[A], digest("x")),
        signed(Suspend(digest("x"), 6), key, time_ms=T0 + 1),
        signed(Reinstate(digest("x")), key, time_ms=T0 + 2),
        signed(Suspend(digest("x"), 6), key, time_ms=T0 + 3),  # differs from the first suspend only by time
        signed(Revoke(digest("x"), 4), key, time_ms=T0 + 4),
    )
    record = get_credential(ledger.state, digest("x"))
    assert record is not None
    assert (record.status, record.issue_index, record.status_index, record.status_height) == (Status.REVOKED, 1, 5, 2)


def test_governance_can_revoke_and_suspend_any_credential(ledger: Ledger, net: Network) -> None:
    ledger.block(issue(net[A], digest("x")), issue(net[A], digest("y")))
    ledger.block(by_governance(net, Revoke(digest("x"), 17), [B, C, D]), by_governance(net, Suspend(digest("y"), 0)))
    x, y = get_credential(ledger.state, digest("x")), get_credential(ledger.state, digest("y"))
    assert x is not None and x.status == Status.REVOKED
    assert y is not None and y.status == Status.SUSPENDED


# --- blocks -------------------------------------------------------------------------------------------------------


def test_refusal_in_a_block_names_the_event_position_and_discards_the_whole_block(ledger: Ledger, net: Network) -> None:
    error = refuse(ledger, issue(net[A], digest("x")), issue(net[B], digest("x")), rule="already-issued")
    assert error.detail.startswith("event 1 (")


def test_block_changes_are_deterministic(net: Network) -> None:
    events = [issue(net[A], digest("x")), signed(Suspend(digest("x"), 0), net[A].issuer)]
    one, two = Ledger(net), Ledger(net)
    assert one.block(*events).changes == two.block(*events).changes


def test_credential_events_leave_the_validator_set_alone(ledger: Ledger, net: Network) -> None:
    assert ledger.block(issue(net[A], digest("x"))).next_validators is None


def test_admission_check_changes_nothing(ledger: Ledger, net: Network) -> None:
    before = dict(ledger.state)
    ledger.check(issue(net[A], digest("x")))
    assert ledger.state == before


def test_select_events_keeps_what_applies_in_order(ledger: Ledger, net: Network) -> None:
    first = issue(net[A], digest("x"))
    conflicting = issue(net[B], digest("x"))
    revoke = signed(Revoke(digest("x"), 0), net[A].issuer)
    selection = select_events(
        ledger.state,
        [first, conflicting, revoke],
        origin=net.genesis.origin,
        height=1,
        block_time_ms=ledger.next_block_time,
        first_index=0,
        params=ledger.params,
        committed=ledger.committed,
    )
    assert selection.events == (first, revoke)
    assert [(e, err.rule) for e, err in selection.refused] == [(conflicting, "already-issued")]
    assert ledger.block(*selection.events).changes == selection.effects.changes


def test_block_changes_are_the_canonical_records_under_their_state_keys(ledger: Ledger, net: Network) -> None:
    effects = ledger.block(issue(net[A], digest("x")))
    record = get_credential(ledger.state, digest("x"))
    assert effects.changes == {cred_key(digest("x")): codec.encode(record)}


def test_signatures_of_the_wrong_size_do_not_decode() -> None:
    with pytest.raises(DecodeError, match="expected 64 bytes"):
        codec.decode(Signature, codec.encode(Signature(A, b"\x00" * 4, b"\x00" * 63)))
