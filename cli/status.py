"""`credledger status`: where a node and its chain stand."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from credledger.cli.common import EXIT_OK, UsageError, add_node_argument, print_json
from credledger.verifier.client import DEFAULT_TIMEOUT, NodeClient


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status",
        help="show a node's chain, checkpoint and mempool, and whether the network commits",
        description="Ask a node who it is, how far its chain has come, what it is doing, and -- when the network "
        "does not commit or the node cannot catch up -- why.",
        epilog="Exit codes: 0 the node answered; 3 it could not be reached.",
    )
    add_node_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        client = NodeClient(args.node, timeout=args.timeout or DEFAULT_TIMEOUT)
    except ValueError as exc:
        raise UsageError(f"--node: {exc}") from None
    status = client.status()
    if args.json:
        print_json(status)
        return EXIT_OK
    for label, value in _lines(client.base_url, status):
        print(f"{label:<11} {value}")
    return EXIT_OK


def _lines(url: str, status: dict[str, Any]) -> list[tuple[str, str]]:
    log = status.get("log", {})
    mempool = status.get("mempool", {})
    lines = [
        ("node", f"{url} (credledger {status.get('version')})"),
        ("origin", str(status.get("origin"))),
        ("genesis", str(status.get("genesis"))),
        ("member", f"{status.get('member')} ({status.get('role')})"),
        ("height", str(status.get("height"))),
        ("log", f"{log.get('size')} events, root {log.get('root')}"),
    ]
    checkpoint = status.get("checkpoint")
    if checkpoint:
        when = datetime.fromtimestamp(checkpoint["time_ms"] / 1000, tz=UTC).isoformat(timespec="seconds")
        signers = ", ".join(checkpoint.get("signers", []))
        lines.append(("checkpoint", f"height {checkpoint['height']} at {when}, signed by {signers}"))
    else:
        lines.append(("checkpoint", "none yet (no block committed)"))
    lines.append(("mempool", f"{mempool.get('events')} events ({mempool.get('bytes')} bytes)"))
    live = [f"{name} {status[name]}" for name in ("round", "peers") if status.get(name) is not None]
    if status.get("syncing"):
        live.append("catching up")
    if live:
        lines.append(("consensus", ", ".join(live)))
    commit = status.get("commit")
    if isinstance(commit, dict):
        lines.append(("commits", "yes" if commit.get("ok") else f"NO: {commit.get('reason')}"))
    sync = status.get("sync")
    if isinstance(sync, dict) and sync.get("failure"):
        lines.append(("catch-up", f"FAILING: {sync['failure']}"))
    return lines
