"""Run benchmarks: ``python -m bench`` runs every registered one, ``python -m bench NAME [options]`` runs one.

Each registered module has ``main(argv: Sequence[str] | None) -> int`` that parses its own options and prints
its own table.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: Benchmark name -> module; register a new benchmark by adding one line.
BENCHES = {
    "log": "bench.log",
    "state": "bench.state",
    "consensus": "bench.consensus",
    "sim_seeds": "bench.sim_seeds",
    "store": "bench.store",
    "verify": "bench.verify",
    "audit": "bench.audit",
    "node": "bench.node",
    "cli": "bench.cli",
    "digest": "bench.digest",
    "vc": "bench.vc",
    "tiles": "bench.tiles",
    "vcapi": "bench.vcapi",
    "witness": "bench.witness",
    "stacking": "bench.stacking",
    "page_vc": "bench.page_vc",
    "statelayout": "bench.statelayout",
    "batch": "bench.batch",
    "safety": "bench.safety",
    "codec": "bench.codec",
    "validator": "bench.validator",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to one benchmark (passing it the remaining arguments) or run them all with their defaults."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(BENCHES))
        return 0
    if args:
        name, rest = args[0], args[1:]
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; choose one of: {', '.join(BENCHES)}", file=sys.stderr)
            return 2
        return int(importlib.import_module(BENCHES[name]).main(rest))
    status = 0
    for name, module in BENCHES.items():
        print(f"== {name} ==", flush=True)
        status = max(status, int(importlib.import_module(module).main([])))
        print()
    return status


if __name__ == "__main__":
    sys.exit(main())
