"""Signed consensus statements and evidence (ledger/votes.py): formats, signatures, certificates."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from credledger.ledger import codec
from credledger.ledger.block import Block, verify_certificate
from credledger.ledger.errors import BadSignature, DecodeError, VerificationError
from credledger.ledger.note import SignedNote
from credledger.ledger.votes import (
    Evidence,
    Message,
    Precommit,
    Prevote,
    Proposal,
    Vote,
    decode_evidence,
    decode_message,
    encode_message,
    make_evidence,
    sign_precommit,
    sign_prevote,
    sign_proposal,
    verify_evidence,
    verify_vote,
)
from tests.factories import make_member
from tests.sim.harness import Harness


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_every_message_kind_round_trips_through_the_wire_codec(h: Harness) -> None:
    block = h.block(0)
    messages: list[Message] = [
        h.proposal(0, block),
        *h.prevotes(0, block.hash(), "m1.test"),
        *h.prevotes(0, None, "m1.test"),
        *h.precommits(0, block, "m2.test"),
        *h.precommits(0, None, "m2.test"),
    ]
    for message in messages:
        assert decode_message(encode_message(message)) == message


def test_evidence_round_trips_and_has_one_id_whatever_the_order(h: Harness) -> None:
    a, b = h.prevotes(0, b"\x01" * 32, "m1.test") + h.prevotes(0, None, "m1.test")
    evidence = make_evidence(a, b)
    assert make_evidence(b, a) == evidence
    assert decode_evidence(codec.encode(evidence)) == evidence
    assert len(evidence.id()) == 32


def test_a_proposal_whose_pol_round_is_not_below_its_round_does_not_decode(h: Harness) -> None:
    proposal = h.proposal(0, h.block(0))
    raw = bytearray(encode_message(proposal))
    good = codec.decode(type(proposal), codec.encode(proposal))
    assert good == proposal
    with pytest.raises(ValueError, match="pol_round 0 must be below its round 0"):
        replace(proposal, pol_round=0)
    with pytest.raises(DecodeError):
        decode_message(bytes(raw[:-3]))


def test_block_precommits_are_the_commit_certificate(h: Harness) -> None:
    block = h.block(0)
    precommits = h.precommits(2, block, "m0.test", "m1.test", "m2.test")
    validators = h.app.validators(1)
    lines = tuple(p.note_signature(validators.get(p.validator)) for p in precommits)  # type: ignore[arg-type]
    note = SignedNote(block.header.checkpoint(2).body(), lines)
    checkpoint, power = verify_certificate(note, validators)
    assert (checkpoint.round, power) == (2, 3)
    for precommit in precommits:
        verify_vote(precommit, validators, h.origin)


def test_signatures_are_bound_to_their_domain_network_and_content(h: Harness) -> None:
    validators = h.app.validators(1)
    (prevote,) = h.prevotes(0, None, "m1.test")
    (nil,) = h.precommits(0, None, "m1.test")
    verify_vote(prevote, validators, h.origin)
    with pytest.raises(BadSignature):  # a nil prevote's signature is no nil precommit's
        verify_vote(Precommit(1, 0, None, "m1.test", prevote.signature), validators, h.origin)
    with pytest.raises(BadSignature):  # another network
        verify_vote(nil, validators, "credledger.test/other")
    with pytest.raises(BadSignature):  # another round
        verify_vote(replace(prevote, round=1), validators, h.origin)


def test_statement_by_someone_outside_the_set_is_refused(h: Harness) -> None:
    outsider = make_member("zz.test").node
    vote = sign_prevote(outsider, h.origin, 1, 0, None)
    with pytest.raises(VerificationError, match=re.escape("'zz.test' is not a validator")):
        verify_vote(vote, h.app.validators(1), h.origin)


def test_evidence_verifies_for_every_kind_of_double_signing(h: Harness) -> None:
    validators = h.app.validators(1)
    one, two = h.block(1, salt=1), h.block(1, salt=2)
    key = h.network["m1.test"].node
    pairs: list[tuple[Vote | Proposal, Vote | Proposal]] = [
        (sign_proposal(key, h.origin, 1, 1, one, pol_round=-1), sign_proposal(key, h.origin, 1, 1, two, pol_round=-1)),
        (h.prevotes(0, one.hash(), "m1.test")[0], h.prevotes(0, two.hash(), "m1.test")[0]),
        (h.precommits(0, one, "m1.test")[0], h.precommits(0, None, "m1.test")[0]),
    ]
    for a, b in pairs:
        assert verify_evidence(make_evidence(a, b), validators, h.origin).member_id == "m1.test"


def test_evidence_that_proves_nothing_is_refused(h: Harness) -> None:
    validators = h.app.validators(1)
    (a,) = h.prevotes(0, None, "m1.test")
    (b,) = h.prevotes(0, b"\x02" * 32, "m1.test")
    (other_validator,) = h.prevotes(0, b"\x02" * 32, "m2.test")
    (other_round,) = h.prevotes(1, b"\x02" * 32, "m1.test")
    (precommit,) = h.precommits(0, None, "m1.test")
    good = make_evidence(a, b)
    cases: list[tuple[Evidence, str]] = [
        (Evidence(good.second, good.first), "not in canonical order"),
        (Evidence(a, a), "equal or not in canonical order"),
        (make_evidence(a, other_validator), "by m1.test at 1/0 and m2.test at 1/0"),
        (make_evidence(a, other_round), "m1.test at 1/1"),
        (Evidence(a, precommit), "pairs a Prevote with a Precommit"),
        (make_evidence(a, replace(b, signature=bytes(64))), "does not verify"),
    ]
    for evidence, message in cases:
        with pytest.raises(VerificationError, match=message):
            verify_evidence(evidence, validators, h.origin)


def test_precommit_carrying_a_wrong_log_size_does_not_verify_as_the_blocks(h: Harness) -> None:
    block: Block = h.block(0)
    (precommit,) = h.precommits(0, block, "m1.test")
    assert precommit.block is not None
    bent = Prevote(1, 0, block.hash(), "m1.test", precommit.signature)
    with pytest.raises(BadSignature):
        verify_vote(bent, h.app.validators(1), h.origin)
    forged = replace(precommit, block=replace(precommit.block, log_size=precommit.block.log_size + 1))
    with pytest.raises(BadSignature):
        verify_vote(forged, h.app.validators(1), h.origin)
    assert sign_precommit(h.network["m1.test"].node, h.origin, 1, 0, block.header) == precommit
