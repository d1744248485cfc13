"""The Tendermint state machine, rule by rule, on scenarios ported from CometBFT's state tests.

Validator m0.test is the machine under test; the harness signs every other validator's statements. With four
equal validators the proposers of rounds 0, 1, 2, 3 are m0, m1, m2, m3; a quorum is 3, a weak quorum 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from credledger.consensus.timeouts import TimeoutConfig, TimeoutKind
from credledger.ledger.block import Block, verify_certified_header
from credledger.ledger.votes import Precommit, Prevote, Proposal, Step, verify_evidence
from tests.sim.harness import Harness, decisions, evidence, own, sent, tampered, timeouts


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def lock_in_round_zero(h: Harness) -> Block:
    """Round 0: m0 proposes B, everyone prevotes B (m0 locks and precommits B), the others precommit nil."""
    block = own(h.start(), Proposal).block
    precommit = own(h.feed(*h.prevotes(0, block.hash(), *h.others)), Precommit)
    assert precommit.block_hash == block.hash()
    h.feed(*h.precommits(0, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    assert (h.machine.round, h.machine.locked) == (1, (0, block.hash()))
    return block


# -- proposing (L11-L21, L22) --------------------------------------------------------------------------------------


def test_proposer_proposes_at_once_and_prevotes_its_own_block(h: Harness) -> None:
    actions = h.start()
    proposal = own(actions, Proposal)
    assert (proposal.height, proposal.round, proposal.pol_round) == (1, 0, -1)
    assert own(actions, Prevote).block_hash == proposal.block_hash
    assert TimeoutKind.PROPOSE not in [kind for kind, _, _ in timeouts(actions)]


def test_non_proposer_times_out_into_a_nil_prevote(h: Harness) -> None:
    h.start()
    actions = h.feed(*h.precommits(0, None, *h.others))
    assert (TimeoutKind.PRECOMMIT, 0, 1_000) in timeouts(actions)
    actions = h.expire(TimeoutKind.PRECOMMIT)  # L65: round 1, whose proposer is m1
    assert h.machine.round == 1 and h.machine.proposer(1) == "m1.test"
    assert (TimeoutKind.PROPOSE, 1, 3_500) in timeouts(actions)
    prevote = own(h.expire(TimeoutKind.PROPOSE), Prevote)  # L57-L60
    assert (prevote.round, prevote.block_hash) == (1, None)


def test_invalid_proposal_gets_nil_prevote_and_no_lock(h: Harness) -> None:
    h.start()
    h.feed(*h.precommits(0, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    bad = tampered(h.block(1))
    assert own(h.feed(h.proposal(1, bad)), Prevote).block_hash is None  # L26
    actions = h.feed(*h.prevotes(1, bad.hash(), *h.others))  # a polka for a block we find invalid
    assert sent(actions, Precommit) == [] and h.machine.locked == (-1, None)
    assert own(h.expire(TimeoutKind.PREVOTE), Precommit).block is None  # L61-L64


def test_fresh_proposal_built_in_another_round_gets_nil_prevote(h: Harness) -> None:
    h.start()
    h.feed(*h.precommits(0, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    stale = h.block(0, proposer="m0.test", salt=7)  # built for round 0, proposed fresh in round 1
    assert own(h.feed(h.proposal(1, stale)), Prevote).block_hash is None


def test_heartbeat_holds_round_zero_until_events_wait(tmp_path: Path) -> None:
    h = Harness(tmp_path, timeouts=TimeoutConfig(heartbeat_ms=5_000))
    actions = h.start()
    assert sent(actions, Proposal) == []
    assert (TimeoutKind.HEARTBEAT, 0, 5_000) in timeouts(actions)
    assert own(h.machine.wake(h.now), Proposal).round == 0


def test_heartbeat_expiry_proposes_an_empty_block(tmp_path: Path) -> None:
    h = Harness(tmp_path, timeouts=TimeoutConfig(heartbeat_ms=5_000))
    h.start()
    assert own(h.expire(TimeoutKind.HEARTBEAT), Proposal).block.events == ()


# -- full rounds ----------------------------------------------------------------------------------------------------


def test_single_validator_decides_alone_with_a_verifying_certificate(tmp_path: Path) -> None:
    h = Harness(tmp_path, n=1)
    actions = h.start()
    (decide,) = decisions(actions)
    certified = decide.certified
    checkpoint = verify_certified_header(certified.header, certified.note(), h.app.validators(1))
    assert (checkpoint.height, checkpoint.round) == (1, 0)
    assert decide.next_schedule.height == 2


def test_two_validators_decide_only_with_both(tmp_path: Path) -> None:
    h = Harness(tmp_path, n=2)
    block = own(h.start(), Proposal).block
    assert own(h.feed(*h.prevotes(0, block.hash(), "m1.test")), Precommit).block_hash == block.hash()
    (decide,) = decisions(h.feed(*h.precommits(0, block, "m1.test")))
    assert decide.certified.block == block
    assert h.machine.decided


def test_decided_height_continues_with_the_next_proposer(h: Harness) -> None:
    block = own(h.start(), Proposal).block
    h.feed(*h.prevotes(0, block.hash(), *h.others))
    (decide,) = decisions(h.feed(*h.precommits(0, block, "m1.test", "m2.test")))
    h.app.commit(decide.certified)
    actions = h.start()
    assert h.machine.height == 2 and h.machine.proposer(0) == "m1.test"
    assert sent(actions, Proposal) == []


# -- locking (L36-L43) and its scenarios ----------------------------------------------------------------------------


def test_lock_without_later_polka_reproposes_the_locked_block(tmp_path: Path) -> None:
    """CometBFT LockNoPOL: two validators; m0 locks in round 0 and re-proposes that block when it next proposes."""
    h = Harness(tmp_path, n=2)
    block = own(h.start(), Proposal).block
    h.feed(*h.prevotes(0, block.hash(), "m1.test"))
    other = h.block(0, salt=5)
    h.feed(*h.precommits(0, other, "m1.test"))  # a precommit for another block: no decision
    h.expire(TimeoutKind.PRECOMMIT)
    assert own(h.expire(TimeoutKind.PROPOSE), Prevote).block_hash is None  # round 1, no proposal
    h.feed(*h.prevotes(1, other.hash(), "m1.test"))
    assert own(h.expire(TimeoutKind.PREVOTE), Precommit).block is None
    assert h.machine.locked == (0, block.hash())
    h.feed(*h.precommits(1, other, "m1.test"))
    actions = h.expire(TimeoutKind.PRECOMMIT)  # round 2: m0 proposes again
    proposal = own(actions, Proposal)
    assert (proposal.block, proposal.pol_round) == (block, 0)  # L15-L16: the valid value, with its POL round
    assert own(actions, Prevote, 2).block_hash == block.hash()
    assert own(actions, Prevote, 0).block_hash == block.hash()  # the proof of lock travels with the proposal


def test_polka_for_a_new_block_moves_the_lock(h: Harness) -> None:
    """CometBFT POLUpdateLock: locked on B, a polka for D in a later round locks D."""
    lock_in_round_zero(h)
    d = h.block(1)
    assert own(h.feed(h.proposal(1, d)), Prevote).block_hash is None  # locked on B: L26
    precommit = own(h.feed(*h.prevotes(1, d.hash(), *h.others)), Precommit)
    assert precommit.block_hash == d.hash()
    assert h.machine.locked == (1, d.hash()) and h.machine.valid == (1, d)


def test_polka_for_the_locked_block_relocks_in_the_later_round(h: Harness) -> None:
    """CometBFT POLRelock: B re-proposed with its proof of lock; a second polka moves the locked round."""
    block = lock_in_round_zero(h)
    assert own(h.feed(h.proposal(1, block, pol_round=0)), Prevote).block_hash == block.hash()  # L28-L30
    assert own(h.feed(*h.prevotes(1, block.hash(), *h.others)), Precommit).block_hash == block.hash()
    assert h.machine.locked == (1, block.hash())


def test_locked_validator_prevotes_nil_when_the_proposal_is_missing(h: Harness) -> None:
    block = lock_in_round_zero(h)
    assert own(h.expire(TimeoutKind.PROPOSE), Prevote).block_hash is None
    assert h.machine.locked == (0, block.hash())


def test_nil_polka_does_not_unlock(h: Harness) -> None:
    """CometBFT POLDoesNotUnlock: a polka for nil makes m0 precommit nil, still locked on B."""
    block = lock_in_round_zero(h)
    h.expire(TimeoutKind.PROPOSE)
    assert own(h.feed(*h.prevotes(1, None, *h.others)), Precommit).block is None  # L44-L46
    h.feed(*h.precommits(1, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    fresh = h.block(2)
    assert own(h.feed(h.proposal(2, fresh)), Prevote).block_hash is None  # still locked on B
    assert h.machine.locked == (0, block.hash())


def test_polka_for_an_unseen_block_does_not_move_the_lock(h: Harness) -> None:
    """CometBFT MissingProposalWhenPOLSeenDoesNotUpdateLock."""
    block = lock_in_round_zero(h)
    h.expire(TimeoutKind.PROPOSE)
    unseen = h.block(1)
    actions = h.feed(*h.prevotes(1, unseen.hash(), *h.others))
    assert sent(actions, Precommit) == []
    assert (TimeoutKind.PREVOTE, 1, 1_500) in timeouts(actions)  # L34-L35
    assert own(h.expire(TimeoutKind.PREVOTE), Precommit).block is None
    assert h.machine.locked == (0, block.hash())


def test_polka_seen_after_precommitting_updates_only_the_valid_value(h: Harness) -> None:
    """L36 with step = precommit: the valid value moves, the lock does not (L42-L43)."""
    block = lock_in_round_zero(h)
    d = h.block(1)
    h.feed(h.proposal(1, d))  # m0 prevotes nil: locked on B
    h.feed(*h.prevotes(1, d.hash(), "m1.test", "m2.test"))  # three prevotes of any kind: L34
    assert own(h.expire(TimeoutKind.PREVOTE), Precommit).block is None
    actions = h.feed(*h.prevotes(1, d.hash(), "m3.test"))  # now a polka for D, in the precommit step
    assert sent(actions, Precommit) == []
    assert h.machine.valid == (1, d) and h.machine.locked == (0, block.hash())


def test_earlier_polka_does_not_change_a_later_lock(h: Harness) -> None:
    """CometBFT POLSafety1 and POLSafety2: locked on C in round 1, a late polka for B in round 0 changes
    nothing, and B re-proposed with POL round 0 gets a nil prevote."""
    b = own(h.start(), Proposal).block
    h.feed(*h.precommits(0, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    c = h.block(1)
    assert own(h.feed(h.proposal(1, c)), Prevote).block_hash == c.hash()
    h.feed(*h.prevotes(1, c.hash(), *h.others))
    assert h.machine.locked == (1, c.hash())
    h.feed(*h.prevotes(0, b.hash(), "m1.test", "m2.test"))  # the round-0 polka for B, late
    assert h.machine.locked == (1, c.hash())
    h.feed(*h.precommits(1, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    assert own(h.feed(h.proposal(2, b, pol_round=0)), Prevote).block_hash is None  # L29: 1 > 0 and C != B


def test_reproposal_with_polka_from_previous_round_gets_a_prevote(h: Harness) -> None:
    """CometBFT PrevotePOLFromPreviousRound: m0 locked in round 0 prevotes C re-proposed with POL round 1."""
    lock_in_round_zero(h)
    h.expire(TimeoutKind.PROPOSE)
    c = h.block(1)
    h.feed(*h.prevotes(1, c.hash(), *h.others))  # a polka for C that m0 sees without the block
    h.expire(TimeoutKind.PREVOTE)
    h.feed(*h.precommits(1, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    assert own(h.feed(h.proposal(2, c, pol_round=1)), Prevote).block_hash == c.hash()  # L28: 0 <= 1


def test_reproposal_waits_for_its_proof_of_lock(h: Harness) -> None:
    b = own(h.start(), Proposal).block
    h.feed(*h.precommits(0, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    assert sent(h.feed(h.proposal(1, b, pol_round=0)), Prevote) == []  # no polka for B in round 0 yet
    assert own(h.feed(*h.prevotes(0, b.hash(), "m1.test", "m2.test")), Prevote).block_hash == b.hash()


# -- deciding (L49) and round skipping (L55) ------------------------------------------------------------------------


def test_precommits_of_an_earlier_round_still_decide(h: Harness) -> None:
    """CometBFT Halt1: the last precommit of round 0 arrives after m0 timed out into round 1."""
    block = own(h.start(), Proposal).block
    h.feed(*h.prevotes(0, block.hash(), "m1.test", "m2.test"))
    h.feed(*h.precommits(0, block, "m1.test"), *h.precommits(0, None, "m2.test"))
    h.expire(TimeoutKind.PRECOMMIT)
    assert h.machine.round == 1
    (decide,) = decisions(h.feed(*h.precommits(0, block, "m3.test")))
    assert decide.certified.block == block
    assert decide.certified.note().text == block.header.checkpoint(0).body()


def test_decision_needs_a_quorum_for_one_block(h: Harness) -> None:
    block = own(h.start(), Proposal).block
    h.feed(*h.prevotes(0, block.hash(), "m1.test", "m2.test"))
    other = h.block(0, salt=3)
    assert decisions(h.feed(*h.precommits(0, block, "m1.test"), *h.precommits(0, other, "m2.test", "m3.test"))) == []


def test_weak_quorum_in_a_later_round_skips_to_it(h: Harness) -> None:
    h.start()
    h.feed(*h.prevotes(5, None, "m1.test"))
    assert h.machine.round == 0  # one validator is not more than a third
    actions = h.feed(*h.precommits(7, None, "m2.test"))
    assert h.machine.round == 5  # m1 at 5, m2 at 7: f + 1 have reached round 5
    assert (TimeoutKind.PROPOSE, 5, 5_500) in timeouts(actions)


def test_round_skip_counts_power_not_heads(tmp_path: Path) -> None:
    h = Harness(tmp_path, powers=[1, 1, 1, 4])  # total 7: more than a third is 3
    h.start()
    h.feed(*h.prevotes(3, None, "m1.test", "m2.test"))
    assert h.machine.round == 0
    h.feed(*h.prevotes(2, None, "m3.test"))
    assert h.machine.round == 2


# -- evidence -------------------------------------------------------------------------------------------------------


def test_double_prevote_is_recorded_as_verifiable_evidence(h: Harness) -> None:
    block = own(h.start(), Proposal).block
    h.feed(*h.prevotes(0, block.hash(), "m1.test"))
    (record,) = evidence(h.feed(*h.prevotes(0, None, "m1.test")))
    assert record.evidence.offender == "m1.test" and record.evidence.step is Step.PREVOTE
    assert verify_evidence(record.evidence, h.app.validators(1), h.origin).member_id == "m1.test"
    assert h.machine.step is Step.PREVOTE  # the second vote did not complete a quorum of "any"


def test_double_precommit_is_recorded_once(h: Harness) -> None:
    block = own(h.start(), Proposal).block
    h.feed(*h.precommits(0, block, "m2.test"))
    first = evidence(h.feed(*h.precommits(0, None, "m2.test")))
    again = evidence(h.feed(*h.precommits(0, h.block(0, salt=9), "m2.test")))
    assert len(first) == 1 and again == []


def test_equivocating_proposer_is_recorded(h: Harness) -> None:
    h.start()
    h.feed(*h.precommits(0, None, *h.others))
    h.expire(TimeoutKind.PRECOMMIT)
    one, two = h.block(1, salt=1), h.block(1, salt=2)
    h.feed(h.proposal(1, one))
    (record,) = evidence(h.feed(h.proposal(1, two)))
    assert record.evidence.step is Step.PROPOSE and record.evidence.offender == "m1.test"
