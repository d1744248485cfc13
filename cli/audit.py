"""`credledger audit`: replay the chain from genesis and check every certificate, signature, rule and root.

Exit codes: 0 clean; 1 a discrepancy (the first one is named, with its block); 2 usage error; 3 could not audit
(the node could not be reached, or the data directory could not be read).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from credledger.cli.common import EXIT_OK, EXIT_REFUSED, EXIT_UNREACHABLE, UsageError, error, print_json
from credledger.cli.progress import Progress
from credledger.ledger.errors import ConfigError, StorageError
from credledger.ledger.genesis import load_genesis
from credledger.ledger.storage.datadir import DataDir
from credledger.verifier.audit import Auditor, AuditResult, default_state_dir
from credledger.verifier.auditsource import BlockSource, NodeSource
from credledger.verifier.client import NodeProblem, NodeUnreachable


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "audit",
        help="replay the chain from genesis and check everything",
        description="Replay the chain from genesis: check every certificate, every event signature (on every core) "
        "and rule, recompute the log and state roots of every block and compare them with the certified headers. "
        "With --data-dir, also compare the node's stored log and state-map nodes with the replay.",
        epilog="Exit codes: 0 clean; 1 a discrepancy (named, with its block); 2 usage error; 3 could not audit.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--node", metavar="URL", help="audit the chain a node serves")
    source.add_argument("--data-dir", metavar="DIR", help="audit a node's own files (opened read-only)")
    parser.add_argument("--genesis", required=True, metavar="FILE", help="the network's genesis file: the trust root")
    parser.add_argument(
        "--state",
        metavar="DIR",
        help="where the replay and the last audited checkpoint are kept (default: the user's cache directory)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last audited checkpoint, after proving the log now extends it",
    )
    parser.add_argument("--to", type=int, metavar="HEIGHT", help="stop at this height (default: the source's height)")
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes checking signatures and comparing files (default: every core)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS", help="per request to the node")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        genesis = load_genesis(args.genesis)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.workers is not None and args.workers < 0:
        raise UsageError("--workers must be 0 (do all the work in this process) or more")
    state = Path(args.state) if args.state else default_state_dir(genesis)
    try:
        source: BlockSource = DataDir(args.data_dir) if args.data_dir else NodeSource(args.node, timeout=args.timeout)
    except ValueError as exc:
        raise UsageError(f"--node: {exc}") from None
    except StorageError as exc:
        error(f"cannot audit: {exc}")
        return EXIT_UNREACHABLE
    auditor = Auditor(
        source,
        genesis,
        state,
        workers=args.workers,
        progress=None if args.no_progress else lambda total: Progress(total, stream=sys.stderr),
    )
    try:
        result = auditor.run(resume=args.resume, to_height=args.to)
    except (NodeUnreachable, NodeProblem, StorageError) as exc:
        error(f"cannot audit: {exc}")
        return EXIT_UNREACHABLE
    finally:
        source.close()
    if args.json:
        print_json(result.to_json())
    else:
        print(render(result, genesis.origin))
    return EXIT_OK if result.clean else EXIT_REFUSED


def render(result: AuditResult, origin: str) -> str:
    """The summary for a person at a terminal."""
    kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(result.event_kinds.items()))
    credentials = ", ".join(f"{count:,} {status}" for status, count in result.credentials.items())
    start = f"resumed after height {result.from_height}" if result.resumed else "from genesis"
    lines = [
        f"audit of {result.source} (network {origin}, genesis {result.genesis[:16]})",
        f"  blocks       {result.height - result.from_height:,} replayed, heights {result.from_height + 1} to "
        f"{result.height} ({start})",
        f"  events       {result.events:,}" + (f" ({kinds})" if kinds else ""),
        f"  log          size {result.log_size:,}, root {result.to_json()['log']['root']}",
        f"  members      {result.members} active, {result.validators} validators",
        f"  credentials  {credentials}"
        + (f" (events of heights {result.counted_from + 1} on)" if result.counted_from else ""),
        f"  rate         {result.events_per_second:,.0f} events/s over {result.elapsed:.1f} s",
    ]
    if result.discrepancy is None:
        lines.append("CLEAN: every certificate, signature, rule, log root and state root matches")
    else:
        lines.append(f"DISCREPANCY at {result.discrepancy}")
    return "\n".join(lines)
