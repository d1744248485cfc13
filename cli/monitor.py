"""`credledger monitor`: follow several nodes' checkpoints and report a split view with both notes as evidence.

Exit codes: 0 no split view seen; 1 split view found (the evidence is printed, and written with --evidence);
2 usage error.
"""

from __future__ import annotations

import argparse
import sys

from credledger.cli.common import EXIT_OK, EXIT_REFUSED, UsageError, print_json
from credledger.cli.witnesses import add_witness_arguments, witness_policy
from credledger.ledger.errors import ConfigError
from credledger.ledger.genesis import load_genesis
from credledger.verifier.client import DEFAULT_TIMEOUT
from credledger.verifier.monitor import Fault, Monitor, Seen, SplitView


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "monitor",
        help="follow nodes' checkpoints and catch split views",
        description="Poll each node's latest checkpoint, verify its certificate against the validator set, and "
        "check with consistency proofs that every node's log extends its own previous checkpoints and the other "
        "nodes'. Two certified checkpoints that cannot both be true are reported with both notes as evidence.",
        epilog="Exit codes: 0 no split view seen; 1 split view found; 2 usage error.",
    )
    parser.add_argument("--node", action="append", required=True, metavar="URL", help="a node to follow (repeat)")
    parser.add_argument(
        "--witness-url",
        action="append",
        default=[],
        metavar="URL",
        help="a witness node whose cosigned checkpoint of this log is one more view to hold against the nodes' "
        "(GET /witnessed-checkpoint; repeat)",
    )
    parser.add_argument("--genesis", required=True, metavar="FILE", help="the network's genesis file: the trust root")
    parser.add_argument("--interval", type=float, default=5.0, metavar="SECONDS", help="time between rounds")
    parser.add_argument("--rounds", type=int, metavar="N", help="stop after N rounds")
    parser.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    parser.add_argument("--evidence", metavar="FILE", help="write split-view evidence here (JSON, both notes)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="per request")
    parser.add_argument("--quiet", action="store_true", help="print only split views and the summary")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_witness_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        genesis = load_genesis(args.genesis)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.interval <= 0 or (args.rounds is not None and args.rounds < 1):
        raise UsageError("--interval must be positive and --rounds at least 1")

    def report(item: SplitView | Fault | Seen) -> None:
        if isinstance(item, SplitView):
            print(f"SPLIT VIEW: {item.detail}", file=sys.stderr)
            for seen in (item.first, item.second):
                print(f"--- note served by {seen.node} ---\n{seen.note}", file=sys.stderr)
        elif not args.quiet and isinstance(item, Fault):
            print(f"{item.node}: {item.kind}: {item.detail}", file=sys.stderr)

    try:
        monitor = Monitor(
            args.node,
            genesis,
            timeout=args.timeout,
            evidence=args.evidence,
            report=report,
            witnesses=witness_policy(args),
            witness_sources=args.witness_url,
        )
    except ValueError as exc:
        raise UsageError(f"--node or --witness-url: {exc}") from None
    try:
        result = monitor.run(rounds=args.rounds, duration=args.duration, interval=args.interval)
    except KeyboardInterrupt:
        result = monitor.result
    summary = {
        "rounds": result.rounds,
        "split_views": [s.to_json(genesis) for s in result.split_views],
        "faults": [{"node": f.node, "kind": f.kind, "detail": f.detail} for f in result.faults],
        "latest": {
            node: {"height": s.checkpoint.height, "log_size": s.checkpoint.size} for node, s in result.latest.items()
        },
    }
    if args.json:
        print_json(summary)
    else:
        for node, seen in sorted(result.latest.items()):
            print(f"{node}: height {seen.checkpoint.height}, log size {seen.checkpoint.size}")
        verdict = f"{len(result.split_views)} SPLIT VIEW(S) FOUND" if result.split_views else "no split view seen"
        print(f"{result.rounds} rounds, {len(result.faults)} faults: {verdict}")
    return EXIT_REFUSED if result.split_views else EXIT_OK
