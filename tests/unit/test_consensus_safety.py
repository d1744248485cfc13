"""The double-sign guard across restarts, and the safety record the driver persists."""

from __future__ import annotations

from pathlib import Path

import pytest

from credledger.consensus.actions import Broadcast, PersistSafety
from credledger.consensus.machine import Machine
from credledger.consensus.safety import SafetyRecord
from credledger.consensus.timeouts import TimeoutKind
from credledger.ledger import codec
from credledger.ledger.votes import Precommit, Prevote, Proposal, Step
from tests.sim.harness import Harness, decisions, own, records, sent


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_every_statement_is_persisted_before_it_is_broadcast(h: Harness) -> None:
    actions = h.start()
    block = own(actions, Proposal).block
    actions += h.feed(*h.prevotes(0, block.hash(), *h.others))
    for index, action in enumerate(actions):
        if isinstance(action, Broadcast) and action.message.signer == h.me:
            statement = action.message
            persisted = [a.record.last for a in actions[:index] if isinstance(a, PersistSafety)]
            expected = statement.signed() if isinstance(statement, Proposal) else statement
            assert expected in persisted


def test_restarted_machine_refuses_a_conflicting_vote_in_a_signed_slot(h: Harness) -> None:
    h.start()
    record = records(h.actions)[-1]
    assert record.slot == (1, 0, Step.PREVOTE)
    actions = h.restart(record)
    assert sent(actions, Proposal) == []  # round 0's proposal slot lies below the recorded prevote
    actions = h.expire(TimeoutKind.PROPOSE)  # L57 wants a nil prevote: the slot holds a prevote for B
    assert sent(actions, Prevote) == [] and records(actions) == []
    assert h.machine.step is Step.PREVOTE


def test_restarted_machine_resends_the_identical_vote(h: Harness) -> None:
    proposal = own(h.start(), Proposal)
    record = records(h.actions)[-1]
    h.restart(record)
    actions = h.feed(proposal)  # its own proposal comes back from a peer: L22 prevotes B again
    assert own(actions, Prevote) == record.last
    assert records(actions) == []


def test_restarted_machine_keeps_its_lock(h: Harness) -> None:
    block = own(h.start(), Proposal).block
    h.feed(*h.prevotes(0, block.hash(), *h.others))
    record = records(h.actions)[-1]
    assert (record.locked_round, record.locked_hash, record.valid_block) == (0, block.hash(), block)
    h.restart(record)
    assert h.machine.locked == (0, block.hash())
    h.feed(*h.precommits(0, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    fresh = h.block(1)
    assert own(h.feed(h.proposal(1, fresh)), Prevote).block_hash is None


def test_record_keeps_every_vote_of_the_height_and_rebroadcast_resends_them(h: Harness) -> None:
    block = own(h.start(), Proposal).block
    h.feed(*h.prevotes(0, block.hash(), *h.others))
    h.feed(*h.precommits(0, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    h.expire(TimeoutKind.PROPOSE)
    record = records(h.actions)[-1]
    kinds = [(type(s).__name__, s.round) for s in record.signed]
    assert kinds == [("SignedProposal", 0), ("Prevote", 0), ("Precommit", 0), ("Prevote", 1)]
    resent = h.expire(TimeoutKind.REBROADCAST)
    assert {(type(m).__name__, m.round) for m in sent(resent, Prevote) + sent(resent, Precommit)} == {
        ("Prevote", 0),
        ("Precommit", 0),
        ("Prevote", 1),
    }


def test_record_of_an_earlier_height_does_not_stop_signing(h: Harness) -> None:
    block = own(h.start(), Proposal).block
    h.feed(*h.prevotes(0, block.hash(), *h.others))
    record = records(h.actions)[-1]
    (decide,) = decisions(h.feed(*h.precommits(0, block, "m1.test", "m2.test")))
    h.app.commit(decide.certified)
    machine = Machine(
        origin=h.origin,
        app=h.app,
        schedule=decide.next_schedule,
        signer=h.network[h.me].node,
        timeouts=h.timeouts,
        safety=record,
    )
    machine.start(2, h.now)
    h.machine = machine
    assert machine.proposer(0) == "m1.test"
    assert own(h.feed(h.proposal(0, h.block(0))), Prevote).height == 2


def test_safety_record_round_trips_and_checks_itself(h: Harness) -> None:
    block = own(h.start(), Proposal).block
    h.feed(*h.prevotes(0, block.hash(), *h.others))
    record = records(h.actions)[-1]
    assert codec.decode(SafetyRecord, codec.encode(record)) == record
    assert isinstance(record.last, Precommit)
    with pytest.raises(ValueError, match="does not match its last statement"):
        SafetyRecord(1, 0, int(Step.PREVOTE), record.signed)
    with pytest.raises(ValueError, match="needs both a round and a block hash"):
        SafetyRecord(1, 0, int(Step.PRECOMMIT), record.signed, locked_round=0)
