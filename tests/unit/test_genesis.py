"""Genesis: strict JSON parsing, the network hash, and the height-0 state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger import codec
from credledger.ledger.errors import ConfigError
from credledger.ledger.genesis import Genesis, Params, genesis_json, load_genesis, parse_genesis, write_genesis
from credledger.ledger.state import get_directory, get_issuer_key, get_member, validator_set
from tests.factories import make_member, make_network


def document(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(genesis_json(make_network(3, powers=[1, 2, 0]).genesis))
    doc.update(changes)
    return doc


def test_json_round_trips_through_a_file(tmp_path: Path) -> None:
    genesis = make_network(3, powers=[1, 2, 0]).genesis
    path = tmp_path / "genesis.json"
    write_genesis(genesis, path)
    assert load_genesis(path) == genesis


def test_record_round_trips_through_the_codec() -> None:
    genesis = make_network(2).genesis
    assert codec.decode(Genesis, codec.encode(genesis)) == genesis


def test_hash_ignores_member_order_and_formatting_but_not_content() -> None:
    doc = document()
    reordered = {**doc, "members": list(reversed(doc["members"]))}
    same = parse_genesis(json.dumps(reordered, separators=(",", ":")))
    assert same.hash() == parse_genesis(json.dumps(doc, indent=4)).hash()
    changed = parse_genesis(json.dumps({**doc, "params": {**doc["params"], "heartbeat_ms": 2_000}}))
    assert changed.hash() != same.hash()


def test_initial_state_holds_members_keys_and_directory_valid_from_height_zero() -> None:
    net = make_network(3, powers=[1, 2, 0])
    state = net.genesis.initial_state()
    assert get_directory(state).members == ("m0.test", "m1.test", "m2.test")
    for member in net.members.values():
        record = get_member(state, member.id)
        assert record is not None
        assert (record.power, record.node_key, record.active, record.since) == (
            member.power,
            member.node.public.raw,
            True,
            0,
        )
        key = get_issuer_key(state, member.id, member.issuer.key_id)
        assert key is not None and (key.valid_from, key.retired_at, key.compromised_since) == (0, None, None)


def test_member_did_is_did_web_of_its_id_unless_genesis_names_one(tmp_path: Path) -> None:
    doc = document()
    doc["members"][1]["did"] = "did:web:registrar.m1.test"
    genesis = parse_genesis(json.dumps(doc))
    write_genesis(genesis, tmp_path / "genesis.json")
    assert load_genesis(tmp_path / "genesis.json") == genesis
    state = genesis.initial_state()
    dids = [getattr(get_member(state, m), "did", None) for m in ("m0.test", "m1.test", "m2.test")]
    assert dids == ["did:web:m0.test", "did:web:registrar.m1.test", "did:web:m2.test"]


def test_validator_set_matches_the_one_derived_from_state() -> None:
    genesis = make_network(3, powers=[1, 2, 0]).genesis
    assert genesis.validator_set() == validator_set(genesis.initial_state())
    assert [v.member_id for v in genesis.validator_set().validators] == ["m0.test", "m1.test"]


def edit(path: str, value: Any) -> str:
    """Genesis JSON with the field at `path` (dotted; list indexes as numbers) set to `value` (or removed)."""
    doc = document()
    *parents, last = path.split(".")
    target: Any = doc
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    key: Any = int(last) if last.isdigit() else last
    if value is REMOVE:
        del target[key]
    else:
        target[key] = value
    return json.dumps(doc)


REMOVE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("origin", REMOVE, "genesis: missing origin"),
        ("origin", "two\nlines", "genesis.origin: origin 'two\\\\nlines' must be one printable line"),
        ("origin", 7, "genesis.origin: expected a string, got an integer"),
        ("genesis_time_ms", -1, "genesis.genesis_time_ms: -1 is outside"),
        ("genesis_time_ms", True, "genesis.genesis_time_ms: expected an integer, got a boolean"),
        ("extra", 1, "genesis: unknown field extra"),
        ("params.max_event_bytes", 100, "genesis.params.max_event_bytes: 100 is outside \\[1024, 16384\\]"),
        ("params.heartbeat_ms", 1.5, "genesis.params.heartbeat_ms: expected an integer, got a fraction"),
        ("params.max_block_bytes", 1024, "max_block_bytes \\(1024\\) is less than max_event_bytes"),
        ("params.timeout_prevote_ms", REMOVE, "genesis.params: missing timeout_prevote_ms"),
        ("params.governance_window_ms", 1_000, "governance_window_ms \\(1000\\) is less than max_clock_skew_ms"),
        ("members", [], "genesis.members: expected a list of 1..256 members"),
        ("members.0.id", "Upper", "genesis.members\\[0\\].id: member id 'Upper' must match"),
        ("members.0.power", -1, "genesis.members\\[0\\].power: -1 is outside"),
        ("members.1.name", "", "genesis.members\\[1\\].name: expected 1..200 UTF-8 bytes, got 0"),
        ("members.0.node_key", "not a key", "genesis.members\\[0\\].node_key: verifier key must be"),
        ("members.0.issuer_keys", [], "genesis.members\\[0\\].issuer_keys: expected a list of 1..64"),
        ("members.0.colour", "red", "genesis.members\\[0\\]: unknown field colour"),
        ("members.2.power", 0, None),  # a member without power is fine ...
        ("members.0.did", "did:web:uni.example", None),  # ... and so is a DID other than did:web:<id>
        ("members.0.did", "did:example:1", "genesis.members\\[0\\]: did: expected a did:web DID"),
        ("members.0.did", "did:web:m1.test", "genesis.members: two genesis members share a DID"),
    ],
)
def test_parsing_names_the_bad_field(path: str, value: Any, message: str | None) -> None:
    text = edit(path, value)
    if message is None:
        parse_genesis(text)
        return
    with pytest.raises(ConfigError, match=message):
        parse_genesis(text)


def test_genesis_without_voting_power_is_refused() -> None:
    doc = document()
    for member in doc["members"]:
        member["power"] = 0
    with pytest.raises(ConfigError, match="at least one genesis member needs voting power"):
        parse_genesis(json.dumps(doc))


def test_a_key_named_for_another_member_is_refused() -> None:
    doc = document()
    doc["members"][0]["issuer_keys"] = doc["members"][1]["issuer_keys"]
    with pytest.raises(ConfigError, match=r"named 'm1\.test'; a member's keys are named by its id 'm0\.test'"):
        parse_genesis(json.dumps(doc))


def test_duplicate_member_ids_are_refused() -> None:
    doc = document()
    doc["members"][1] = doc["members"][0]
    with pytest.raises(ConfigError, match="each id once"):
        parse_genesis(json.dumps(doc))


def test_shared_node_keys_are_refused() -> None:
    one, two = make_member("a.test"), make_member("b.test")
    shared = two.add_payload().__class__(two.id, "B", 1, one.node.public.raw, (two.issuer.public.raw,))
    with pytest.raises(ValueError, match="share a node key"):
        Genesis.of("credledger.test/unit", 0, [one.add_payload(), shared], Params())


def test_repeated_json_names_and_broken_json_are_refused() -> None:
    with pytest.raises(ConfigError, match="'origin' appears twice"):
        parse_genesis('{"origin": "a", "origin": "b"}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_genesis("{")
    with pytest.raises(ConfigError, match="genesis: expected an object, got a list"):
        parse_genesis("[]")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_genesis(tmp_path / "absent.json")


def test_params_check_their_bounds_when_built_in_code() -> None:
    with pytest.raises(ValueError, match="max_clock_skew_ms: 5 is not an integer in"):
        Params(max_clock_skew_ms=5)
    assert codec.decode(Params, codec.encode(Params())) == Params()
