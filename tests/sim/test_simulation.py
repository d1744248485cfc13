"""Deterministic simulation of N consensus machines: 300 seeds across the fault mixes, plus the seeds that
once found bugs. A failure prints the one-line command that replays the seed."""

from __future__ import annotations

import pytest

from tests.sim.scenario import MIXES, Result, Scenario, run, run_seed

#: CI's seeds: 50 per fault mix, validator counts cycling through 4, 7 and 10 (`Scenario.from_seed`).
CI_SEEDS = range(300)


def check(result: Result) -> None:
    scenario = result.scenario
    assert result.ok, f"{scenario.describe()}: {'; '.join(result.violations)}\n  reproduce with: {scenario.command()}"
    assert result.heights_after_heal >= scenario.heights_after_heal


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_seed_keeps_every_invariant(seed: int) -> None:
    check(run_seed(seed))


def test_ci_seeds_cover_every_mix_size_and_byzantine_behaviour() -> None:
    scenarios = [Scenario.from_seed(seed) for seed in CI_SEEDS]
    assert {s.mix for s in scenarios} == set(MIXES)
    assert {len(s.powers) for s in scenarios} == {4, 7, 10}
    assert any(len(set(s.powers)) > 1 for s in scenarios) and any(len(set(s.powers)) == 1 for s in scenarios)
    behaviours = {b for s in scenarios for _, bs in s.byzantine for b in bs}
    assert {b.value for b in behaviours} == {"silent", "equivocate", "garbage", "replay"}
    for s in scenarios:
        byzantine_power = sum(s.powers[i] for i, _ in s.byzantine)
        assert 3 * byzantine_power < sum(s.powers)


def test_a_seed_replays_exactly() -> None:
    first, second = run_seed(23), run_seed(23)
    assert first.stats == second.stats and first.height == second.height and first.faults == second.faults
    assert first.virtual_ms == second.virtual_ms


# Regression seeds: each once broke an invariant; the test names say what the bug was.


def test_restarted_validator_resends_votes_it_lost_in_the_crash() -> None:
    """Seed 5: a validator crashed after prevoting; its prevote was lost on the wire and only its last statement
    was on disk, so the others waited one prevote short of a quorum forever. The safety record now keeps every
    vote of the height and the machine re-sends them."""
    check(run(Scenario.from_seed(5)))


@pytest.mark.parametrize("seed", [10, 22, 23, 28, 35])
def test_equivocator_cannot_hide_a_polka(seed: int) -> None:
    """Seeds 10, 22, 23, 28, 35: an equivocating validator's first vote reached some nodes and its conflicting
    vote completed a polka elsewhere; counting only first votes hid the polka for ever, so a locked validator's
    re-proposal never got prevotes. Conflicting votes now count for blocks a node holds, and a re-proposal
    carries its proof of lock."""
    check(run(Scenario.from_seed(seed)))


def test_crash_planned_mid_actions_does_not_outlive_the_heal() -> None:
    """Seed 197 (a simulator bug): a crash planned part-way through a batch of actions struck after the heal,
    leaving an honest node down while liveness was being checked."""
    check(run(Scenario.from_seed(197)))
