"""One node process: the store, the chain, consensus, peers, the syncer and the HTTP API, put together.

`serve(config)` runs until cancelled (SIGINT or SIGTERM under `run`), then stops taking requests, cancels its
tasks and closes the store. Everything the node acknowledged as committed is already durable by then: blocks are
committed in synced LMDB transactions before any client hears of them.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import signal
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import structlog
from aiohttp import web

from credledger.ledger.errors import ConfigError, DecodeError
from credledger.ledger.events import Event
from credledger.ledger.genesis import Genesis, load_genesis
from credledger.ledger.keys import PublicKey, SigningKey
from credledger.ledger.state import get_member
from credledger.ledger.storage.store import Store
from credledger.node.api.app import RESERVED_READ_SLOTS, make_app
from credledger.node.api.common import LiveStatus
from credledger.node.api.http_errors import api_runner
from credledger.node.api.page import page_routes
from credledger.node.application import LedgerApplication
from credledger.node.config import NodeConfig
from credledger.node.driver import Driver, NodeHalted
from credledger.node.health import Observation, RoundView, why_not_committing
from credledger.node.logs import configure_logging
from credledger.node.mempool import Mempool
from credledger.node.metrics import Metrics
from credledger.node.peers import PEER_PATH, PeerNetwork
from credledger.node.statuslists import StatusPublisher
from credledger.node.sync import Syncer

log = structlog.get_logger("credledger.server")

#: How long requests still being answered may take once the node is told to stop.
SHUTDOWN_TIMEOUT_S = 5.0
#: Fewest LMDB reader slots a node runs with: the reserved ones and as many again for requests.
MIN_READERS = 2 * RESERVED_READ_SLOTS
#: Held (flock) by the node process that owns a data directory, for as long as it runs.
LOCK_FILE = "node.lock"


def read_key(path: Path, member_id: str) -> SigningKey:
    """Load the node's signer-key file and check it belongs to `member_id`."""
    try:
        key = SigningKey.from_skey(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"node key file {path} does not exist (create one with `credledger init`)") from None
    except DecodeError as exc:
        raise ConfigError(f"node key file {path}: {exc}") from None
    if key.name != member_id:
        raise ConfigError(f"node key file {path} is named {key.name!r}, but this node is member {member_id!r}")
    return key


def lock_data_dir(path: Path) -> BinaryIO:
    """Take the data directory for this process, or raise ConfigError if another node holds it.

    Two processes on one data directory would both vote with the same key from their own memory of what was
    signed, which is how validators double-sign; the kernel drops the lock when the process dies, even by SIGKILL.
    """
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = (path / LOCK_FILE).open("ab")
    except OSError as exc:
        raise ConfigError(f"data directory {path}: cannot use it ({exc.strerror})") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigError(f"data directory {path} is in use by another running node") from None
    return handle


class Node:
    """The parts of a running node, built from its configuration."""

    def __init__(self, config: NodeConfig, genesis: Genesis, key: SigningKey) -> None:
        self.config = config
        self.genesis = genesis
        self.metrics = Metrics()
        if config.store.max_readers < MIN_READERS:
            raise ConfigError(
                f"[store] max_readers is {config.store.max_readers}: at least {MIN_READERS} are needed "
                f"({RESERVED_READ_SLOTS} stay reserved for consensus and catch-up, the rest serve requests)"
            )
        if config.store.state_history_blocks < 0:
            raise ConfigError(
                f"[store] state_history_blocks is {config.store.state_history_blocks}: expected 0 (keep the state "
                "as of every height) or the number of latest blocks whose state to keep"
            )
        self._lock = lock_data_dir(config.data_dir)
        try:
            self.store = Store(
                config.data_dir / "ledger",
                max_readers=config.store.max_readers,
                state_history=config.store.state_history_blocks or None,
            )
        except BaseException:
            self._lock.close()
            raise
        try:
            self._build(config, genesis, key)
        except BaseException:
            self.close()
            raise

    def _build(self, config: NodeConfig, genesis: Genesis, key: SigningKey) -> None:
        mempool = Mempool[Event](max_events=config.mempool.max_events, max_bytes=config.mempool.max_bytes)
        self.chain = LedgerApplication(self.store, genesis, mempool=mempool, metrics=self.metrics)
        validator = config.role == "validator"
        self.peers: PeerNetwork | None = None
        if validator:
            self.peers = PeerNetwork(
                key=key,
                origin=genesis.origin,
                genesis_hash=genesis.hash(),
                lookup=self._member_key,
                receive=self._receive,
                config=config.p2p,
                metrics=self.metrics,
            )
        self.driver = Driver(self.chain, signer=key if validator else None, peers=self.peers)
        self.syncer = Syncer(self.driver, config.p2p.peers, batch=config.p2p.sync_batch)
        self.publisher: StatusPublisher | None = None
        if validator and config.credentials.issuer_key:
            try:
                issuer_key = read_key(Path(config.credentials.issuer_key), config.member_id)
            except ConfigError as exc:
                raise ConfigError(f"[credentials] issuer_key: {exc}".replace("node key file", "key file")) from None
            self.publisher = StatusPublisher(self.chain, config.member_id, issuer_key, config.credentials)
        self.app = make_app(self.chain, config, status=self._status)
        # The verification page checks proofs in the browser against the genesis this node was started with.
        self.app.add_routes(page_routes(config.genesis.read_text(encoding="utf-8")))
        if self.peers is not None:
            self.app.router.add_get(PEER_PATH, self.peers.handle)

    def _receive(self, member: str, kind: int, payload: bytes) -> None:
        self.driver.receive(member, kind, payload)

    def _member_key(self, member_id: str) -> PublicKey | None:
        with self.store.snapshot() as snap:
            record = get_member(snap.state_view(), member_id)
        if record is None or not record.active:
            return None
        return PublicKey(record.id, record.node_key)

    def _status(self) -> LiveStatus:
        machine = self.driver.machine
        syncer = self.syncer
        with self.store.snapshot() as snap:
            height = snap.height
            last_block_ms = snap.header(height).time_ms if height else self.genesis.genesis_time_ms
        view: RoundView | None = None
        unreachable = tuple(syncer.unreachable)
        if self.peers is not None and machine.height:
            validators = machine.validators
            prevoted, precommitted, proposal_seen = machine.voted_power()
            view = RoundView(
                height=machine.height,
                round=machine.round,
                proposer=machine.proposer(machine.round),
                proposal_seen=proposal_seen,
                prevoted_power=prevoted,
                precommitted_power=precommitted,
                total_power=validators.total_power,
                quorum=validators.quorum,
            )
            connected = set(self.peers.connected())
            me = self.config.member_id
            unreachable = tuple(v.member_id for v in validators.validators if v.member_id not in connected | {me})
        seen = Observation(
            now_ms=self.chain.now_ms(),
            height=height,
            last_block_ms=last_block_ms,
            catch_up_failure=syncer.failure,
            peer_height=syncer.peer_height,
            unreachable=unreachable,
            round=view,
        )
        return LiveStatus(
            round=machine.round if machine.height else None,
            peers=len(self.peers.connected()) if self.peers is not None else None,
            syncing=syncer.syncing,
            stalled=why_not_committing(seen, self.genesis.params),
            catch_up_failure=syncer.failure,
            peer_height=syncer.peer_height,
        )

    async def run(self) -> None:
        api = self.config.api
        runner = api_runner(self.app, api, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        site = web.TCPSite(runner, api.host, api.port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            self.close()
            reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
            raise ConfigError(f"cannot listen on {api.host}:{api.port}: {reason}") from None
        log.info(
            "node listening",
            url=f"http://{self.config.api.host}:{self.config.api.port}",
            role=self.config.role,
            height=self.chain.height,
        )
        try:
            self.driver.start()
            async with asyncio.TaskGroup() as group:
                group.create_task(self.driver.watch())
                group.create_task(self.syncer.run())
                if self.peers is not None:
                    group.create_task(self.peers.run())
                if self.publisher is not None:
                    group.create_task(self.publisher.run())
        except* NodeHalted as halted:
            # The driver's own error says why, without the task group's wrapping.
            raise halted.exceptions[0] from None
        finally:
            self.driver.stop()
            if self.peers is not None:
                await self.peers.close()
            await runner.cleanup()
            self.close()
            log.info("node stopped")

    def close(self) -> None:
        """Close the store, then let go of the data directory."""
        self.store.close()
        self._lock.close()


async def serve(config: NodeConfig) -> None:
    """Run a node until cancelled."""
    genesis = load_genesis(config.genesis)
    key = read_key(config.node_key, config.member_id)
    structlog.contextvars.bind_contextvars(member=config.member_id)
    await Node(config, genesis, key).run()


def run(config: NodeConfig) -> None:
    """Run a node in the foreground until SIGINT or SIGTERM."""
    configure_logging(config.log.level, config.log.format)

    async def main() -> None:
        task = asyncio.create_task(serve(config))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        await asyncio.wait([task])
        if not task.cancelled():  # cancelled is how a signal stops it; anything else it raised is the answer
            task.result()

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main())


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (every platform but Windows), else None: asyncio's own. The node
    is the same on either; uvloop spends less CPU per socket read and write, which is most of what serving a proof
    bundle costs besides the proof itself."""
    try:
        import uvloop  # noqa: PLC0415 (not installed on Windows)
    except ImportError:
        return None
    return uvloop.new_event_loop
