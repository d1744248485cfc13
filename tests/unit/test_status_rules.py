"""Status-list entries in issue events, and the bits each member's lists hold (DESIGN §13)."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pytest

from credledger.ledger import codec, status_rules
from credledger.ledger.errors import DecodeError, InvalidEvent
from credledger.ledger.events import Event, Issue, Reinstate, Revoke, StatusPublish, Suspend, decode_event
from credledger.ledger.keys import SigningKey
from credledger.ledger.limits import MAX_EVENT_BYTES, MAX_STATUS_EVENT_BYTES, STATUS_LIST_ENTRIES
from credledger.ledger.rules import RULES, event_size_limit
from credledger.ledger.state import (
    StatusListRecord,
    get_member,
    get_status_list,
    get_status_of,
    get_status_published,
    get_status_slot,
    status_list_key,
)
from credledger.ledger.vc.did import verification_method_id
from credledger.ledger.vc.members import member_status_list
from credledger.ledger.vc.proof import sign_credential
from credledger.ledger.vc.statuslist import PURPOSES, Bitstring, read_status_list_credential
from tests.factories import T0, Ledger, Network, TestMember, digest, key_for, make_network, signed

A, B = "m0.test", "m1.test"


@pytest.fixture
def net() -> Network:
    return make_network(4)


@pytest.fixture
def ledger(net: Network) -> Ledger:
    return Ledger(net)


def issue_at(member: TestMember, label: str, list_number: int, index: int) -> Issue:
    return Issue(digest(label), member.id, None, (), list_number, index)


def bits(ledger: Ledger, member: str, list_number: int) -> tuple[list[int], list[int]]:
    record = get_status_list(ledger.state, member, list_number)
    assert record is not None
    return Bitstring(record.revocation).set_indices(), Bitstring(record.suspension).set_indices()


def test_an_issued_credential_takes_its_entry_and_the_list_counts_it(ledger: Ledger, net: Network) -> None:
    ledger.block(signed(issue_at(net[A], "x", 0, 7), net[A].issuer), signed(issue_at(net[A], "y", 0, 9), net[A].issuer))
    slot = get_status_slot(ledger.state, A, 0, 7)
    assert slot is not None and slot.digest == digest("x")
    entry = get_status_of(ledger.state, digest("y"))
    assert entry is not None and (entry.list_number, entry.index) == (0, 9)
    record = get_status_list(ledger.state, A, 0)
    assert record is not None and record.used == 2
    assert bits(ledger, A, 0) == ([], [])


def test_an_entry_is_used_once_per_issuer_ever(ledger: Ledger, net: Network) -> None:
    ledger.block(signed(issue_at(net[A], "x", 0, 7), net[A].issuer))
    before = dict(ledger.state)
    with pytest.raises(InvalidEvent) as refused:
        ledger.block(signed(issue_at(net[A], "again", 0, 7), net[A].issuer))
    assert refused.value.rule == "status-entry-used" and refused.value.rule in RULES
    assert ledger.state == before
    # Another list, or another issuer's list, is another entry.
    ledger.block(signed(issue_at(net[A], "other list", 1, 7), net[A].issuer))
    ledger.block(signed(issue_at(net[B], "other issuer", 0, 7), net[B].issuer))


def test_two_issues_of_one_entry_in_one_block_are_refused(ledger: Ledger, net: Network) -> None:
    with pytest.raises(InvalidEvent, match="taken already"):
        ledger.block(
            signed(issue_at(net[A], "x", 0, 7), net[A].issuer), signed(issue_at(net[A], "y", 0, 7), net[A].issuer)
        )


def test_bits_follow_revocation_suspension_and_reinstatement(ledger: Ledger, net: Network) -> None:
    m0 = net[A]
    ledger.block(*(signed(issue_at(m0, label, 3, i), m0.issuer) for i, label in ((5, "a"), (6, "b"), (131_071, "c"))))
    ledger.block(signed(Revoke(digest("a"), 1), m0.issuer), signed(Suspend(digest("b"), 6), m0.issuer))
    ledger.block(signed(Suspend(digest("c"), 6), m0.issuer))
    assert bits(ledger, A, 3) == ([5], [6, 131_071])
    ledger.block(signed(Reinstate(digest("b")), m0.issuer), signed(Revoke(digest("c"), 4), m0.issuer))
    assert bits(ledger, A, 3) == ([5, 131_071], [])


def test_a_credential_without_an_entry_changes_no_list(ledger: Ledger, net: Network) -> None:
    m0 = net[A]
    ledger.block(signed(Issue(digest("plain"), A, None, ()), m0.issuer))
    ledger.block(signed(Revoke(digest("plain"), 1), m0.issuer))
    assert get_status_list(ledger.state, A, 0) is None
    assert get_status_of(ledger.state, digest("plain")) is None


@pytest.mark.parametrize(
    ("list_number", "index", "message"),
    [
        (0, None, "given together"),
        (None, 3, "given together"),
        (0, STATUS_LIST_ENTRIES, "outside a list of 131072 entries"),
        (65_536, 0, "outside"),
    ],
)
def test_issue_payload_refuses_a_half_or_out_of_range_entry(
    list_number: int | None, index: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Issue(digest("x"), A, None, (), list_number, index)


def test_status_records_round_trip_and_the_decoder_bounds_the_index() -> None:
    payload = Issue(digest("x"), A, None, (), 2, 131_071)
    assert codec.decode(Issue, codec.encode(payload)) == payload
    record = StatusListRecord.empty()
    assert codec.decode(StatusListRecord, codec.encode(record)) == record
    forged = codec.encode(Issue(digest("x"), A, None, (), 2, 1)).replace(b"\x02\x01", b"\x02\xce\x00\x02\x00\x00", 1)
    with pytest.raises(DecodeError, match="status_index"):
        codec.decode(Issue, forged)


# --- status.publish -----------------------------------------------------------------------------------------------

VALIDITY_MS = 86_400_000


def list_credential(ledger: Ledger, member: TestMember, list_number: int, purpose: str, **changes: object) -> str:
    """`member`'s list credential holding the state's bits, signed with its issuer key, as JSON text."""
    record = get_member(ledger.state, member.id)
    status_list = get_status_list(ledger.state, member.id, list_number)
    assert record is not None and status_list is not None
    bits = changes.pop("bits", getattr(status_list, purpose))
    key = changes.pop("key", member.issuer)
    assert isinstance(bits, bytes) and isinstance(key, SigningKey)
    document = member_status_list(record, list_number, purpose, bits, valid_from_ms=T0, validity_ms=VALIDITY_MS)
    document.update(changes)
    signed_document = sign_credential(document, key, verification_method_id(record.did, key.key_id), T0)
    return json.dumps(signed_document, sort_keys=True, separators=(",", ":"))


def publish(member: TestMember, list_number: int, purpose: str, credential: str) -> Event:
    return signed(StatusPublish(member.id, list_number, purpose, credential), member.issuer)


def refused(ledger: Ledger, event: Event, rule: str, detail: str) -> None:
    before = dict(ledger.state)
    with pytest.raises(InvalidEvent) as info:
        ledger.block(event)
    assert (info.value.rule, ledger.state) == (rule, before), info.value
    assert detail in str(info.value) and rule in RULES


@pytest.fixture
def listed(ledger: Ledger, net: Network) -> Ledger:
    m0 = net[A]
    ledger.block(signed(issue_at(m0, "a", 0, 5), m0.issuer), signed(issue_at(m0, "b", 0, 6), m0.issuer))
    ledger.block(signed(Revoke(digest("a"), 1), m0.issuer))
    return ledger


def test_a_list_equal_to_the_state_is_recorded_with_its_log_position(listed: Ledger, net: Network) -> None:
    credential = list_credential(listed, net[A], 0, "revocation")
    listed.block(publish(net[A], 0, "revocation", credential))
    record = get_status_published(listed.state, A, 0, "revocation")
    assert record is not None and record.height == 3
    assert read_status_list_credential(json.loads(credential)).bits.set_indices() == [5]


def test_a_list_whose_bits_differ_from_the_state_is_refused(listed: Ledger, net: Network) -> None:
    stale = list_credential(listed, net[A], 0, "revocation", bits=bytes(STATUS_LIST_ENTRIES // 8))
    refused(listed, publish(net[A], 0, "revocation", stale), "status-list-stale", "0 set, the state has 1")


def test_a_list_signed_by_another_key_or_naming_another_url_or_issuer_is_refused(listed: Ledger, net: Network) -> None:
    m0 = net[A]
    foreign = list_credential(listed, m0, 0, "revocation", key=key_for(A, "not registered"))
    refused(listed, publish(m0, 0, "revocation", foreign), "status-list-refused", "no valid issuer key of m0.test")
    moved = list_credential(listed, m0, 0, "revocation", id="https://elsewhere.test/list")
    refused(listed, publish(m0, 0, "revocation", moved), "status-list-refused", "id: expected")
    wrong_purpose = list_credential(listed, m0, 0, "suspension")
    refused(listed, publish(m0, 0, "revocation", wrong_purpose), "status-list-refused", "expected 'https://m0.test")
    tampered = list_credential(listed, m0, 0, "revocation").replace("2026-01-02", "2027-01-02")
    refused(
        listed, publish(m0, 0, "revocation", tampered), "status-list-refused", "signature: Ed25519 signature does not"
    )


def test_a_member_publishes_only_its_own_existing_lists(listed: Ledger, net: Network) -> None:
    credential = list_credential(listed, net[A], 0, "revocation")
    with pytest.raises(InvalidEvent, match="publishes 'm0"):
        listed.block(signed(StatusPublish(A, 0, "revocation", credential), net[B].issuer))
    refused(listed, publish(net[A], 1, "revocation", credential), "unknown-status-list", "no status list 1")
    refused(listed, publish(net[A], 0, "refresh", credential), "status-list-refused", "purpose must be one of")
    refused(listed, publish(net[A], 0, "revocation", "[1]"), "status-list-refused", "not a JSON object")


def test_the_rules_know_the_purposes_the_status_list_module_defines() -> None:
    assert status_rules.PURPOSES == PURPOSES


def test_the_largest_possible_status_list_fits_its_own_event_limit_but_not_the_general_one(
    listed: Ledger, net: Network
) -> None:
    # Bits with no pattern are the worst case: GZIP stores them as they are (16 KiB -> 21,877 base64url characters).
    noise = random.Random(11).randbytes(STATUS_LIST_ENTRIES // 8)
    worst = publish(net[A], 0, "revocation", list_credential(listed, net[A], 0, "revocation", bits=noise))
    size = len(worst.encode())
    assert MAX_EVENT_BYTES < size <= MAX_STATUS_EVENT_BYTES, size
    assert event_size_limit(listed.params, worst) == MAX_STATUS_EVENT_BYTES
    # It passes the size check and meets the bits check (the state has one bit set, not half of them) ...
    refused(listed, worst, "status-list-stale", "the state has 1")
    # ... and once the state holds those bits (written here directly: 65,000 revocations would take minutes), the
    # rules accept it and record where it is, so every node serves it.
    record = get_status_list(listed.state, A, 0)
    assert record is not None
    listed.state[status_list_key(A, 0)] = codec.encode(replace(record, revocation=noise))
    accepted = publish(net[A], 0, "revocation", list_credential(listed, net[A], 0, "revocation"))
    assert len(accepted.encode()) > MAX_EVENT_BYTES
    listed.block(accepted)
    published = get_status_published(listed.state, A, 0, "revocation")
    assert published is not None and published.height == listed.height


def test_a_status_list_over_its_limit_is_refused_and_other_kinds_keep_the_genesis_limit(
    listed: Ledger, net: Network
) -> None:
    padded = list_credential(listed, net[A], 0, "revocation") + " " * MAX_STATUS_EVENT_BYTES
    with pytest.raises(DecodeError):  # no node decodes it
        decode_event(publish(net[A], 0, "revocation", padded).encode())
    text = list_credential(listed, net[A], 0, "revocation")
    too_big = publish(net[A], 0, "revocation", text + " " * (MAX_STATUS_EVENT_BYTES - 40 - len(text)))
    with pytest.raises(DecodeError, match="exceeds the limit of 32768"):
        decode_event(too_big.encode())
    refused(listed, too_big, "event-too-large", f"the limit is {MAX_STATUS_EVENT_BYTES}")
    issue = signed(issue_at(net[A], "x", 0, 1), net[A].issuer)
    small = replace(listed.params, max_event_bytes=2048)
    assert event_size_limit(small, issue) == 2048
    assert event_size_limit(small, publish(net[A], 0, "revocation", "{}")) == MAX_STATUS_EVENT_BYTES
