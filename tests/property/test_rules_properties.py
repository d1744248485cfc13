"""Credential rules against a simple model: every event is accepted or refused exactly as the model says."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from credledger.ledger.errors import InvalidEvent
from credledger.ledger.events import Event, Reinstate, Revoke, Suspend
from credledger.ledger.rules import select_events
from credledger.ledger.state import Status, get_credential
from tests.factories import T0, Ledger, Network, digest, issue, make_network, signed

NET: Network = make_network(2)
MEMBERS = NET.ids
DIGESTS = [digest(f"credential-{i}") for i in range(3)]
KINDS = ("issue", "revoke", "suspend", "reinstate")


@dataclass(frozen=True)
class Op:
    kind: str
    credential: int
    member: int


ops = st.lists(
    st.builds(Op, st.sampled_from(KINDS), st.integers(0, len(DIGESTS) - 1), st.integers(0, len(MEMBERS) - 1)),
    max_size=12,
)


def event_for(op: Op, position: int) -> Event:
    member = NET[MEMBERS[op.member]]
    target = DIGESTS[op.credential]
    time_ms = T0 + position  # distinct times: equal operations are distinct events, never replays
    if op.kind == "issue":
        return issue(member, target, time_ms=time_ms)
    payloads: dict[str, Revoke | Suspend | Reinstate] = {
        "revoke": Revoke(target, 0),
        "suspend": Suspend(target, 0),
        "reinstate": Reinstate(target),
    }
    payload = payloads[op.kind]
    return signed(payload, member.issuer, time_ms=time_ms)


def model_step(model: dict[int, tuple[int, Status]], op: Op) -> str | None:
    """Apply `op` to the model; return the rule that refuses it, or None if it is accepted."""
    current = model.get(op.credential)
    if op.kind == "issue":
        if current is not None:
            return "already-issued"
        model[op.credential] = (op.member, Status.ACTIVE)
        return None
    if current is None:
        return "not-issued"
    issuer, status = current
    checks = [
        (issuer != op.member, "not-the-issuer"),
        (status == Status.REVOKED, "revoked-is-terminal"),
        (op.kind == "suspend" and status == Status.SUSPENDED, "already-suspended"),
        (op.kind == "reinstate" and status != Status.SUSPENDED, "not-suspended"),
    ]
    refusal = next((rule for failed, rule in checks if failed), None)
    if refusal is None:
        new = {"revoke": Status.REVOKED, "suspend": Status.SUSPENDED, "reinstate": Status.ACTIVE}[op.kind]
        model[op.credential] = (issuer, new)
    return refusal


@settings(max_examples=60, deadline=None)
@given(ops)
def test_one_block_of_random_credential_events_matches_the_model(sequence: list[Op]) -> None:
    events = [event_for(op, i) for i, op in enumerate(sequence)]
    ledger = Ledger(NET)
    selection = select_events(
        ledger.state,
        events,
        origin=NET.genesis.origin,
        height=1,
        block_time_ms=ledger.next_block_time,
        first_index=0,
        params=ledger.params,
        committed=ledger.committed,
    )
    model: dict[int, tuple[int, Status]] = {}
    expected = [model_step(model, op) for op in sequence]
    refused = {id(event): error.rule for event, error in selection.refused}
    assert [refused.get(id(event)) for event in events] == expected

    ledger.block(*selection.events)
    for index, credential in enumerate(DIGESTS):
        record = get_credential(ledger.state, credential)
        if index not in model:
            assert record is None
        else:
            assert record is not None
            assert (MEMBERS.index(record.issuer), record.status) == model[index]


@settings(max_examples=30, deadline=None)
@given(ops)
def test_events_applied_block_by_block_reach_the_same_statuses_as_one_block(sequence: list[Op]) -> None:
    events = [event_for(op, i) for i, op in enumerate(sequence)]
    one_block, many_blocks = Ledger(NET), Ledger(NET)
    for event in events:
        with contextlib.suppress(InvalidEvent):  # a refused event commits nothing
            many_blocks.block(event)
    accepted = [e for e in events if e.id in many_blocks.committed]
    one_block.block(*accepted)
    for credential in DIGESTS:
        a, b = get_credential(one_block.state, credential), get_credential(many_blocks.state, credential)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert (a.issuer, a.status, a.issued_ms) == (b.issuer, b.status, b.issued_ms)
