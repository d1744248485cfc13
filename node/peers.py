"""Peer transport: authenticated websockets between member institutions' nodes.

Theory of operation
-------------------
Every node serves `/v1/peer` and dials each configured peer; a connection in either direction carries messages
both ways. A connection starts with a handshake:

1. each side sends ``Hello(origin, genesis hash, member id, nonce)``;
2. each side answers ``Proof(signature)``: its node key's signature over
   ``PEER_CHALLENGE || genesis hash || the other side's nonce || its own nonce || its member id``;
3. each side checks that the other is an active member whose node key made that signature, for the same network.

A peer that fails any step -- wrong network, unknown member, bad signature, garbage, or no answer within the
handshake timeout -- is told why in a close frame and disconnected (the dialling side does the same), nothing it
sent reaches the node, and the refusal is counted in `credledger_peer_errors{reason="handshake"}`. A member holds
at most `MAX_CONNECTIONS_PER_MEMBER` connections at once. After the handshake every frame is
``kind byte || payload``: consensus messages, single pending events, and batches of pending events (an
`EventBatch`, at most `MAX_RELAY_BYTES` of events per frame); any other frame closes the connection with the
reason (counted as "frame"). A connection that fails under us -- the websocket heartbeat got no pong in time, or
a write (a frame of ours, or the pong aiohttp answers a ping with) found the transport closing -- is not the
peer's frame nor a fault of the node: it is the normal end of a connection whose other side went away or stalled.
It ends the connection with one info line ("peer disconnected" with the error), counted as "connection", and the
dialler re-dials. Each connection has a bounded outgoing queue; when a slow peer lets it fill, the oldest messages
are dropped (consensus re-sends what matters on its timeouts) rather than letting memory grow.
Outgoing connections are re-dialled with jittered exponential backoff, and the websocket heartbeat detects a
silent peer. Inbound payloads go to the `receive` callback with the authenticated member id; the refusals it
raises (`CredledgerError`) count against that peer under their code and are logged, and the connection stays.
When the node stops, `close()` ends every connection at once, and cancelling `run()` stops the diallers within a
bounded time: every wait on the way out (a close handshake, a send pump, a dialler) has a timeout, and a dialler
that outlives its cancellation is cancelled again, then given up on, rather than waited for forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final, TypeVar

import aiohttp
import structlog
from aiohttp import web

from credledger.ledger import codec, domains
from credledger.ledger.codec import Bytes32, Bytes64, Size
from credledger.ledger.errors import BadSignature, CredledgerError, DecodeError, PeerMisbehaved
from credledger.ledger.keys import PublicKey, SigningKey
from credledger.ledger.limits import MAX_ANY_EVENT_BYTES
from credledger.ledger.validators import MemberId
from credledger.node.config import P2PConfig
from credledger.node.metrics import Metrics

PEER_PATH: Final = "/v1/peer"
HANDSHAKE_TIMEOUT_S: Final = 5.0
#: Largest frame a peer may send (a block proposal of the largest size fits).
MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
HEARTBEAT_S: Final = 10.0
#: How long closing every connection may take when the node stops; also how long one websocket's close handshake,
#: a stopping connection's send pump, and each round of stopping the diallers may take.
CLOSE_TIMEOUT_S: Final = 3.0
#: Connections one member may hold open to this node at once (each side dials the other, so two is normal).
MAX_CONNECTIONS_PER_MEMBER: Final = 4
#: RFC 6455 limits a close frame's reason to 123 bytes of UTF-8.
MAX_CLOSE_REASON_BYTES: Final = 123

KIND_CONSENSUS: Final = 1
KIND_EVENT: Final = 2
KIND_EVENTS: Final = 3
KINDS: Final = frozenset({KIND_CONSENSUS, KIND_EVENT, KIND_EVENTS})
#: Most bytes of events one relayed batch carries (a bigger batch goes out as several frames).
MAX_RELAY_BYTES: Final = 1024 * 1024
#: Most events one relayed batch carries.
MAX_RELAY_EVENTS: Final = 4_096

log = structlog.get_logger("credledger.peers")

#: A websocket's close handshake is bounded like the rest of stopping (aiohttp waits 10 s by default).
_WS_TIMEOUT: Final = aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_S)

T = TypeVar("T")
#: What `receive()` returns once a websocket is closing or closed (its async iterator stops on these).
_CLOSED: Final = frozenset({aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED})
Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


@dataclass(frozen=True, slots=True)
class Hello:
    origin: Annotated[str, Size(1, 200)]
    genesis: Bytes32
    member: MemberId
    nonce: Bytes32


@dataclass(frozen=True, slots=True)
class Proof:
    signature: Bytes64


@dataclass(frozen=True, slots=True)
class EventBatch:
    """Pending events relayed to a peer in one frame (`KIND_EVENTS`), each in its signed encoding."""

    events: Annotated[tuple[Annotated[bytes, Size(1, MAX_ANY_EVENT_BYTES)], ...], Size(1, MAX_RELAY_EVENTS)]


def relay_batches(encoded: list[bytes]) -> list[EventBatch]:
    """`encoded` events cut, in order, into batches of at most `MAX_RELAY_BYTES` and `MAX_RELAY_EVENTS`."""
    batches: list[EventBatch] = []
    current: list[bytes] = []
    size = 0
    for event in encoded:
        if current and (size + len(event) > MAX_RELAY_BYTES or len(current) >= MAX_RELAY_EVENTS):
            batches.append(EventBatch(tuple(current)))
            current, size = [], 0
        current.append(event)
        size += len(event)
    if current:
        batches.append(EventBatch(tuple(current)))
    return batches


def close_reason(text: str) -> bytes:
    """`text` as a websocket close reason: UTF-8, cut to the protocol's limit without splitting a character."""
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore").encode()


def challenge(genesis: bytes, their_nonce: bytes, my_nonce: bytes, member: str) -> bytes:
    """The bytes a node signs to prove it holds its node key, bound to this network and this connection."""
    return genesis + their_nonce + my_nonce + member.encode()


#: Looks up an active member's node key; None for anyone else.
KeyLookup = Callable[[str], PublicKey | None]
#: Receives (member id, kind, payload) for every frame an authenticated peer sends.
Receiver = Callable[[str, int, bytes], None]


class _Connection:
    """One authenticated websocket with its bounded send queue."""

    def __init__(self, member: str, ws: Socket, size: int) -> None:
        self.member = member
        self.ws = ws
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=size)
        self.dropped = 0
        #: How the connection failed under us, if it did: the first failure only, what follows is its consequence.
        self.failure: str | None = None

    def failed(self, exc: BaseException) -> None:
        """Record that the socket failed under us (the read loop logs and counts it as the connection ends)."""
        if self.failure is None:
            self.failure = str(exc) or type(exc).__name__

    def offer(self, frame: bytes) -> None:
        while True:
            try:
                self.queue.put_nowait(frame)
                return
            except asyncio.QueueFull:
                # Drop the oldest: the newest consensus messages supersede older ones.
                self.queue.get_nowait()
                self.dropped += 1

    async def close(self, reason: bytes) -> None:
        """Close the socket as going away; a socket that is already broken needs no closing."""
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await self.ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=reason)

    async def pump(self) -> None:
        """Send queued frames until the socket fails; then close it, which ends the connection's read loop."""
        try:
            while True:
                frame = await self.queue.get()
                await self.ws.send_bytes(frame)
        except (ConnectionError, aiohttp.ClientError) as exc:
            self.failed(exc)
            # Wakes the read loop, which ends the connection; the close frame itself cannot go out any more.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    await self.ws.close()


class PeerNetwork:
    """Connections to the other members' nodes."""

    def __init__(
        self,
        *,
        key: SigningKey,
        origin: str,
        genesis_hash: bytes,
        lookup: KeyLookup,
        receive: Receiver,
        config: P2PConfig,
        metrics: Metrics,
    ) -> None:
        self._key = key
        self._origin = origin
        self._genesis = genesis_hash
        self._lookup = lookup
        self._receive = receive
        self._config = config
        self._metrics = metrics
        self._connections: dict[str, list[_Connection]] = {}
        self._session: aiohttp.ClientSession | None = None

    @property
    def member(self) -> str:
        return self._key.name

    def connected(self) -> list[str]:
        """Member ids with at least one authenticated connection."""
        return sorted(m for m, conns in self._connections.items() if conns)

    def broadcast(self, kind: int, payload: bytes, *, exclude: str | None = None) -> None:
        """Queue a frame for every connected peer (one connection each)."""
        frame = bytes([kind]) + payload
        for member, conns in self._connections.items():
            if conns and member != exclude:
                conns[0].offer(frame)

    # --- running ------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close every connection, telling the peers this node is going away: inbound connections are handlers
        of the HTTP server, which would otherwise wait for them to end before it can stop."""
        connections = [conn for conns in self._connections.values() for conn in conns]
        # Best effort, bounded: a peer that does not answer the close frame in time is cut off when the server
        # stops, which is all the close was for.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.gather(*(conn.close(b"node shutting down") for conn in connections))

    async def run(self) -> None:
        """Dial every configured peer and keep the connections up until cancelled."""
        timeout = aiohttp.ClientTimeout(total=None, connect=5, sock_read=None)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            self._session = session
            # Not a TaskGroup: it waits without bound for a child that lost its cancellation somewhere below it
            # (Python 3.11's wait_for once did that in the handshake), and the node could not stop.
            # Nor gather: cancelled, it too waits for every child.
            diallers = [asyncio.create_task(self._dial_forever(url), name=f"dial {url}") for url in self._config.peers]
            if not diallers:
                return
            try:
                await asyncio.wait(diallers, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                await _stop(diallers)
            for dialler in diallers:
                if dialler.done() and not dialler.cancelled():
                    dialler.result()  # a dialler ends only by cancellation; anything else is a bug, raised here

    async def _dial_forever(self, base_url: str) -> None:
        delay = self._config.backoff_min_ms / 1000
        url = base_url.rstrip("/") + PEER_PATH
        while True:
            assert self._session is not None
            try:
                async with self._session.ws_connect(
                    url, max_msg_size=MAX_FRAME_BYTES, heartbeat=HEARTBEAT_S, timeout=_WS_TIMEOUT
                ) as ws:
                    try:
                        member = await self._handshake(ws)
                    except PeerMisbehaved as exc:
                        # Tell the node we dialled why we hang up, as it would tell us.
                        await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=close_reason(str(exc)))
                        raise
                    delay = self._config.backoff_min_ms / 1000
                    await self._serve(member, ws)
            except asyncio.CancelledError:
                raise
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                log.debug("peer unreachable", url=base_url, error=str(exc) or type(exc).__name__)
            except PeerMisbehaved as exc:
                self._metrics.peer_errors.labels("handshake").inc()
                log.warning("peer refused", url=base_url, reason=str(exc))
            # Jittered exponential backoff, so restarted networks do not reconnect in lockstep.
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 - jitter, not security
            delay = min(delay * 2, self._config.backoff_max_ms / 1000)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The `/v1/peer` route: accept a peer's connection."""
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES, heartbeat=HEARTBEAT_S, timeout=CLOSE_TIMEOUT_S)
        try:
            await ws.prepare(request)
        except (ConnectionError, aiohttp.ClientError) as exc:
            # The dialler gave up before we answered its upgrade (its connect timeout, on a loaded machine).
            log.debug("peer gone before the handshake", remote=request.remote, error=str(exc) or type(exc).__name__)
            return ws
        try:
            member = await self._handshake(ws)
        except PeerMisbehaved as exc:
            self._metrics.peer_errors.labels("handshake").inc()
            log.warning("peer refused", remote=request.remote, reason=str(exc))
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=close_reason(str(exc)))
            return ws
        except (ConnectionError, aiohttp.ClientError):
            return ws  # gone during the handshake: nothing to refuse
        await self._serve(member, ws)
        return ws

    # --- protocol -----------------------------------------------------------------------------------------------

    async def _handshake(self, ws: Socket) -> str:
        nonce = os.urandom(32)
        await ws.send_bytes(codec.encode(Hello(self._origin, self._genesis, self.member, nonce)))
        hello = await self._expect(ws, Hello)
        if hello.origin != self._origin:
            raise PeerMisbehaved(f"peer {hello.member} is on network {hello.origin!r}, not {self._origin!r}")
        if hello.genesis != self._genesis:
            theirs, ours = hello.genesis.hex()[:16], self._genesis.hex()[:16]
            raise PeerMisbehaved(f"peer {hello.member} has genesis {theirs}, this network's is {ours}")
        if hello.member == self.member:
            raise PeerMisbehaved("connected to myself")
        key = self._lookup(hello.member)
        if key is None:
            raise PeerMisbehaved(f"{hello.member!r} is not an active member of this network")
        mine = self._key.sign(domains.PEER_CHALLENGE, challenge(self._genesis, hello.nonce, nonce, self.member))
        await ws.send_bytes(codec.encode(Proof(mine)))
        proof = await self._expect(ws, Proof)
        try:
            key.verify(
                domains.PEER_CHALLENGE, challenge(self._genesis, nonce, hello.nonce, hello.member), proof.signature
            )
        except BadSignature:
            raise PeerMisbehaved(f"{hello.member} did not prove it holds its node key") from None
        return hello.member

    async def _expect(self, ws: Socket, cls: type[T]) -> T:
        # Not asyncio.wait_for: on Python 3.11 it returns the answer and drops a cancellation that lands in the same
        # turn of the event loop (tasks.py, `except CancelledError: if fut.done(): return fut.result()`), and a
        # dialler told to stop just as a hello or proof arrived went on to serve the connection, never to stop.
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                msg = await ws.receive()
        except TimeoutError:
            raise PeerMisbehaved(f"no {cls.__name__.lower()} within {HANDSHAKE_TIMEOUT_S:.0f} s") from None
        if msg.type is aiohttp.WSMsgType.ERROR:
            # Our side of the socket failed (see `_serve`): the peer refused nothing, the connection is just gone.
            raise ConnectionResetError(f"connection failed during the handshake: {msg.data}")
        if msg.type in _CLOSED:
            # The other side refused us; its reason is the most useful thing to log.
            reason = msg.extra if isinstance(msg.extra, str) and msg.extra else "no reason given"
            raise PeerMisbehaved(f"closed the connection instead of sending a {cls.__name__.lower()}: {reason}")
        if msg.type != aiohttp.WSMsgType.BINARY:
            raise PeerMisbehaved(f"expected a binary {cls.__name__.lower()} frame, got {msg.type.name}")
        try:
            return codec.decode(cls, msg.data, max_bytes=4096)
        except DecodeError as exc:
            raise PeerMisbehaved(f"malformed {cls.__name__.lower()}: {exc}") from None

    async def _serve(self, member: str, ws: Socket) -> None:
        conns = self._connections.setdefault(member, [])
        # Checked here, where the connection is registered without an await in between: handshakes run
        # concurrently, and each would pass a check made before registering.
        if len(conns) >= MAX_CONNECTIONS_PER_MEMBER:
            reason = f"{member} holds {MAX_CONNECTIONS_PER_MEMBER} connections already"
            self._metrics.peer_errors.labels("handshake").inc()
            log.warning("peer refused", peer=member, reason=reason)
            await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=close_reason(reason))
            return
        conn = _Connection(member, ws, self._config.queue_size)
        conns.append(conn)
        self._metrics.peers.set(len(self.connected()))
        log.info("peer connected", peer=member)
        pump = asyncio.create_task(conn.pump())
        try:
            while True:
                try:
                    msg = await ws.receive()
                except (ConnectionError, aiohttp.ClientError) as exc:
                    # aiohttp answers a peer's ping inside `receive()`; when the transport is already closing (our
                    # heartbeat gave up on a peer whose ping was waiting to be read, or the peer vanished), the pong
                    # raises "Cannot write to closing transport" here. The connection is gone, nothing more.
                    conn.failed(exc)
                    break
                if msg.type in _CLOSED:
                    break
                if msg.type is aiohttp.WSMsgType.ERROR:
                    # Raised by aiohttp for our side of the socket (no pong within half the heartbeat, a write
                    # to a closing transport, the connection lost), never sent by the peer: the connection is gone.
                    conn.failed(msg.data)
                    break
                problem = _frame_problem(msg)
                if problem is not None:
                    self._metrics.peer_errors.labels("frame").inc()
                    log.warning("peer sent an unknown frame", peer=member, reason=problem)
                    await ws.close(code=aiohttp.WSCloseCode.POLICY_VIOLATION, message=close_reason(problem))
                    break
                try:
                    self._receive(member, msg.data[0], bytes(msg.data[1:]))
                except CredledgerError as exc:
                    # The frame was refused (bad signature, garbage, ...): count it, keep the connection.
                    self._metrics.peer_errors.labels(exc.code).inc()
                    log.info("peer message refused", peer=member, reason=str(exc))
        finally:
            self._connections[member].remove(conn)
            self._metrics.peers.set(len(self.connected()))
            if conn.failure is None:
                log.info("peer disconnected", peer=member)
            else:
                self._metrics.peer_errors.labels("connection").inc()
                log.info("peer disconnected", peer=member, error=conn.failure)
            pump.cancel()
            # Wait for the pump without absorbing a cancellation aimed at this task: suppressing CancelledError
            # here swallowed the node's own shutdown, and the dialler went on re-dialling forever. Bounded: the
            # reader must not hang on a pump stuck in a close handshake.
            await asyncio.wait([pump], timeout=CLOSE_TIMEOUT_S)
            if not pump.done():
                log.warning("peer send pump did not stop in time", peer=member)
            elif not pump.cancelled():
                pump.result()  # the pump ends only by cancellation or a send error it handled; anything else is a bug


async def _stop(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and wait for them to end, at most twice `CLOSE_TIMEOUT_S`: a task still running after the
    first wait lost its cancellation somewhere below it and is cancelled again; one still running after the second
    is left behind, logged, rather than waited for forever."""
    for task in tasks:
        task.cancel()
    _, running = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
    if not running:
        return
    log.warning(
        "peer dialler outlived its cancellation; cancelling it again", tasks=sorted(t.get_name() for t in running)
    )
    for task in running:
        task.cancel()
    _, running = await asyncio.wait(running, timeout=CLOSE_TIMEOUT_S)
    if running:
        log.error("peer dialler did not stop; leaving it", tasks=sorted(t.get_name() for t in running))


def _frame_problem(msg: aiohttp.WSMessage) -> str | None:
    """Why a frame from an authenticated peer is not one of ours (None if it is)."""
    if msg.type != aiohttp.WSMsgType.BINARY:
        return f"unknown frame: {msg.type.name.lower()} (only binary frames are spoken here)"
    if not msg.data:
        return "unknown frame: empty"
    if msg.data[0] not in KINDS:
        return f"unknown frame: kind {msg.data[0]}"
    return None
