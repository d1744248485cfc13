"""The JSON form of events rebuilds the exact canonical event, and refuses anything else naming the field."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from credledger.ledger.block import Header
from credledger.ledger.errors import DecodeError
from credledger.ledger.eventjson import event_from_json, event_to_json, header_to_json, issuer_key_to_json
from credledger.ledger.events import Issue, KeyRetire, MemberAdd, Payload, Revoke
from credledger.ledger.keys import key_id
from credledger.ledger.limits import MAX_COMPONENTS
from credledger.ledger.state import IssuerKeyRecord
from tests.factories import T0, by_governance, digest, issue, key_for, make_member, make_network, signed
from tests.unit.test_openapi import PAYLOADS

KEY = key_for("m0.test", "issuer")


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: p.TAG)
def test_every_kind_round_trips_to_the_same_bytes_and_id(payload: Payload) -> None:
    event = signed(payload, KEY, time_ms=T0)
    form = event_to_json(event)
    rebuilt = event_from_json(json.loads(json.dumps(form)))
    assert rebuilt.encode() == event.encode() and rebuilt.id == event.id


def test_governance_events_keep_every_signature_in_order() -> None:
    network = make_network(4)
    event = by_governance(
        network, MemberAdd("m9.test", "Nine", 1, KEY.public.raw, (key_for("m9.test", "i").public.raw,))
    )
    rebuilt = event_from_json(event_to_json(event))
    assert rebuilt == event and [s.member for s in rebuilt.signatures] == network.ids


def test_fields_added_with_a_default_may_be_left_out() -> None:
    form = event_to_json(issue(make_member("m0.test"), digest("a"), time_ms=T0))
    # Absent optional fields are left out of the JSON form, as of the canonical encoding, and decode to their default.
    assert not {"status_list", "status_index", "achievement", "achievement_version"} & set(form["payload"])
    assert event_from_json(form).payload == Issue(digest("a"), "m0.test", None, ())


def test_spelling_of_each_field() -> None:
    member = make_member("m0.test")
    form = event_to_json(issue(member, digest("a"), time_ms=T0, components=[digest("b")]))
    assert form["payload"] == {
        "kind": "issue",
        "digest": digest("a").hex(),
        "issuer": "m0.test",
        "expires_ms": None,
        "components": [digest("b").hex()],
    }
    sig = form["signatures"][0]
    assert sig["key_id"] == member.issuer.key_id.hex() and len(base64.b64decode(sig["sig"])) == 64
    add = event_to_json(signed(member.add_payload(), KEY))["payload"]
    assert add["node_key"] == member.node.public.vkey()
    assert add["issuer_keys"] == [member.issuer.public.vkey()]


def _base() -> dict[str, Any]:
    return event_to_json(issue(make_member("m0.test"), digest("a"), time_ms=T0))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("origin",), 7, "event.origin: expected a string, got an integer"),
        (("origin",), "", "event.origin: expected 1..200 UTF-8 bytes, got 0"),
        (("time_ms",), -1, "event.time_ms: -1 is outside"),
        (("time_ms",), 2**64, "event.time_ms: 18446744073709551616 is outside"),
        (("time_ms",), 1.5, "event.time_ms: expected an integer, got a fraction"),
        (("payload", "digest"), digest("a").hex().upper(), "event.payload.digest: expected lowercase hex"),
        (("payload", "digest"), "ab", "event.payload.digest: expected 32 bytes, got 1"),
        (("payload", "issuer"), "Not An Id", "event.payload: member id 'Not An Id' must match"),
        (("payload", "components"), "x", "event.payload.components: expected a list, got a string"),
        (("payload", "components"), [digest("a").hex()], "a credential cannot be one of its own components"),
        (
            ("payload", "components"),
            [digest(str(i)).hex() for i in range(MAX_COMPONENTS + 1)],
            "event.payload.components: expected 0..256 items",
        ),
        (("payload",), [], "event.payload: expected an object, got a list"),
        (("signatures",), {}, "event.signatures: expected a list, got an object"),
        (("signatures", 0, "key_id"), 5, "event.signatures[0].key_id: expected a hex string, got an integer"),
        (("signatures", 0, "sig"), "AAAA", "event.signatures[0].sig: expected 64 bytes, got 3"),
        (("signatures", 0, "sig"), "AAB=", "event.signatures[0].sig: expected canonical standard base64"),
    ],
)
def test_malformed_fields_are_refused_naming_them(path: tuple[Any, ...], value: Any, message: str) -> None:
    form = _base()
    target = form
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(DecodeError) as caught:
        event_from_json(form)
    assert message in str(caught.value)


def test_missing_and_unknown_fields_are_refused() -> None:
    form = _base()
    form["payload"]["reason"] = 1
    with pytest.raises(DecodeError, match=r"event\.payload: unknown field reason"):
        event_from_json(form)
    form = _base()
    del form["signatures"][0]["member"]
    with pytest.raises(DecodeError, match=r"event.signatures\[0\]: missing field member"):
        event_from_json(form)


def test_reason_codes_are_held_to_one_byte_and_kinds_must_be_known() -> None:
    form = event_to_json(signed(Revoke(digest("a"), 1), KEY))
    bad = copy.deepcopy(form)
    bad["payload"]["reason"] = 256
    with pytest.raises(DecodeError, match=r"reason: 256 outside \[0, 255\]"):
        event_from_json(bad)
    bad = copy.deepcopy(form)
    bad["payload"]["kind"] = "Revoke"
    with pytest.raises(
        DecodeError, match=r"event\.payload\.kind: expected one of (achievement\.[a-z]+, )*evidence, issue, key\.add"
    ):
        event_from_json(bad)


def test_verifier_keys_must_be_named_by_the_payloads_member() -> None:
    form = event_to_json(signed(make_member("m1.test").add_payload(), KEY))
    form["payload"]["node_key"] = key_for("m2.test", "node").public.vkey()
    with pytest.raises(DecodeError, match=r"event\.payload\.node_key: the key is named 'm2\.test'"):
        event_from_json(form)
    form["payload"]["node_key"] = "m1.test+00000000+AAAA"
    with pytest.raises(DecodeError, match=r"event\.payload\.node_key: verifier key"):
        event_from_json(form)


def test_optional_fields_take_null() -> None:
    form = event_to_json(signed(KeyRetire("m0.test", b"\x00\x01\x02\x03", None), KEY))
    assert form["payload"]["compromised_since"] is None
    assert isinstance(event_from_json(form).payload, KeyRetire)
    form = event_to_json(signed(Issue(digest("a"), "m0.test", T0 + 1, ()), KEY))
    assert event_from_json(form).payload == Issue(digest("a"), "m0.test", T0 + 1, ())


def test_events_above_the_size_limit_are_refused() -> None:
    form = _base()
    with pytest.raises(DecodeError, match="exceeds the limit of 100"):
        event_from_json(form, max_bytes=100)


def test_header_and_key_records_read_as_documented() -> None:
    header = Header(
        "o", 3, 1, T0, b"\x01" * 32, "m0.test", 9, b"\x02" * 32, b"\x03" * 32, 2, b"\x04" * 32, b"\x05" * 32
    )
    form = header_to_json(header)
    assert form["prev_hash"] == base64.b64encode(b"\x01" * 32).decode()
    assert (form["height"], form["round"], form["log_size"], form["event_count"]) == (3, 1, 9, 2)
    record = IssuerKeyRecord("m0.test", key_id("m0.test", KEY.public.raw), KEY.public.raw, 2, 5, None)
    assert issuer_key_to_json(record) == {
        "key_id": KEY.key_id.hex(),
        "vkey": KEY.public.vkey(),
        "valid_from": 2,
        "retired_at": 5,
        "compromised_since": None,
    }
