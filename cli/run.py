"""`credledger run`: run one node in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.common import EXIT_OK
from node.config import load_config
from node.server import run as run_node


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "run",
        help="run a node",
        description=(
            "Run a credledger node from its configuration file (see `credledger init`). Every setting can be "
            "overridden by CREDLEDGER_* environment variables, e.g. CREDLEDGER_API_PORT=8800. Logs go to stderr, "
            "as JSON when stderr is not a terminal."
        ),
    )
    parser.add_argument("--config", type=Path, help="the node's TOML file (default: only environment variables)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_node(load_config(args.config))
    return EXIT_OK
