"""Entry point of the `credledger` command: builds the parser from the command modules and maps errors to exit
codes (0 ok, 1 refused by the ledger, 2 usage, 3 node unreachable; see `cli.common`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version

from cli import audit, credentials, devnet, genesis, init, monitor, proof, run, status, verify
from cli.common import EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_USAGE, UsageError, error, print_json
from ledger.errors import CredledgerError
from node.client import NodeProblem, NodeUnreachable

#: Each module adds its subcommands with `register(subparsers)` and sets `func` to the function that runs them.
COMMANDS = (init, genesis, run, devnet, credentials, status, verify, proof, audit, monitor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="credledger",
        description="A permissioned, append-only ledger for credentials with offline-verifiable proofs.",
        epilog="Exit codes: 0 success; 1 refused by the ledger; 2 usage error; 3 node unreachable. "
        "Run `credledger COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"credledger {version('credledger')}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has already explained
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = args.func(args)
    except UsageError as exc:
        error(str(exc))
        return EXIT_USAGE
    except NodeProblem as exc:
        return _node_problem(exc, getattr(args, "json", False))
    except NodeUnreachable as exc:
        error(f"cannot reach the node: {exc}")
        return EXIT_UNREACHABLE
    except CredledgerError as exc:
        error(str(exc))
        return EXIT_USAGE
    return code


def _node_problem(exc: NodeProblem, as_json: bool) -> int:
    if as_json:
        print_json(exc.body)
    if exc.status >= 500:
        # The node is there but could not do it now: full mempool, or not committed within its wait.
        pending = exc.body.get("pending")
        suffix = f" (still pending: {', '.join(pending)})" if isinstance(pending, list) and pending else ""
        error(f"the node could not complete the request ({exc.status} {exc.code}): {exc.detail}{suffix}")
        return EXIT_UNREACHABLE
    rule = f", rule {exc.rule}" if exc.rule else ""
    error(f"refused by the node ({exc.status} {exc.code}{rule}): {exc.detail}")
    return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
