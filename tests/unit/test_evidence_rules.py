"""Consensus evidence on the chain: a validator's conflicting votes, reported by another member's node."""

from __future__ import annotations

import dataclasses

import pytest

from credledger.ledger import codec
from credledger.ledger.errors import InvalidEvent, Unauthorized
from credledger.ledger.events import Event, ReportEvidence, decode_event
from credledger.ledger.state import EquivocationRecord, evidence_key
from credledger.ledger.votes import Evidence, make_evidence, sign_prevote
from tests.factories import ORIGIN, T0, Ledger, Network, make_network, signed


@pytest.fixture
def network() -> Network:
    return make_network(4)


def equivocation(network: Network, offender: str = "m1.test", height: int = 1) -> Evidence:
    key = network[offender].node
    return make_evidence(
        sign_prevote(key, ORIGIN, height, 0, b"\x01" * 32),
        sign_prevote(key, ORIGIN, height, 0, b"\x02" * 32),
    )


def report(network: Network, evidence: Evidence, reporter: str = "m0.test", time_ms: int = T0 + 1000) -> Event:
    return signed(ReportEvidence(evidence), network[reporter].node, time_ms=time_ms)


def test_reported_equivocation_is_recorded_once(network: Network) -> None:
    ledger = Ledger(network)
    ledger.block()
    evidence = equivocation(network)
    event = report(network, evidence)
    assert decode_event(event.encode()) == event
    ledger.block(event)
    raw = ledger.state[evidence_key("m1.test", 1, 0, int(evidence.step))]
    record = codec.decode(EquivocationRecord, raw)
    assert (record.offender, record.height, record.reported_by, record.index) == ("m1.test", 1, "m0.test", 0)
    assert record.evidence_id == evidence.id()
    again = report(network, evidence, reporter="m2.test", time_ms=T0 + 1500)
    with pytest.raises(InvalidEvent, match="evidence-duplicate"):
        ledger.check(again)


def test_votes_that_do_not_conflict_are_not_evidence(network: Network) -> None:
    ledger = Ledger(network)
    ledger.block()
    vote = sign_prevote(network["m1.test"].node, ORIGIN, 1, 0, b"\x01" * 32)
    other = sign_prevote(network["m1.test"].node, ORIGIN, 1, 1, b"\x02" * 32)
    forged = Evidence(vote, dataclasses.replace(vote, signature=bytes(64)))
    for evidence in (Evidence(vote, other), forged):
        with pytest.raises(InvalidEvent, match="evidence-invalid"):
            ledger.check(report(network, evidence))


def test_evidence_against_a_stranger_is_invalid(network: Network) -> None:
    from tests.factories import key_for

    ledger = Ledger(network)
    stranger = key_for("x9.test", "node")
    evidence = make_evidence(
        sign_prevote(stranger, ORIGIN, 1, 0, b"\x01" * 32), sign_prevote(stranger, ORIGIN, 1, 0, None)
    )
    with pytest.raises(InvalidEvent, match="evidence-invalid"):
        ledger.check(report(network, evidence))


def test_evidence_from_the_future_is_refused(network: Network) -> None:
    ledger = Ledger(network)
    with pytest.raises(InvalidEvent, match="evidence-from-the-future"):
        ledger.check(report(network, equivocation(network, height=5)))


def test_evidence_must_be_reported_with_one_node_key(network: Network) -> None:
    ledger = Ledger(network)
    ledger.block()
    evidence = equivocation(network)
    with pytest.raises(Unauthorized, match="unknown-key"):
        ledger.check(signed(ReportEvidence(evidence), network["m0.test"].issuer, time_ms=T0 + 1000))
    both = signed(ReportEvidence(evidence), network["m0.test"].node, network["m2.test"].node, time_ms=T0 + 1000)
    with pytest.raises(Unauthorized, match="reporter-signature-required"):
        ledger.check(both)


def test_evidence_event_round_trips_through_its_json_form(network: Network) -> None:
    import json

    from credledger.ledger.eventjson import event_from_json, event_to_json

    event = report(network, equivocation(network))
    form = json.loads(json.dumps(event_to_json(event)))
    assert form["payload"]["kind"] == "evidence"
    assert event_from_json(form) == event
