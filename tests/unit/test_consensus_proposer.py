"""Weighted round-robin proposer selection (CometBFT's proposer-selection spec)."""

from __future__ import annotations

from collections import Counter

from credledger.consensus.proposer import ProposerSchedule, Rotation
from credledger.ledger import codec
from credledger.ledger.validators import Validator, ValidatorSet


def vset(**powers: int) -> ValidatorSet:
    return ValidatorSet.of(
        [Validator(name, power, bytes([i + 1]) * 32) for i, (name, power) in enumerate(powers.items())]
    )


def names(schedule: ProposerSchedule, rounds: int) -> list[str]:
    return [v.member_id for v in schedule.proposers(rounds)]


def test_equal_power_rotates_round_robin_by_member_id() -> None:
    schedule = ProposerSchedule.genesis(vset(a=1, b=1, c=1, d=1))
    assert names(schedule, 8) == ["a", "b", "c", "d"] * 2


def test_the_specs_example_sequence_for_powers_one_and_three() -> None:
    schedule = ProposerSchedule.genesis(vset(p1=1, p2=3))
    assert names(schedule, 8) == ["p2", "p1", "p2", "p2"] * 2


def test_each_validator_proposes_in_proportion_to_its_power() -> None:
    powers = {"a": 1, "b": 2, "c": 3, "d": 7}
    schedule = ProposerSchedule.genesis(vset(**powers))
    counts = Counter(names(schedule, 13 * 10))
    assert counts == {name: power * 10 for name, power in powers.items()}


def test_each_height_moves_one_election_on_whatever_the_round() -> None:
    validators = vset(a=1, b=1, c=1)
    schedule = ProposerSchedule.genesis(validators)
    heights = [schedule]
    for _ in range(4):
        heights.append(heights[-1].next_height(validators))
    assert [s.proposer(0).member_id for s in heights] == ["a", "b", "c", "a", "b"]
    assert heights[2].proposer(1).member_id == "a" and heights[4].height == 5


def test_a_joining_validator_starts_behind_and_a_leaving_one_is_dropped() -> None:
    schedule = ProposerSchedule.genesis(vset(a=1, b=1, c=1))
    joined = schedule.next_height(vset(a=1, b=1, c=1, d=1))
    assert joined.priorities[-1] == -(4 + (4 >> 3))
    assert "d" not in names(joined, 3)
    left = joined.next_height(vset(a=1, c=1, d=1))
    assert [v.member_id for v in left.validators.validators] == ["a", "c", "d"]
    assert len(left.priorities) == 3


def test_priorities_stay_within_twice_the_total_power_after_changes() -> None:
    schedule = ProposerSchedule.genesis(vset(a=80_000))
    schedule = schedule.next_height(vset(a=80_000, b=10)).next_height(vset(a=80_000, b=10, c=10))
    schedule = schedule.next_height(vset(b=10, c=10))
    after = schedule.next_height(vset(b=10, c=10))
    assert max(after.priorities) - min(after.priorities) <= 2 * 20
    counts = Counter(names(after, 40))
    assert abs(counts["b"] - counts["c"]) <= 2  # without scaling, b would lead c for thousands of elections


def test_rotation_agrees_with_the_schedule_and_the_schedule_round_trips() -> None:
    schedule = ProposerSchedule.genesis(vset(a=3, b=1, c=2)).next_height(vset(a=3, b=1, c=2))
    rotation = Rotation(schedule)
    assert [rotation.proposer(r) for r in range(12)] == names(schedule, 12)
    assert codec.decode(ProposerSchedule, codec.encode(schedule)) == schedule
