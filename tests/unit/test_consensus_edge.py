"""What the machine refuses at its edge, and the bounds on what it keeps. A refusal never changes state."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from credledger.consensus import machine as consensus_machine
from credledger.consensus.errors import (
    BadCertificate,
    BadMessageSignature,
    MessageOutOfWindow,
    NotProposer,
    UnknownSigner,
)
from credledger.consensus.machine import MAX_ROUNDS_AHEAD, ROUND_WINDOW
from credledger.consensus.timeouts import TimeoutKind
from credledger.ledger.block import CertifiedBlock
from credledger.ledger.errors import DecodeError
from credledger.ledger.validators import Validator, ValidatorSet
from credledger.ledger.votes import (
    Message,
    Precommit,
    Proposal,
    decode_message,
    encode_message,
    sign_prevote,
    verify_vote,
)
from tests.blocks import certify
from tests.factories import make_member
from tests.sim.harness import Harness, decisions, own, tampered, timeouts


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def state(h: Harness) -> tuple[object, ...]:
    m = h.machine
    return (m.height, m.round, m.step, m.locked, m.valid, m.decided)


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\x00", b"\x92\xa7prevote", b"\x91\x96\xa8proposal\x01\x00", bytes(range(256))],
)
def test_garbage_is_refused_by_the_decoder(garbage: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(garbage)


def test_truncated_and_extended_messages_are_refused(h: Harness) -> None:
    (vote,) = h.prevotes(0, None, "m1.test")
    raw = encode_message(vote)
    for bad in (raw[:-1], raw + b"\x00", raw.replace(b"prevote", b"prevotX")):
        with pytest.raises(DecodeError):
            decode_message(bad)


def test_bad_signature_is_refused_without_a_change(h: Harness) -> None:
    block = own(h.start(), Proposal).block
    before = state(h)
    (vote,) = h.prevotes(0, block.hash(), "m1.test")
    with pytest.raises(
        BadMessageSignature, match=re.escape("prevote 1/0 by m1.test: Ed25519 signature does not verify")
    ):
        h.feed(replace(vote, signature=bytes(64)))
    assert state(h) == before
    h.feed(vote, *h.prevotes(0, block.hash(), "m2.test"))  # the genuine vote still counts afterwards
    assert h.machine.step.name == "PRECOMMIT"


def test_signer_outside_the_validator_set_is_refused(h: Harness) -> None:
    h.start()
    outsider = sign_prevote(make_member("zz.test").node, h.origin, 1, 0, None)
    with pytest.raises(UnknownSigner, match=re.escape("'zz.test' is not a validator")):
        h.feed(outsider)
    impostor = replace(outsider, validator="m1.test")
    with pytest.raises(BadMessageSignature):
        h.feed(impostor)


def test_proposal_from_the_wrong_proposer_is_refused(h: Harness) -> None:
    h.start()
    with pytest.raises(NotProposer, match=re.escape("from m2.test, the proposer is m0.test")):
        h.feed(h.proposal(0, h.block(0, proposer="m2.test"), proposer="m2.test"))


def test_heights_other_than_this_and_the_next_are_out_of_window(h: Harness) -> None:
    h.start()
    ahead = sign_prevote(h.network["m1.test"].node, h.origin, 3, 0, None)
    with pytest.raises(MessageOutOfWindow) as raised:
        h.feed(ahead)
    assert (raised.value.height, raised.value.stale) == (3, False)


def test_finished_height_is_stale(tmp_path: Path) -> None:
    h = Harness(tmp_path, n=1)
    (decide,) = decisions(h.start())
    (late,) = h.precommits(0, decide.certified.block, "m0.test")
    with pytest.raises(MessageOutOfWindow) as raised:
        h.machine.handle(late, h.now)
    assert raised.value.stale


def test_far_rounds_keep_one_vote_per_validator_and_still_skip(h: Harness) -> None:
    h.start()
    far = ROUND_WINDOW + 50
    with pytest.raises(MessageOutOfWindow):
        h.feed(h.proposal(far, h.block(0, proposer=h.machine.proposer(far)), proposer=h.machine.proposer(far)))
    for r in range(far, far + 40):
        h.feed(*h.prevotes(r, None, "m1.test"))
    kept = h.machine._log  # the log of the height: m1 occupies a single far slot
    assert len(kept.ahead) == 1 and next(iter(kept.ahead.values())).round == far + 39
    assert h.machine.round == 0
    h.feed(*h.precommits(far + 10, None, "m2.test"))
    assert h.machine.round == far + 10


def test_a_vote_naming_a_round_beyond_the_horizon_is_out_of_window_and_costs_no_elections(h: Harness) -> None:
    h.start()
    absurd = 1 << 40  # entering it would take about 10^12 proposer elections
    votes = [*h.prevotes(absurd, None, "m1.test"), *h.precommits(absurd, None, "m2.test")]
    for vote in votes:
        with pytest.raises(MessageOutOfWindow) as raised:
            h.feed(vote)
        assert (raised.value.height, raised.value.stale) == (1, False)
    assert h.machine.round == 0
    reachable = MAX_ROUNDS_AHEAD
    h.feed(*h.prevotes(reachable, None, "m1.test"), *h.precommits(reachable, None, "m2.test"))
    assert h.machine.round == reachable


def test_next_height_votes_are_kept_for_when_it_starts(tmp_path: Path) -> None:
    h = Harness(tmp_path, n=4)
    block = own(h.start(), Proposal).block
    early = [sign_prevote(h.network[w].node, h.origin, 2, 0, None) for w in h.others]
    h.feed(*early)
    with pytest.raises(MessageOutOfWindow):
        h.feed(sign_prevote(h.network["m1.test"].node, h.origin, 2, ROUND_WINDOW, None))
    h.feed(*h.prevotes(0, block.hash(), *h.others))
    (decide,) = decisions(h.feed(*h.precommits(0, block, "m1.test", "m2.test")))
    h.app.commit(decide.certified)
    actions = h.start()
    assert h.machine.height == 2
    assert (TimeoutKind.PROPOSE, 0, 3_000) in timeouts(actions)  # m1 proposes at height 2
    nil = own(h.expire(TimeoutKind.PROPOSE), Precommit)  # the three kept prevotes and its own: a nil polka
    assert (nil.height, nil.block) == (2, None)


def test_each_signature_is_verified_once(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Message] = []

    def counting(vote: Message, validators: ValidatorSet, origin: str) -> Validator:
        calls.append(vote)
        return verify_vote(vote, validators, origin)

    monkeypatch.setattr(consensus_machine, "verify_vote", counting)
    h.start()
    (vote,) = h.prevotes(0, None, "m1.test")
    h.feed(vote, vote, vote)
    assert calls == [vote]


def test_certified_block_from_a_peer_decides_and_a_forged_one_is_refused(h: Harness) -> None:
    h.start()
    block = h.block(0, salt=5)
    thin = CertifiedBlock(block, certify(h.network, block, ["m1.test", "m2.test"]))
    before = state(h)
    with pytest.raises(BadCertificate, match="signers hold 2 of 4 voting power"):
        h.machine.commit_certified(thin, h.now)
    bad = CertifiedBlock(tampered(block), certify(h.network, tampered(block), h.others))
    with pytest.raises(BadCertificate, match="breaks the ledger rules"):
        h.machine.commit_certified(bad, h.now)
    assert state(h) == before
    good = CertifiedBlock(block, certify(h.network, block, h.others))
    (decide,) = decisions(h.machine.commit_certified(good, h.now))
    assert decide.certified == good and h.machine.decided
