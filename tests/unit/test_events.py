"""Event payloads, envelopes, ids and signing."""

from __future__ import annotations

import dataclasses
import hashlib

import msgpack
import pytest

from credledger.ledger import codec, domains, merkle
from credledger.ledger.errors import DecodeError
from credledger.ledger.events import (
    Event,
    Issue,
    KeyAdd,
    KeyRetire,
    MemberAdd,
    MemberRemove,
    MemberUpdate,
    Payload,
    Reason,
    Reinstate,
    Revoke,
    Signature,
    Suspend,
    UnsignedEvent,
    add_signatures,
    decode_event,
    sign_event,
)
from credledger.ledger.keys import PublicKey
from tests.factories import ORIGIN, T0, digest, key_for, signed

KEY = key_for("uni.example", "issuer")
OTHER = key_for("college.example", "issuer")

PAYLOADS: list[Payload] = [
    Issue(digest("x"), "uni.example", None, ()),
    Issue(digest("x"), "uni.example", T0 + 1, (digest("a"), digest("b"))),
    Revoke(digest("x"), 1),
    Suspend(digest("x"), 6),
    Reinstate(digest("x")),
    MemberAdd("new.example", "New College", 3, b"\x01" * 32, (b"\x02" * 32, b"\x03" * 32)),
    MemberUpdate("new.example", "New College, Oxford", 0, b"\x04" * 32),
    MemberRemove("new.example"),
    KeyAdd("uni.example", b"\x05" * 32),
    KeyRetire("uni.example", b"\xab\xcd\xef\x01", None),
    KeyRetire("uni.example", b"\xab\xcd\xef\x01", 7),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.TAG)
def test_every_payload_kind_round_trips_inside_a_signed_event(payload: Payload) -> None:
    event = signed(payload, KEY)
    data = event.encode()
    decoded = decode_event(data)
    assert decoded == event
    assert decoded.id == event.id
    assert decoded.encode() == data


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.TAG)
def test_payload_is_encoded_as_its_tag_then_its_fields(payload: Payload) -> None:
    raw = msgpack.unpackb(signed(payload, KEY).encode(), raw=False)
    assert raw[0] == ORIGIN
    assert raw[2][0] == payload.TAG


def test_signed_bytes_are_the_event_without_signatures_and_the_id_hashes_them() -> None:
    unsigned = UnsignedEvent(ORIGIN, T0, Revoke(digest("x"), 0))
    event = sign_event(unsigned, KEY)
    assert event.signed_bytes() == codec.encode(unsigned) == unsigned.signed_bytes()
    assert event.id == hashlib.sha256(domains.EVENT + event.signed_bytes()).digest() == unsigned.id
    PublicKey("uni.example", KEY.public.raw).verify(domains.EVENT, event.signed_bytes(), event.signatures[0].sig)


def test_adding_signatures_keeps_the_id() -> None:
    one = signed(Revoke(digest("x"), 0), KEY)
    both = add_signatures(one, OTHER)
    assert both.id == one.id
    assert [s.member for s in both.signatures] == ["college.example", "uni.example"]
    with pytest.raises(ValueError, match=r"uni\.example signed this event already"):
        add_signatures(both, KEY)


def test_signatures_come_out_sorted_by_member() -> None:
    event = signed(Revoke(digest("x"), 0), KEY, OTHER)
    assert [s.member for s in event.signatures] == sorted(s.member for s in event.signatures)


@pytest.mark.parametrize(
    "change",
    [
        {"time_ms": T0 + 1},
        {"origin": "credledger.test/other"},
        {"payload": Revoke(digest("x"), 2)},
    ],
)
def test_every_signed_field_changes_the_id(change: dict[str, object]) -> None:
    base = {"origin": ORIGIN, "time_ms": T0, "payload": Revoke(digest("x"), 0)}
    one = UnsignedEvent(**base)  # type: ignore[arg-type]
    two = UnsignedEvent(**{**base, **change})  # type: ignore[arg-type]
    assert one.id != two.id


def test_event_without_signatures_does_not_decode() -> None:
    raw = [ORIGIN, T0, ["reinstate", digest("x")], []]
    with pytest.raises(DecodeError, match=r"signatures: expected 1\.\.256 items, got 0"):
        decode_event(msgpack.packb(raw, use_bin_type=True))
    with pytest.raises(ValueError, match="at least one signature"):
        Event(ORIGIN, T0, Reinstate(digest("x")), ())


def test_unknown_event_kind_does_not_decode() -> None:
    raw = [ORIGIN, T0, ["mint", digest("x")], [["uni.example", b"\x00" * 4, b"\x00" * 64]]]
    with pytest.raises(DecodeError, match="unknown kind 'mint'"):
        decode_event(msgpack.packb(raw, use_bin_type=True))


def test_event_over_the_size_limit_does_not_decode() -> None:
    data = signed(Issue(digest("x"), "uni.example", None, tuple(digest(str(i)) for i in range(40))), KEY).encode()
    with pytest.raises(DecodeError, match="exceeds the limit of 1024"):
        decode_event(data, max_bytes=1024)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Issue(digest("x"), "uni.example", None, (digest("a"), digest("a"))), "must not repeat"),
        (lambda: Issue(digest("x"), "uni.example", None, (digest("x"),)), "its own components"),
        (lambda: Issue(digest("x"), "Uni.Example", None, ()), "must match"),
        (lambda: MemberAdd("n.example", "  ", 1, b"\x01" * 32, (b"\x02" * 32,)), "not blank"),
        (lambda: MemberAdd("n.example", "N", 1, b"\x01" * 32, ()), "at least one issuer key"),
        (lambda: MemberAdd("n.example", "N", 1, b"\x01" * 32, (b"\x02" * 32, b"\x02" * 32)), "must not repeat"),
        (lambda: MemberUpdate("n.example", "N\n", 1, b"\x01" * 32), "printable"),
        (lambda: KeyRetire("-bad", b"\x00" * 4, None), "must match"),
    ],
)
def test_malformed_payloads_cannot_be_built(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


def test_malformed_payload_does_not_decode_either() -> None:
    raw = [
        ORIGIN,
        T0,
        ["issue", digest("x"), "uni.example", None, [digest("x")]],
        [["a", b"\x00" * 4, b"\x00" * 64]],
    ]
    with pytest.raises(DecodeError, match="its own components"):
        decode_event(msgpack.packb(raw, use_bin_type=True))


def test_reason_code_is_bounded() -> None:
    raw = [ORIGIN, T0, ["revoke", digest("x"), 256], [["a", b"\x00" * 4, b"\x00" * 64]]]
    with pytest.raises(DecodeError, match="reason: 256 outside"):
        decode_event(msgpack.packb(raw, use_bin_type=True))


def test_named_reason_codes_travel_as_plain_integers() -> None:
    event = signed(Revoke(digest("x"), Reason.SUPERSEDED), KEY)
    decoded = decode_event(event.encode())
    assert isinstance(decoded.payload, Revoke)
    assert decoded.payload.reason == Reason.SUPERSEDED
    assert int(Reason.SUPERSEDED) == 4
    assert decoded.id == signed(Revoke(digest("x"), 4), KEY).id


def test_signature_record_round_trips() -> None:
    sig = Signature("uni.example", b"\x01\x02\x03\x04", b"\x09" * 64)
    assert codec.decode(Signature, codec.encode(sig)) == sig


def test_sign_event_needs_a_key() -> None:
    with pytest.raises(ValueError, match="at least one key"):
        sign_event(UnsignedEvent(ORIGIN, T0, Reinstate(digest("x"))))


def test_decoded_events_derive_the_same_signed_bytes_and_id_as_encoding_would() -> None:
    from credledger.ledger.events import KeyRetire, MemberRemove, ReportEvidence, Revoke, UnsignedEvent, decode_event
    from credledger.ledger.votes import make_evidence, sign_prevote
    from tests.factories import ORIGIN, by_governance, digest, issue, make_network, signed

    network = make_network(4)
    m0, m1 = network["m0.test"], network["m1.test"]
    evidence = make_evidence(
        sign_prevote(m1.node, ORIGIN, 3, 0, b"\x01" * 32), sign_prevote(m1.node, ORIGIN, 3, 0, None)
    )
    events = [
        issue(m0, digest("a"), expires_ms=2**40, components=(digest("b"), digest("c"))),
        signed(Revoke(digest("a"), 4), m0.issuer),
        by_governance(network, MemberRemove("m3.test")),
        by_governance(network, KeyRetire("m1.test", m1.issuer.key_id, 2)),
        signed(ReportEvidence(evidence), m0.node),
    ]
    for event in events:
        decoded = decode_event(event.encode())
        expected = UnsignedEvent(event.origin, event.time_ms, event.payload).signed_bytes()
        assert decoded.signed_bytes() == expected
        assert decoded.id == event.id
        assert decoded == event
        assert decoded.leaf_hash() == event.leaf_hash() == merkle.leaf_hash(event.encode())


def test_an_event_with_other_signatures_has_its_own_leaf_hash_and_the_same_id() -> None:
    from tests.factories import issue, make_network

    m0 = make_network(2)["m0.test"]
    event = issue(m0, digest("a"))
    assert event.leaf_hash() == merkle.leaf_hash(event.encode())
    other = dataclasses.replace(event, signatures=(Signature(m0.id, m0.issuer.key_id, bytes(64)),))
    assert other.id == event.id
    assert other.leaf_hash() == merkle.leaf_hash(other.encode()) != event.leaf_hash()
