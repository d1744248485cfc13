"""Command-line start-up benchmark: wall time of real `credledger` calls, each in a fresh process.

Measured in the same run, so the figures compare on any machine: `python -c pass` (the interpreter's own start,
the floor no command can beat), `credledger --version`, `credledger --help`, and `credledger verify` of a kept
bundle (a revoked credential of a 4-validator chain, checked offline: no network). Each command runs `--runs`
times, interleaved, after one warm-up run; the table gives medians and the time above the floor.

The commands run as in a user's shell, where Python caches compiled modules (__pycache__, ignored by git): if
this environment sets PYTHONDONTWRITEBYTECODE, it is left out of theirs, or every call would compile every module
from source again (about 0.1 s of a verify's time on the development machine).

Targets: --version and --help under 0.2 s, verify of a kept bundle under 0.4 s. Run ``python -m bench cli`` or
``python -m bench cli --runs 21``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.verify import _chain
from credledger.ledger.bundle import Bundle
from credledger.ledger.genesis import write_genesis

TARGETS_S = {"--version": 0.2, "--help": 0.2, "verify (kept bundle)": 0.4}


def credledger() -> list[str]:
    """The installed command beside this interpreter, as a user runs it; else the module."""
    script = Path(sys.executable).parent / "credledger"
    return [str(script)] if script.exists() else [sys.executable, "-m", "credledger.cli.main"]


def _wall(command: list[str], expected: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != expected:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr.decode(errors='replace')}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cli", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs of each command (default 11)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        genesis, bundle_json = _chain(Path(tmp) / "chain", events=1_000, block=500)
        genesis_file, bundle_file = Path(tmp) / "genesis.json", Path(tmp) / "receipt.json"
        write_genesis(genesis, genesis_file)
        bundle_file.write_text(bundle_json)
        digest = Bundle.from_json(bundle_json.encode()).digest.hex()
        verify = ["verify", digest, "--genesis", str(genesis_file), "--bundle", str(bundle_file)]
        commands: dict[str, tuple[list[str], int]] = {
            "python -c pass (floor)": ([sys.executable, "-c", "pass"], 0),
            "--version": ([*credledger(), "--version"], 0),
            "--help": ([*credledger(), "--help"], 0),
            "verify (kept bundle)": ([*credledger(), *verify], 1),  # revoked: exit 1
        }
        for command, expected in commands.values():  # warm-up: the module caches, the page cache
            _wall(command, expected)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so a busy moment on the machine hits every command alike
            for name, (command, expected) in commands.items():
                times[name].append(_wall(command, expected))
    floor = statistics.median(times["python -c pass (floor)"])
    print(f"credledger start-up: median wall time of {args.runs} runs each, fresh processes")
    print(f"| {'command':<24} | {'median s':>8} | {'above floor s':>13} | {'target s':>8} |")
    print(f"|{'-' * 26}|{'-' * 9}:|{'-' * 14}:|{'-' * 9}:|")
    missed = 0
    for name, samples in times.items():
        median = statistics.median(samples)
        target = TARGETS_S.get(name)
        missed += target is not None and median > target
        shown = f"{target:.1f}" if target is not None else ""
        print(f"| {name:<24} | {median:>8.3f} | {median - floor:>13.3f} | {shown:>8} |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
