"""Run simulation seeds from the command line: ``python -m tests.sim --seed 17`` replays seed 17 exactly."""

from __future__ import annotations

import argparse
import sys
import time

from tests.sim.scenario import MIXES, SIZES, run_seed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim", description=__doc__)
    parser.add_argument("--seed", type=int, required=True, help="first seed to run")
    parser.add_argument("--count", type=int, default=1, help="how many consecutive seeds")
    parser.add_argument("--mix", choices=MIXES, help="fault mix (default: derived from the seed)")
    parser.add_argument("--validators", type=int, choices=SIZES, help="validator count (default: from the seed)")
    args = parser.parse_args(argv)
    failed = 0
    for seed in range(args.seed, args.seed + args.count):
        started = time.process_time()
        result = run_seed(seed, args.mix, args.validators)
        cpu = time.process_time() - started
        status = "ok" if result.ok else "VIOLATION"
        print(
            f"{status} {result.scenario.describe()} height={result.height} faults={result.faults} "
            f"rounds<= {result.stats.max_round} evidence={sorted(result.evidence_against)} cpu={cpu:.2f}s "
            f"virtual={result.virtual_ms}ms recovery={result.recovery_ms}ms"
        )
        for violation in result.violations:
            print(f"  {violation}")
        failed += not result.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
