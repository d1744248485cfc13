"""Real credledger networks for integration tests: node processes on 127.0.0.1, LMDB data directories under the
test's tmp_path, real keys and signatures.

A `Cluster` writes everything a network needs -- member keys, a genesis with loopback timeouts, one `node.toml`
per node -- and starts each node as `python -m cli.main run --config node.toml`, the way an operator would. It
starts, stops (SIGTERM), kills (SIGKILL) and restarts nodes, polls their public API with deadlines, and always
kills every process it started when it is closed, whatever happened in the test.

Keys are derived from member ids (`tests.factories.make_member`), so a failing run can be reproduced; the genesis
time is the real clock, since nodes refuse events timed far from their own clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from credledger.ledger.bundle import Bundle, Verdict, verify_bundle
from credledger.ledger.events import Event, Issue, Payload, UnsignedEvent, sign_event
from credledger.ledger.genesis import Genesis, Params, write_genesis
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import SignedNote
from credledger.verifier.client import NodeClient, NodeProblem, NodeUnreachable
from tests.conftest import PROJECT_ROOT
from tests.factories import TestMember, make_member

ORIGIN = "credledger.test/integration"
#: Loopback timeouts, shorter than the devnet's: a lost proposer costs half a second, an idle network makes a
#: block every second.
FAST_PARAMS = Params(
    timeout_propose_ms=600,
    timeout_propose_delta_ms=200,
    timeout_prevote_ms=300,
    timeout_prevote_delta_ms=200,
    timeout_precommit_ms=300,
    timeout_precommit_delta_ms=200,
    heartbeat_ms=1_000,
)
#: How long a node may take to start answering (a cold interpreter on a busy 2-core machine).
START_TIMEOUT_S = 30.0
#: How long a node gets to stop after SIGTERM before it is killed.
STOP_TIMEOUT_S = 10.0
#: Default deadline for waiting on heights.
WAIT_S = 30.0
#: Per-request timeout of the test's HTTP calls (a `?wait=commit` request has its own).
HTTP_TIMEOUT_S = 5.0

Role = Literal["validator", "replica"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def now_ms() -> int:
    return int(time.time() * 1000)


def poll(what: str, check: Callable[[], bool], timeout: float = WAIT_S, interval: float = 0.1) -> None:
    """Call `check` until it returns True; fail naming `what` once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Node:
    """One node of the cluster: its member, role, port and directory, and the process while it runs."""

    member: TestMember
    role: Role
    port: int
    directory: Path
    peers: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def id(self) -> str:
        return self.member.id

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config(self) -> Path:
        return self.directory / "node.toml"

    @property
    def log(self) -> Path:
        return self.directory / "node.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def client(self, timeout: float = HTTP_TIMEOUT_S) -> NodeClient:
        return NodeClient(self.url, timeout=timeout)


@dataclass
class Cluster:
    """A network of node processes sharing one genesis. Use `Cluster.create`, and `close()` when done."""

    root: Path
    genesis: Genesis
    members: dict[str, TestMember]
    nodes: list[Node] = field(default_factory=list)
    #: TOML tables appended to every node's config (e.g. a small `[store] max_readers`).
    extra_config: str = ""

    # --- building -----------------------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        validators: int = 4,
        extra: Sequence[TestMember] = (),
        params: Params = FAST_PARAMS,
        extra_config: str = "",
        origin: str = ORIGIN,
    ) -> Cluster:
        """A genesis of `validators` members (m0.test, m1.test, ...) with power 1, and one validator node each.

        `extra` members are not in genesis; `add_node` runs nodes for them (governance admits them later)."""
        founders = [make_member(f"m{i}.test") for i in range(validators)]
        genesis = Genesis.of(origin, now_ms(), [m.add_payload() for m in founders], params)
        root.mkdir(parents=True, exist_ok=True)
        write_genesis(genesis, root / "genesis.json")
        cluster = cls(root, genesis, {m.id: m for m in (*founders, *extra)}, extra_config=extra_config)
        for member in founders:
            cluster.add_node(member.id)
        return cluster

    def add_node(self, member_id: str, role: Role = "validator", *, name: str | None = None) -> Node:
        """Write the directory and config of another node (not started). Validators peer with every validator;
        earlier validators learn the new one's URL when they are next started."""
        member = self.members[member_id]
        directory = self.root / (name or member_id)
        directory.mkdir()
        for label, key in (("node.key", member.node), ("issuer.key", member.issuer)):
            path = directory / label
            path.write_text(key.skey() + "\n")
            path.chmod(0o600)
        node = Node(member, role, free_port(), directory)
        self.nodes.append(node)
        self._write_configs()
        return node

    def _write_configs(self) -> None:
        validator_urls = [n.url for n in self.nodes if n.role == "validator"]
        for node in self.nodes:
            node.peers = tuple(url for url in validator_urls if url != node.url)
            peers = ", ".join(json.dumps(url) for url in node.peers)
            node.config.write_text(
                f"""\
member_id = "{node.id}"
data_dir = "data"
genesis = "{self.root / "genesis.json"}"
node_key = "node.key"
role = "{node.role}"

[api]
host = "127.0.0.1"
port = {node.port}
commit_wait_ms = 15000

[p2p]
peers = [{peers}]
backoff_min_ms = 50
backoff_max_ms = 1000

[log]
level = "info"
format = "json"
{self.extra_config}"""
            )

    def __getitem__(self, member_id: str) -> Node:
        for node in self.nodes:
            if node.id == member_id:
                return node
        raise KeyError(member_id)

    @property
    def validators(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "validator"]

    def running(self) -> list[Node]:
        return [n for n in self.nodes if n.running]

    # --- processes ----------------------------------------------------------------------------------------------

    def start(self, *nodes: Node, wait: bool = True) -> None:
        """Start nodes (every node when none is named) and wait until each answers `/readyz`."""
        for node in nodes or tuple(self.nodes):
            if node.running:
                raise AssertionError(f"{node.id} is running already")
            with node.log.open("ab") as log:
                node.process = subprocess.Popen(
                    [sys.executable, "-m", "credledger.cli.main", "run", "--config", str(node.config)],
                    cwd=PROJECT_ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
        if wait:
            for node in nodes or tuple(self.nodes):
                self.wait_ready(node)

    def wait_ready(self, node: Node, timeout: float = START_TIMEOUT_S) -> None:
        def ready() -> bool:
            if not node.running:
                raise AssertionError(f"{node.id} exited with {self._exit(node)}:\n{self.tail(node)}")
            try:
                with urllib.request.urlopen(f"{node.url}/readyz", timeout=1) as response:
                    return bool(response.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        poll(f"{node.id} to answer /readyz", ready, timeout)

    def kill(self, *nodes: Node) -> None:
        """SIGKILL: the process dies at once, mid-write if it was writing."""
        for node in nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGKILL)
        for node in nodes:
            if node.process is not None:
                node.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self, *nodes: Node) -> None:
        """SIGTERM and wait for a clean exit (killed if it does not come)."""
        for node in nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in nodes:
            if node.process is None:
                continue
            try:
                node.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
                raise AssertionError(f"{node.id} did not stop within {STOP_TIMEOUT_S:g} s of SIGTERM") from None

    def close(self) -> None:
        """Kill every process still running (tests end here whether they passed or not)."""
        self.kill(*self.nodes)

    @staticmethod
    def _exit(node: Node) -> str:
        code = node.process.returncode if node.process is not None else None
        return "no process" if code is None else f"exit code {code}"

    def logged_errors(self) -> list[str]:
        """Every error-level line any node logged: a healthy network under test logs none."""
        found = []
        for node in self.nodes:
            if node.log.exists():
                found += [
                    f"{node.id}: {line}" for line in node.log.read_text().splitlines() if '"level": "error"' in line
                ]
        return found

    @staticmethod
    def tail(node: Node, lines: int = 30) -> str:
        try:
            text = node.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # --- reading nodes ------------------------------------------------------------------------------------------

    def get(self, node: Node, path: str, *, timeout: float = HTTP_TIMEOUT_S) -> Any:
        """GET a JSON document from a node's API."""
        with urllib.request.urlopen(f"{node.url}{path}", timeout=timeout) as response:
            return json.loads(response.read())

    def height(self, node: Node) -> int:
        height: int = self.get(node, "/v1/status")["height"]
        return height

    def try_height(self, node: Node) -> int | None:
        """The node's height, or None while it is down or not answering."""
        try:
            return self.height(node)
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def wait_height(self, height: int, nodes: Iterable[Node] | None = None, timeout: float = WAIT_S) -> None:
        """Wait until every node (every running node by default) has committed `height`."""
        targets = list(nodes) if nodes is not None else self.running()

        def reached() -> bool:
            return all((h := self.try_height(n)) is not None and h >= height for n in targets)

        poll(f"height {height} on {', '.join(n.id for n in targets)}", reached, timeout)

    def wait_progress(self, blocks: int, nodes: Iterable[Node] | None = None, timeout: float = WAIT_S) -> int:
        """Wait until the nodes commit `blocks` more blocks than the highest of them holds now; return that height."""
        targets = list(nodes) if nodes is not None else self.running()
        target = max(self.height(n) for n in targets) + blocks
        self.wait_height(target, targets, timeout)
        return target

    def block(self, node: Node, height: int) -> dict[str, Any]:
        block: dict[str, Any] = self.get(node, f"/v1/blocks/{height}")
        return block

    def metric(self, node: Node, name: str, default: float = 0.0, **labels: str) -> float:
        """One sample of a Prometheus metric from `/metrics` (`default` when the series does not exist yet)."""
        with urllib.request.urlopen(f"{node.url}/metrics", timeout=HTTP_TIMEOUT_S) as response:
            text = response.read().decode()
        selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        wanted = f"{name}{{{selector}}}" if labels else name
        for line in text.splitlines():
            sample, _, value = line.rpartition(" ")
            if sample == wanted:
                return float(value)
        return default

    def bundle(self, node: Node, digest: bytes) -> dict[str, Any]:
        bundle: dict[str, Any] = self.get(node, f"/v1/credentials/{digest.hex()}")
        return bundle

    def verdict(self, node: Node, digest: bytes) -> Verdict:
        """Fetch a proof bundle from `node` and verify it offline against the genesis."""
        return verify_bundle(Bundle.from_json(self.bundle(node, digest)), self.genesis)

    def event_status(self, node: Node, event_id: bytes) -> str | None:
        """The event's status on `node` ("committed" or "pending"), or None if the node does not know it."""
        try:
            status: str = self.get(node, f"/v1/events/{event_id.hex()}")["status"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise
        return status

    def log_ids(self, node: Node) -> list[str]:
        """Every committed event id in the node's log, in order."""
        ids: list[str] = []
        while True:
            page = self.get(node, f"/v1/entries?start={len(ids)}")
            ids.extend(entry["id"] for entry in page["entries"])
            if page["end"] >= page["size"]:
                return ids

    # --- events -------------------------------------------------------------------------------------------------

    def sign(self, payload: Payload, *keys: SigningKey, time_ms: int | None = None) -> Event:
        """An event for this network, signed now (or at `time_ms`)."""
        return sign_event(UnsignedEvent(self.genesis.origin, time_ms or now_ms(), payload), *keys)

    def issue(self, member_id: str, digest: bytes) -> Event:
        member = self.members[member_id]
        return self.sign(Issue(digest, member.id, None, ()), member.issuer)

    def governance(self, payload: Payload, signers: Iterable[str]) -> Event:
        """`payload` signed by the node keys of `signers`."""
        return self.sign(payload, *(self.members[s].node for s in signers))

    def submit(self, node: Node, *events: Event, wait: bool = True, timeout: float = 30.0) -> dict[str, Any]:
        """POST events to a node; with `wait`, return once they are committed (raises NodeProblem if refused)."""
        return node.client(timeout).submit(list(events), wait=wait)


def signature_lines(certificate: str) -> set[str]:
    """The names of the signers on a checkpoint note."""
    return {sig.name for sig in SignedNote.parse(certificate).signatures}


def note_body(certificate: str) -> str:
    """A checkpoint note without its signature lines: what every validator signed."""
    return SignedNote.parse(certificate).text


@contextlib.contextmanager
def running(cluster: Cluster) -> Iterator[Cluster]:
    """Start every node of `cluster`; kill them all on the way out, even if starting failed half-way. A node
    that logged an error fails the test (bad input is refused with warnings; errors mean the node failed)."""
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
    errors = cluster.logged_errors()
    assert not errors, "\n".join(errors[:10])


class Load:
    """Background submitters: each thread signs fresh issue events and posts them with `?wait=commit` to the
    running nodes in turn, recording the ids a node acknowledged as committed (HTTP 200)."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        threads: int = 2,
        batch: int = 4,
        issuer: str = "m0.test",
        targets: Sequence[Node] | None = None,
    ) -> None:
        self.cluster = cluster
        #: The nodes submitted to (the validators by default); those not running are skipped.
        self.targets = targets
        self.batch = batch
        self.issuer = issuer
        self.acknowledged: set[str] = set()
        #: Problem codes of refused requests (a commit timeout while there is no quorum is one).
        self.refused: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        self._counter = 0

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        if any(t.is_alive() for t in self._threads):
            raise AssertionError("a load thread did not stop within 60 s")

    def acked(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def _next_digest(self, worker: int) -> bytes:
        with self._lock:
            self._counter += 1
            n = self._counter
        return os.urandom(24) + n.to_bytes(4, "big") + worker.to_bytes(4, "big")

    def _run(self, worker: int) -> None:
        turn = worker
        while not self._stop.is_set():
            nodes = [n for n in (self.targets or self.cluster.validators) if n.running]
            if not nodes:
                self._stop.wait(0.05)
                continue
            node = nodes[turn % len(nodes)]
            turn += 1
            events = [self.cluster.issue(self.issuer, self._next_digest(worker)) for _ in range(self.batch)]
            try:
                answer = self.cluster.submit(node, *events, wait=True, timeout=20.0)
            except NodeProblem as exc:
                with self._lock:
                    self.refused.append(exc.code)
                continue
            except NodeUnreachable:
                # A node killed mid-request: nothing was acknowledged, whatever became of the events.
                self._stop.wait(0.05)
                continue
            ids = {r["id"] for r in answer["results"] if r["status"] == "committed"}
            with self._lock:
                self.acknowledged.update(ids)
