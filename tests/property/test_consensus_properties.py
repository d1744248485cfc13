"""Properties of proposer selection and consensus statements, for random validator sets."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from credledger.consensus.proposer import ProposerSchedule
from credledger.ledger import codec
from credledger.ledger.validators import Validator, ValidatorSet
from credledger.ledger.votes import Precommit, Prevote, decode_message, encode_message

powers = st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=8)


def validator_set(values: list[int]) -> ValidatorSet:
    return ValidatorSet.of([Validator(f"v{i}", p, bytes([i + 1]) * 32) for i, p in enumerate(values)])


@given(powers, st.integers(min_value=1, max_value=3))
@settings(max_examples=200, deadline=None)
def test_every_validator_proposes_exactly_its_power_in_each_cycle(values: list[int], cycles: int) -> None:
    schedule = ProposerSchedule.genesis(validator_set(values))
    counts = Counter(v.member_id for v in schedule.proposers(sum(values) * cycles))
    assert counts == {f"v{i}": p * cycles for i, p in enumerate(values)}


@given(powers, powers, st.integers(min_value=1, max_value=20))
@settings(max_examples=200, deadline=None)
def test_priorities_stay_bounded_across_set_changes(before: list[int], after: list[int], heights: int) -> None:
    schedule = ProposerSchedule.genesis(validator_set(before)).next_height(validator_set(after))  # carried over
    for _ in range(heights):
        schedule = schedule.next_height(schedule.validators)
    total = schedule.validators.total_power
    assert max(schedule.priorities) - min(schedule.priorities) <= 2 * total + max(after)
    assert codec.decode(ProposerSchedule, codec.encode(schedule)) == schedule


@given(
    st.integers(min_value=1, max_value=2**40),
    st.integers(min_value=0, max_value=2**31 - 1),
    st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
    st.binary(min_size=64, max_size=64),
)
def test_votes_round_trip_through_the_wire(height: int, round_: int, value: bytes | None, sig: bytes) -> None:
    for message in (Prevote(height, round_, value, "v1", sig), Precommit(height, round_, None, "v1", sig)):
        assert decode_message(encode_message(message)) == message
