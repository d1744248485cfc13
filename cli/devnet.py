"""`credledger devnet`: a local network of member institutions on 127.0.0.1, one process each.

The first run creates, under `--dir`, a directory per institution (node key, issuer key, node.toml, data), a shared
genesis with timeouts suited to loopback (sub-second blocks), and an example credential. Later runs reuse them,
so the chain survives restarts; `--fresh` starts over. The command prints each node's URL and a ready-to-run
`credledger issue` command, keeps the nodes running until Ctrl-C, then stops them cleanly.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from credledger.cli.common import EXIT_OK, EXIT_UNREACHABLE, UsageError, write_private
from credledger.ledger.errors import ConfigError
from credledger.ledger.events import MemberAdd
from credledger.ledger.genesis import Genesis, Params, write_genesis
from credledger.ledger.keys import SigningKey
from credledger.node.server import lock_data_dir

DEFAULT_DIR = Path("devnet")
#: The first node's API port; the others follow. docker-compose.yml publishes its network on 8801.. instead.
DEFAULT_BASE_PORT = 8701
INSTITUTIONS = (
    ("northern-uni.example", "Northern University"),
    ("city-tech.example", "City Technical College"),
    ("open-skills.example", "Open Skills Academy"),
    ("engineers-institute.example", "Institute of Professional Engineers"),
)
ORIGIN = "credledger.example/devnet"
#: Loopback timeouts: a block within a few hundred milliseconds of an event, an empty block every 2 s.
DEVNET_PARAMS = Params(
    timeout_propose_ms=1_000,
    timeout_propose_delta_ms=250,
    timeout_prevote_ms=500,
    timeout_prevote_delta_ms=250,
    timeout_precommit_ms=500,
    timeout_precommit_delta_ms=250,
    heartbeat_ms=2_000,
)
READY_TIMEOUT_S = 60.0
#: The line `start_node` writes to node.log before each start of the node.
START_MARK = "--- credledger devnet started this node at"
STOP_TIMEOUT_S = 15.0

NODE_TOML = """\
# Devnet node of {name}: written by `credledger devnet`. Relative paths are relative to this file.
member_id = "{member_id}"
data_dir = "data"
genesis = "../genesis.json"
node_key = "node.key"
role = "validator"

[api]
host = "127.0.0.1"
port = {port}

[p2p]
peers = [{peers}]

[log]
level = "info"
format = "json"

[credentials]
issuer_key = "issuer.key"
"""

EXAMPLE_BADGE = {
    "@context": ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
    "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "issuer": {"id": "https://northern-uni.example/issuers/1", "type": ["Profile"], "name": "Northern University"},
    "validFrom": "2026-09-01T00:00:00Z",
    "name": "Data Analysis Fundamentals",
    "credentialSubject": {
        "type": ["AchievementSubject"],
        "achievement": {
            "id": "https://northern-uni.example/achievements/data-101",
            "type": ["Achievement"],
            "name": "Data Analysis Fundamentals",
            "criteria": {"narrative": "Completed 30 hours of guided study and a graded project."},
        },
    },
}


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    name: str
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "devnet",
        help="run a local network of validator institutions",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dir", type=Path, default=DEFAULT_DIR, help=f"where the network lives (default {DEFAULT_DIR})"
    )
    parser.add_argument("--validators", type=int, default=4, help="how many institutions (default 4, at least 1)")
    parser.add_argument(
        "--base-port",
        type=int,
        default=DEFAULT_BASE_PORT,
        help=f"API port of the first node, the others following it (default {DEFAULT_BASE_PORT})",
    )
    parser.add_argument("--fresh", action="store_true", help="delete the network's keys and data first")
    parser.set_defaults(func=run)


def members(directory: Path, count: int, base_port: int) -> list[Member]:
    out = []
    for i in range(count):
        member_id, name = INSTITUTIONS[i] if i < len(INSTITUTIONS) else (f"member-{i}.example", f"Member {i}")
        out.append(Member(member_id, name, directory / member_id, base_port + i))
    return out


def create(directory: Path, network: list[Member]) -> None:
    """Write keys, node configs, the genesis and an example credential."""
    adds = []
    for m in network:
        m.directory.mkdir(parents=True, exist_ok=True)
        node_key, issuer_key = SigningKey.generate(m.member_id), SigningKey.generate(m.member_id)
        write_private(m.directory / "node.key", node_key.skey() + "\n")
        write_private(m.directory / "issuer.key", issuer_key.skey() + "\n")
        peers = ", ".join(json.dumps(o.url) for o in network if o is not m)
        (m.directory / "node.toml").write_text(
            NODE_TOML.format(name=m.name, member_id=m.member_id, port=m.port, peers=peers)
        )
        adds.append(MemberAdd(m.member_id, m.name, 1, node_key.public.raw, (issuer_key.public.raw,)))
    genesis = Genesis.of(ORIGIN, int(time.time() * 1000), adds, DEVNET_PARAMS)
    write_genesis(genesis, directory / "genesis.json")
    (directory / "example-badge.json").write_text(json.dumps(EXAMPLE_BADGE, indent=2) + "\n")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:  # noqa: S310 - loopback URL we built
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.validators <= 64:
        raise UsageError("--validators must be between 1 and 64")
    directory: Path = args.dir
    if args.fresh and directory.exists():
        shutil.rmtree(directory)
    network = members(directory, args.validators, args.base_port)
    if not (directory / "genesis.json").exists():
        create(directory, network)
        print(f"created a network of {len(network)} institutions in {directory}/")
    elif any(not (m.directory / "node.toml").exists() for m in network):
        raise UsageError(f"{directory} holds another network; use --fresh or another --dir")

    check_free(network)

    stop = _StopFlag()
    signal.signal(signal.SIGINT, stop.set)
    signal.signal(signal.SIGTERM, stop.set)
    processes: list[tuple[Member, subprocess.Popen[bytes]]] = []
    try:
        processes = [(m, start_node(m)) for m in network]
        if not wait_ready(processes, stop):
            return EXIT_UNREACHABLE
        if not stop.stopping:
            _announce(directory, network)
        _supervise(processes, stop)
    finally:
        stop_all(processes)
    return EXIT_OK


def check_free(network: list[Member]) -> None:
    """Raise UsageError, saying why, if a node's data directory or port is taken -- by a devnet already running
    (a second `make run`), `docker compose`, or any other program -- before any node starts."""
    for m in network:
        try:
            lock_data_dir(m.directory / "data").close()  # the node takes the same lock; let go of it at once
        except ConfigError as exc:
            raise UsageError(
                f"{exc}: is a devnet already running from {m.directory.parent}? Stop it (Ctrl-C in its terminal) "
                "or use another --dir"
            ) from None
    for m in network:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the node binds: TIME_WAIT is no owner
            try:
                probe.bind(("127.0.0.1", m.port))
            except OSError as exc:
                reason = "is in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
                raise UsageError(
                    f"port {m.port} on 127.0.0.1 {reason} (by another devnet, `docker compose`, or another "
                    f"program): stop it, or choose other ports with --base-port"
                ) from None


class _StopFlag:
    """Set by Ctrl-C or SIGTERM."""

    def __init__(self) -> None:
        self.stopping = False

    def set(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True


def start_node(m: Member, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `m`'s node process (`credledger run`), its output appended to node.log in its directory.

    `env` adds `CREDLEDGER_*` overrides to this process's environment."""
    with (m.directory / "node.log").open("ab") as log_file:
        # Where this run's lines start: the log is kept across runs, and `last_words` reads only this run's.
        log_file.write(f"{START_MARK} {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode())
        log_file.flush()
        # Our own interpreter and module with a path we created: no untrusted input reaches the command line.
        return subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "credledger.cli.main", "run", "--config", str(m.directory / "node.toml")],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # Ctrl-C reaches this process, which stops the nodes in order
        )


def wait_ready(processes: list[tuple[Member, subprocess.Popen[bytes]]], stop: _StopFlag | None = None) -> bool:
    """Wait until every node answers `/readyz`; False (with the logs to look at) if one exits or time runs out."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = [m for m, _ in processes]
    while waiting and not (stop is not None and stop.stopping):
        if time.monotonic() > deadline or any(p.poll() is not None for _, p in processes):
            print("a node failed to start:", file=sys.stderr)
            for m, p in processes:
                state = "still starting" if p.poll() is None else f"exit code {p.returncode}"
                print(f"  {m.member_id} ({state}; log: {m.directory / 'node.log'})", file=sys.stderr)
                if p.poll() is not None:
                    print(f"    {last_words(m.directory / 'node.log')}", file=sys.stderr)
            return False
        # A node counts as ready only while its own process runs: another program may answer on its port.
        waiting = [m for m, p in processes if m in waiting and not (p.poll() is None and _ready(m.url))]
        time.sleep(0.2)
    return all(p.poll() is None for _, p in processes)


def last_words(log: Path) -> str:
    """Why a node stopped: the last `credledger:` error line of its latest run, else that run's last line."""
    try:
        text = log.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {log}: {exc.strerror})"
    latest = text.rsplit(START_MARK, 1)[-1].split("\n", 1)[-1] if START_MARK in text else text
    lines = [line.strip() for line in latest.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("credledger:")]
    return (errors or lines or ["(nothing logged)"])[-1]


def _supervise(processes: list[tuple[Member, subprocess.Popen[bytes]]], stop: _StopFlag) -> None:
    while not stop.stopping:
        for m, p in processes:
            if p.poll() is not None:
                print(f"{m.member_id} stopped (exit code {p.returncode}): {last_words(m.directory / 'node.log')}")
                print(f"  its log: {m.directory / 'node.log'}")
                stop.stopping = True
        time.sleep(0.5)


def _announce(directory: Path, network: list[Member]) -> None:
    first = network[0]
    command = command_name()
    print(f"\ncredledger devnet: {len(network)} validator institutions are running (chain {ORIGIN})\n")
    for m in network:
        print(f"  {m.name:<38} {m.url}   (logs: {m.directory / 'node.log'})")
    print(f"\n  verification page:  {first.url}/")
    print(f"  API document:       {first.url}/openapi.json")
    print("\nIssue the example credential, then check it:\n")
    print(
        f"  {command} issue {directory / 'example-badge.json'} --key {first.directory / 'issuer.key'} "
        f"--node {first.url} --wait"
    )
    print(f"  {command} status --node {network[-1].url}")
    print("\nPress Ctrl-C to stop the network.", flush=True)


def command_name() -> str:
    """How the person at the terminal runs credledger: its bare name if that finds this very program on PATH,
    else the path it was started by (`make run` starts .venv/bin/credledger, which is seldom on PATH)."""
    invoked = Path(sys.argv[0])
    if invoked.name != "credledger":
        return "credledger"  # started as `python -m cli.main`: the installed command is the one to suggest
    found = shutil.which("credledger")
    if found is not None and Path(found).resolve() == invoked.resolve():
        return "credledger"
    return str(invoked)


def stop_all(processes: list[tuple[Member, subprocess.Popen[bytes]]]) -> None:
    """SIGTERM every node, wait for them to finish (killing any that takes longer than STOP_TIMEOUT_S)."""
    for _, p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for _, p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    if processes:
        print("devnet stopped.")
