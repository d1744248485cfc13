"""The peer transport in one process: two nodes' `PeerNetwork`s over real websockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
import pytest
import structlog
import structlog.testing
from aiohttp import web
from aiohttp.test_utils import TestServer

from credledger.ledger import codec
from credledger.ledger.keys import PublicKey, SigningKey
from credledger.node import peers
from credledger.node.config import P2PConfig
from credledger.node.metrics import Metrics
from credledger.node.peers import (
    KIND_CONSENSUS,
    KIND_EVENT,
    MAX_CLOSE_REASON_BYTES,
    MAX_CONNECTIONS_PER_MEMBER,
    PEER_PATH,
    Hello,
    PeerNetwork,
    _Connection,
    close_reason,
)
from tests.factories import make_member

GENESIS = bytes(range(32))
ORIGIN = "credledger.test/peers"


@dataclass
class Peer:
    network: PeerNetwork
    url: str
    received: list[tuple[str, int, bytes]] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)

    def errors(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value("credledger_peer_errors_total", {"reason": reason})
        return value or 0.0


def lookup_of(*keys: SigningKey) -> Callable[[str], PublicKey | None]:
    members = {k.name: k.public for k in keys}
    return members.get


def quiet_network(
    key: SigningKey,
    members: Callable[[str], PublicKey | None],
    *,
    config: P2PConfig | None = None,
    metrics: Metrics | None = None,
) -> PeerNetwork:
    """A peer layer of this test network that drops what it receives (for tests that drive it by hand)."""
    return PeerNetwork(
        key=key,
        origin=ORIGIN,
        genesis_hash=GENESIS,
        lookup=members,
        receive=lambda *_: None,
        config=config or P2PConfig(),
        metrics=metrics or Metrics(),
    )


@asynccontextmanager
async def peer(
    key: SigningKey, members: Callable[[str], PublicKey | None], *, dial: tuple[str, ...] = ()
) -> AsyncIterator[Peer]:
    """A node's peer layer serving /v1/peer on a free port, dialling `dial`."""
    received: list[tuple[str, int, bytes]] = []
    metrics = Metrics()
    network = PeerNetwork(
        key=key,
        origin=ORIGIN,
        genesis_hash=GENESIS,
        lookup=members,
        receive=lambda member, kind, payload: received.append((member, kind, payload)),
        config=P2PConfig(peers=dial, backoff_min_ms=20, backoff_max_ms=100),
        metrics=metrics,
    )
    app = web.Application()
    app.router.add_get(PEER_PATH, network.handle)
    # A short shutdown: the peer sockets are closed by `network.close()`; waiting aiohttp's default minute for a
    # refused connection's handler only stalls the test when the machine is loaded.
    async with TestServer(app, host="127.0.0.1", port=0, shutdown_timeout=2.0) as server:
        runner = asyncio.create_task(network.run())
        try:
            yield Peer(network, str(server.make_url("")).rstrip("/"), received, metrics)
        finally:
            runner.cancel()
            await network.close()
            # A plain wait: stopping `run()` is bounded by the peer layer itself.
            await asyncio.wait([runner])
            if not runner.cancelled():
                runner.result()


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


A, B, C = (make_member(f"{n}.test").node for n in "abc")


async def test_members_connect_and_frames_flow_both_ways() -> None:
    members = lookup_of(A, B)
    async with peer(A, members) as a, peer(B, members, dial=(a.url,)) as b:
        await until(lambda: a.network.connected() == ["b.test"] and b.network.connected() == ["a.test"])
        b.network.broadcast(KIND_CONSENSUS, b"vote")
        a.network.broadcast(KIND_EVENT, b"event")
        await until(lambda: bool(a.received and b.received))
        assert a.received == [("b.test", KIND_CONSENSUS, b"vote")]
        assert b.received == [("a.test", KIND_EVENT, b"event")]


async def test_a_non_member_is_refused_with_the_reason_on_both_sides() -> None:
    async with peer(A, lookup_of(A, B)) as a, peer(C, lookup_of(A, B, C), dial=(a.url,)) as c:
        await until(lambda: a.errors("handshake") >= 1 and c.errors("handshake") >= 1)
        assert a.network.connected() == [] and c.network.connected() == []
        assert a.received == c.received == []


async def test_a_member_holds_a_bounded_number_of_connections() -> None:
    members = lookup_of(A, B)
    async with peer(A, members) as a:
        dialers = [peer(B, members, dial=(a.url,)) for _ in range(MAX_CONNECTIONS_PER_MEMBER + 2)]
        entered = [await d.__aenter__() for d in dialers]
        try:
            await until(lambda: len(a.network._connections.get("b.test", [])) == MAX_CONNECTIONS_PER_MEMBER)
            await until(lambda: a.errors("handshake") >= 2)
            assert len(a.network._connections["b.test"]) == MAX_CONNECTIONS_PER_MEMBER
        finally:
            for d in dialers:
                await d.__aexit__(None, None, None)
        assert len(entered) == MAX_CONNECTIONS_PER_MEMBER + 2


async def test_closing_ends_every_connection_at_once() -> None:
    members = lookup_of(A, B)
    async with peer(A, members) as a, peer(B, members, dial=(a.url,)) as b:
        await until(lambda: a.network.connected() == ["b.test"])
        async with asyncio.timeout(2):
            await a.network.close()
        await until(lambda: a.network.connected() == [])
        assert b.errors("frame") == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("short", b"short"),
        ("x" * 200, b"x" * MAX_CLOSE_REASON_BYTES),
        ("é" * 100, ("é" * 61).encode()),  # two bytes each: cut before the character that would not fit
    ],
)
def test_close_reasons_fit_a_close_frame_without_splitting_a_character(text: str, expected: bytes) -> None:
    reason = close_reason(text)
    assert reason == expected
    assert len(reason) <= MAX_CLOSE_REASON_BYTES
    reason.decode()


async def test_a_text_frame_from_an_authenticated_peer_closes_it_with_the_reason() -> None:
    members = lookup_of(A, B)
    async with peer(A, members) as a, aiohttp.ClientSession() as session:
        # Dial as B by hand, through B's own handshake code, then speak text.
        b = quiet_network(B, members)
        async with session.ws_connect(a.url + PEER_PATH) as ws:
            assert await b._handshake(ws) == "a.test"
            await ws.send_str("hello")
            message = await ws.receive(timeout=5)
            assert message.type == aiohttp.WSMsgType.CLOSE
            assert message.extra == "unknown frame: text (only binary frames are spoken here)"
        assert a.errors("frame") == 1


async def _slow_to_stop_pump(self: _Connection) -> None:
    """A pump whose last send is still completing when it is cancelled."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        await asyncio.sleep(0.3)
        raise


async def test_a_node_told_to_stop_while_a_connection_winds_down_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the connection's clean-up suppressed CancelledError while waiting for its pump, so a stop that
    arrived just as a peer hung up was swallowed and the dialler re-dialled forever (`credledger devnet` hung on
    Ctrl-C about one time in four)."""
    monkeypatch.setattr(_Connection, "pump", _slow_to_stop_pump)
    members = lookup_of(A, B)
    async with peer(A, members) as a:
        b = quiet_network(B, members, config=P2PConfig(peers=(a.url,), backoff_min_ms=20, backoff_max_ms=100))
        running = asyncio.create_task(b.run())
        await until(lambda: b.connected() == ["a.test"])
        await a.network.close()  # a hangs up; b's connection winds down, waiting 0.3 s for its pump
        await until(lambda: b.connected() == [])
        running.cancel()  # ... and b is told to stop meanwhile
        done, _ = await asyncio.wait([running], timeout=3)
        assert running in done and running.cancelled()


async def test_a_connection_failing_under_us_is_not_counted_as_the_peers_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a dialled connection whose heartbeat got no pong in time (an event loop blocked by a long
    consensus step did it) reached the frame check as aiohttp's ERROR message and was logged as "peer sent an
    unknown frame"; the pump then wrote to the closing transport."""
    monkeypatch.setattr(peers, "HEARTBEAT_S", 0.2)
    members = lookup_of(A, B)
    b = quiet_network(B, members)

    async def silent(request: web.Request) -> web.StreamResponse:
        """B's side, by hand: the handshake, then never a read, so a's pings go unanswered."""
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await b._handshake(ws)
        await asyncio.sleep(30)
        return ws

    app = web.Application()
    app.router.add_get(PEER_PATH, silent)
    server = TestServer(app, host="127.0.0.1", port=0)
    async with server, peer(A, members, dial=(str(server.make_url("")).rstrip("/"),)) as a:
        await until(lambda: a.errors("connection") >= 1)
        assert a.errors("frame") == 0


class _AnswerAsCancelled:
    """A socket on which the peer's answer arrives in the same turn of the event loop as a cancellation of the
    task reading it -- the interleaving a loaded machine produces now and then, arranged every time here."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.reader: asyncio.Task[str] | None = None
        self.answered = False

    async def send_bytes(self, data: bytes) -> None:
        pass

    async def receive(self) -> aiohttp.WSMessage:
        if self.answered:  # only reached if the cancellation was lost
            return aiohttp.WSMessage(aiohttp.WSMsgType.CLOSE, aiohttp.WSCloseCode.GOING_AWAY, "test over")
        self.answered = True
        arrived: asyncio.Future[aiohttp.WSMessage] = asyncio.get_running_loop().create_future()

        def arrive() -> None:
            arrived.set_result(aiohttp.WSMessage(aiohttp.WSMsgType.BINARY, self.answer, None))
            assert self.reader is not None
            self.reader.cancel()

        asyncio.get_running_loop().call_soon(arrive)
        return await arrived


async def test_a_dialler_cancelled_as_the_peers_hello_arrives_stops() -> None:
    """Regression: the handshake read each answer through `asyncio.wait_for`, which on Python 3.11 returns the
    answer and drops the cancellation when both land in the same turn of the event loop. A dialler told to stop
    just as the peer's hello or proof arrived went on to serve the connection, "cancelling" but never cancelled,
    and the node's task group waited for it forever (the bounded-connections test hung about one run in 20)."""
    b = quiet_network(B, lookup_of(A, B))
    ws = _AnswerAsCancelled(codec.encode(Hello(ORIGIN, GENESIS, A.name, bytes(32))))
    handshaking = asyncio.create_task(b._handshake(ws))  # type: ignore[arg-type]
    ws.reader = handshaking
    await asyncio.wait([handshaking], timeout=5)
    assert handshaking.cancelled()


async def test_a_node_stops_even_if_a_dialler_swallows_its_cancellation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: the diallers ran in a task group, which waits without bound for every child; a dialler that
    lost its cancellation below it kept the node from stopping. Stopping now cancels again and gives up in time."""

    async def deaf_dialler(self: PeerNetwork, base_url: str) -> None:
        # The bug being guarded against: a cancellation lost somewhere below the dialler.
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        await asyncio.Event().wait()

    monkeypatch.setattr(PeerNetwork, "_dial_forever", deaf_dialler)
    monkeypatch.setattr(peers, "CLOSE_TIMEOUT_S", 0.2)
    network = quiet_network(B, lookup_of(A, B), config=P2PConfig(peers=("http://127.0.0.1:9",)))
    running = asyncio.create_task(network.run())
    await asyncio.sleep(0.05)
    running.cancel()
    done, _ = await asyncio.wait([running], timeout=5)
    assert running in done and running.cancelled()


async def _ping_then_stall(ws: aiohttp.ClientWebSocketResponse | web.WebSocketResponse) -> None:
    """The peer's side of a loaded machine: on the node's heartbeat ping it sends a ping of its own, then the event
    loop stalls past the node's pong deadline, so the node's heartbeat gives up (closing the transport) with the
    peer's ping already read and waiting to be answered."""
    while (await ws.receive(timeout=5)).type is not aiohttp.WSMsgType.PING:
        pass
    await ws.ping()
    time.sleep(3 * peers.HEARTBEAT_S)  # the stall is the point: an event loop starved by CPU load


def _peer_lines(events: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in events if e.get("peer") == "b.test" and e["event"] != "peer connected"]


async def test_a_ping_to_answer_on_a_closing_transport_ends_an_accepted_connection_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: "ClientConnectionResetError: Cannot write to closing transport" under load. aiohttp answers a
    peer's ping inside `receive()`; when the node's heartbeat had just given up on the peer and closed the
    transport, that pong raised out of the read loop and out of the `/v1/peer` handler, and aiohttp logged
    "Error handling request" with the traceback."""
    monkeypatch.setattr(peers, "HEARTBEAT_S", 0.2)
    members = lookup_of(A, B)
    b = quiet_network(B, members)
    a = quiet_network(A, members, metrics=(metrics := Metrics()))
    app = web.Application()
    app.router.add_get(PEER_PATH, a.handle)
    # Served as the node serves it: aiohttp's test server cancels a handler whose connection is lost, which the
    # node's server does not, and an error raised by the handler would not reach aiohttp's log.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        with structlog.testing.capture_logs() as events:
            async with aiohttp.ClientSession() as session, session.ws_connect(url + PEER_PATH, autoping=False) as ws:
                assert await b._handshake(ws) == "a.test"
                await _ping_then_stall(ws)
                await until(lambda: a.connected() == [])
                await asyncio.sleep(0.1)  # the handler returns after its connection's clean-up
    finally:
        await a.close()
        await runner.cleanup()
    errors = metrics.registry.get_sample_value("credledger_peer_errors_total", {"reason": "connection"})
    assert errors == 1
    assert not metrics.registry.get_sample_value("credledger_peer_errors_total", {"reason": "frame"})
    assert [(e["event"], e["log_level"]) for e in _peer_lines(events)] == [("peer disconnected", "info")]
    assert "closing transport" in str(_peer_lines(events)[0]["error"])
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_a_ping_to_answer_on_a_closing_transport_ends_a_dialled_connection_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The same on the dialling side: the pong's error left the read loop and was logged as "peer unreachable",
    a peer the node had been connected to, and the connection's end was not counted."""
    monkeypatch.setattr(peers, "HEARTBEAT_S", 0.2)
    members = lookup_of(A, B)
    b = quiet_network(B, members)
    stalled = asyncio.Event()

    async def stalling(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await b._handshake(ws)
        if not stalled.is_set():
            stalled.set()
            await _ping_then_stall(ws)
        await asyncio.sleep(30)
        return ws

    app = web.Application()
    app.router.add_get(PEER_PATH, stalling)
    server = TestServer(app, host="127.0.0.1", port=0, shutdown_timeout=1.0)
    with structlog.testing.capture_logs() as events:
        async with server, peer(A, members, dial=(str(server.make_url("")).rstrip("/"),)) as a:
            await until(lambda: a.errors("connection") >= 1)
            await until(lambda: any(e["event"] == "peer disconnected" for e in events))
    ended = _peer_lines(events)
    assert [(e["event"], e["log_level"]) for e in ended][:1] == [("peer disconnected", "info")]
    assert "closing transport" in str(ended[0]["error"])
    assert not [e for e in events if e["event"] == "peer unreachable"]
    assert a.errors("frame") == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


class _FakeSocket:
    """A socket that hands out `received`; with `closing`, its transport is closing and every write fails the way
    aiohttp's does."""

    def __init__(self, *, closing: bool, received: aiohttp.WSMessage | None = None) -> None:
        self.closing = closing
        self.received = received
        self.closed = False

    async def send_bytes(self, data: bytes) -> None:
        if self.closing:
            raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")

    async def receive(self) -> aiohttp.WSMessage:
        assert self.received is not None
        return self.received

    async def close(self, **_: object) -> bool:
        self.closed = True
        return True


async def test_a_frame_written_to_a_closing_transport_is_recorded_once_for_the_connections_end() -> None:
    """The send pump used to log its own "peer send failed" beside the read loop's lines for the same end."""
    ws = _FakeSocket(closing=True)
    conn = _Connection("b.test", ws, 4)  # type: ignore[arg-type]
    conn.offer(b"\x01vote")
    with structlog.testing.capture_logs() as events:
        async with asyncio.timeout(2):
            await conn.pump()
    assert conn.failure == "Cannot write to closing transport"
    assert ws.closed and events == []


async def test_a_connection_lost_during_the_handshake_is_not_the_peer_refusing_us() -> None:
    """aiohttp's ERROR message in the handshake used to be a "peer refused" warning counted as a handshake error;
    it is our side of the socket failing, which the callers treat as a connection gone."""
    lost = aiohttp.WSMessage(aiohttp.WSMsgType.ERROR, ConnectionResetError("Connection lost"), None)
    b = quiet_network(B, lookup_of(A, B))
    ws = _FakeSocket(closing=False, received=lost)
    with pytest.raises(ConnectionResetError, match="Connection lost"):
        await b._handshake(ws)  # type: ignore[arg-type]
