"""Many simulation seeds: how many ran, faults injected, heights committed, and invariant violations (must be 0).

Seeds run in worker processes (one per core by default); each is the same deterministic run as
``python -m tests.sim --seed N``, whose command is printed for every seed that breaks an invariant. Run
``python -m bench.sim_seeds --seeds 10000``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from tests.sim.scenario import run_seed


@dataclass(frozen=True)
class Outcome:
    seed: int
    mix: str
    validators: int
    faults: int
    heights: int
    evidence: int
    recovery_ms: int
    violations: tuple[str, ...]
    command: str


def one(seed: int) -> Outcome:
    result = run_seed(seed)
    scenario = result.scenario
    return Outcome(
        seed=seed,
        mix=scenario.mix,
        validators=len(scenario.powers),
        faults=result.faults,
        heights=result.height,
        evidence=result.stats.evidence,
        recovery_ms=result.recovery_ms,
        violations=tuple(result.violations),
        command=scenario.command(),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sim_seeds", description=__doc__)
    parser.add_argument("--seeds", type=int, default=10_000, help="how many seeds")
    parser.add_argument("--first", type=int, default=0, help="first seed")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for outcome in pool.map(one, range(args.first, args.first + args.seeds), chunksize=16):
            outcomes.append(outcome)
            for violation in outcome.violations:
                print(f"VIOLATION seed {outcome.seed}: {violation}\n  reproduce with: {outcome.command}", flush=True)
            if len(outcomes) % 1000 == 0:
                print(f"... {len(outcomes)} seeds", flush=True)
    elapsed = time.perf_counter() - started
    by_mix = Counter(o.mix for o in outcomes)
    by_size = Counter(o.validators for o in outcomes)
    violations = sum(len(o.violations) for o in outcomes)
    print(f"seeds run:          {len(outcomes)} in {elapsed:.0f} s ({args.workers} workers)")
    print(f"  by fault mix:     {dict(sorted(by_mix.items()))}")
    print(f"  by validators:    {dict(sorted(by_size.items()))}")
    print(f"faults injected:    {sum(o.faults for o in outcomes)}")
    print(f"heights committed:  {sum(o.heights for o in outcomes)} (lowest honest node per seed, summed)")
    print(f"evidence recorded:  {sum(o.evidence for o in outcomes)}")
    recoveries = sorted(o.recovery_ms for o in outcomes)
    if recoveries:
        p99 = recoveries[min(len(recoveries) - 1, len(recoveries) * 99 // 100)]
        print(f"after the heal:     every honest node 2 heights on within {recoveries[-1]} ms virtual (p99 {p99} ms)")
    print(f"violations:         {violations}")
    return 1 if violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
