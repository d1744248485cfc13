"""`credledger run`: run one node in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from credledger.cli.common import EXIT_OK, UsageError
from credledger.node.config import load_config
from credledger.node.server import run as run_node


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
    config = load_config(args.config)
    if not config.genesis.is_file():
        overridden = args.config is None or "CREDLEDGER_GENESIS" in os.environ
        where = "CREDLEDGER_GENESIS" if overridden else f"{args.config}'s `genesis` setting"
        raise UsageError(
            f"no genesis file at {config.genesis} (named by {where}): put the network's genesis.json there "
            "(the file `credledger genesis` wrote, the same for every member)"
        )
    run_node(config)
    return EXIT_OK
