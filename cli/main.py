"""Entry point of the `credledger` command: builds the parser and maps errors to exit codes (0 ok, 1 refused by
the ledger, 2 usage, 3 node unreachable; see `cli.exits`).

Start-up time: a command module imports what its command needs (the node server, LMDB, aiohttp, the verifier),
which takes most of a second in all. So the parser is built from `COMMANDS` -- names and one-line help, standard
library only -- and only the module of the command being run is imported, to add its options and run it.
`credledger --version` and `credledger --help` import no command module at all.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from credledger.cli.exits import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    UsageError,
    error,
)

if TYPE_CHECKING:
    from credledger.verifier.client import NodeProblem

#: Every command: the module that defines its options (`register(subparsers)`, setting `func` to the function
#: that runs it) and its line in `credledger --help` (the same as the module's own, which a test checks).
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("credledger.cli.init", "create a node's keys, node.toml and member.json"),
    "genesis": ("credledger.cli.genesis", "build a genesis file from member files"),
    "run": ("credledger.cli.run", "run a node"),
    "devnet": ("credledger.cli.devnet", "run a local network of validator institutions"),
    "issue": ("credledger.cli.credentials", "record a credential as issued by the member whose issuer key signs"),
    "revoke": ("credledger.cli.credentials", "revoke a credential for good"),
    "suspend": ("credledger.cli.credentials", "put a credential on hold"),
    "reinstate": ("credledger.cli.credentials", "lift a credential's suspension"),
    "member": ("credledger.cli.members", "change a member by governance: its DID, name or voting power"),
    "achievement": ("credledger.cli.catalogue", "publish an achievement definition to the catalogue, or retire one"),
    "recognition": (
        "credledger.cli.catalogue",
        "recognise another member's achievements in your award rules, or withdraw a recognition",
    ),
    "status": ("credledger.cli.status", "show a node's chain, checkpoint and mempool, and whether the network commits"),
    "verify": ("credledger.cli.verify", "verify a credential offline against the genesis file"),
    "proof": ("credledger.cli.proof", "save a credential's proof bundle to keep beside it"),
    "record": ("credledger.cli.learner", "save a learner's record: many credentials' proofs under one checkpoint"),
    "pathway": (
        "credledger.cli.learner",
        "which published awards a learner's credentials complete, and what is missing",
    ),
    "audit": ("credledger.cli.audit", "replay the chain from genesis and check everything"),
    "monitor": ("credledger.cli.monitor", "follow nodes' checkpoints and catch split views"),
    "tiles": ("credledger.cli.tiles", "write the log as C2SP static tiles any web server can serve"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser: `command`'s module adds its full options (every module does if `command` is None) and every
    other command gets its line in `credledger --help` only."""
    modules = {m for m, _ in COMMANDS.values()} if command is None else {COMMANDS.get(command, ("", ""))[0]}
    parser = argparse.ArgumentParser(
        prog="credledger",
        description="A permissioned, append-only ledger for credentials with offline-verifiable proofs.",
        epilog="Exit codes: 0 success; 1 refused by the ledger; 2 usage error; 3 node unreachable. "
        "Run `credledger COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action=_Version, help="show the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        if module not in modules:
            commands.add_parser(name, help=summary, add_help=False)
        elif name not in commands.choices:  # one module may add several commands (issue, revoke, ...)
            importlib.import_module(module).register(commands)
    return parser


class _Version(argparse.Action):
    """`--version`, reading the installed version only when asked (importlib.metadata is slow to import)."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from importlib.metadata import version  # noqa: PLC0415

        parser.exit(message=f"credledger {version('credledger')}\n")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _main(arguments)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader closed the pipe (`credledger verify ... | head`): the rest of the output has nobody to read
        # it. Point stdout at /dev/null so that the interpreter's own flush at exit does not fail once more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        # Ctrl-C while starting (importing takes most of a second) or in a command that does not stop on it by
        # design (`tiles export --follow`, `monitor` and the node do): one line, not a traceback.
        error("interrupted")
        return EXIT_INTERRUPTED
    return code


def _main(arguments: list[str]) -> int:
    # The top-level parser has no option that takes a value, so the first word that is not an option is the command.
    command = next((word for word in arguments if not word.startswith("-")), "")
    parser = build_parser(command)
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has already explained
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    # Imported here, once the command's own module (which needs them anyway) has been: see the module docstring.
    from credledger.ledger.errors import CredledgerError  # noqa: PLC0415
    from credledger.verifier.client import NodeProblem, NodeUnreachable  # noqa: PLC0415

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
    from credledger.cli.common import print_json  # noqa: PLC0415

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
