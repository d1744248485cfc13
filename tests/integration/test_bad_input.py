"""Bad input against a running network: every bad request gets its precise RFC 9457 problem, every bad peer is
refused or counted, the network keeps committing, and nothing it committed changes.

Each test records the certified header at the current height on every node first, and afterwards checks that
the network moved on by at least two blocks and still holds exactly those headers.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import http.client
import json
import os
import socket
import subprocess
import sys
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from credledger.ledger import codec, domains
from credledger.ledger.events import Event, Revoke, Signature, UnsignedEvent, sign_event
from credledger.ledger.keys import SigningKey
from credledger.ledger.votes import encode_message, sign_prevote
from credledger.node.peers import KIND_CONSENSUS, KIND_EVENT, PEER_PATH, Hello, Proof, challenge
from tests.conftest import PROJECT_ROOT
from tests.factories import digest
from tests.integration.cluster import Cluster, Node, free_port, now_ms, running
from tests.integration.conftest import CLUSTERS

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster.create(tmp_path_factory.mktemp("bad-input"))
    with running(cluster):
        cluster.wait_height(1)
        yield cluster


@pytest.fixture(autouse=True)
def _show_logs_on_failure(net: Cluster, request: pytest.FixtureRequest) -> None:
    request.node.stash.setdefault(CLUSTERS, []).append(net)


@contextmanager
def nothing_changes(net: Cluster) -> Iterator[None]:
    """The block at the current height is the same on every node before and after, and two more follow."""
    height = min(net.height(n) for n in net.validators)
    before = [net.block(n, height)["header"] for n in net.validators]
    yield
    net.wait_progress(2, net.validators)
    after = [net.block(n, height)["header"] for n in net.validators]
    assert after == before
    assert all(header == before[0] for header in before)


def post(
    node: Node,
    body: bytes,
    *,
    content_type: str = "application/json",
    path: str = "/v1/events",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST raw bytes and return the status and the problem (or JSON) document."""
    connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type, **(headers or {})})
        response = connection.getresponse()
        data = response.read()
        kind = response.getheader("Content-Type", "")
    finally:
        connection.close()
    document = json.loads(data) if kind.startswith(("application/json", PROBLEM)) else {"raw": data.decode()}
    if response.status >= 400:
        assert kind.startswith(PROBLEM), f"{response.status} answered as {kind}"
    return response.status, document


def encoded(event: Event) -> dict[str, str]:
    return {"encoded": base64.b64encode(event.encode()).decode()}


def body_of(*events: Event) -> bytes:
    items = [encoded(e) for e in events]
    return json.dumps({"event": items[0]} if len(items) == 1 else {"events": items}).encode()


def assert_problem(
    answer: tuple[int, dict[str, Any]], status: int, code: str, detail: str, rule: str | None = None
) -> None:
    got, problem = answer
    assert (got, problem.get("type")) == (status, f"urn:credledger:problem:{code}"), problem
    assert problem["status"] == status
    assert detail in problem["detail"], problem["detail"]
    if rule is not None:
        assert problem.get("rule") == rule, problem


# --- HTTP ---------------------------------------------------------------------------------------------------------


def test_malformed_and_mistyped_bodies_are_400_naming_what_is_wrong(net: Cluster) -> None:
    node = net.validators[0]
    with nothing_changes(net):
        assert_problem(post(node, b'{"event": '), 400, "malformed", "not valid JSON")
        assert_problem(post(node, b"\xff\xfe"), 400, "malformed", "not UTF-8")
        assert_problem(post(node, b"[]"), 400, "malformed", "expected an object")
        assert_problem(post(node, b'{"event": {"encoded": 5}}'), 400, "malformed", "event.encoded: expected a base64")
        assert_problem(post(node, b'{"event": {"encoded": "!!"}}'), 400, "malformed", "expected standard base64")
        assert_problem(post(node, b'{"events": "many"}'), 400, "malformed", "expected a non-empty list")
        assert_problem(post(node, b'{"event": {"origin": 7}}'), 400, "malformed", "event")
        garbage = base64.b64encode(os.urandom(64)).decode()
        assert_problem(post(node, json.dumps({"event": {"encoded": garbage}}).encode()), 400, "malformed", "event")
        assert_problem(post(node, b"{}", content_type="text/plain"), 415, "unsupported-media-type", "text/plain")
        assert_problem(post(node, b"{}", path="/v1/events?wait=soon"), 400, "malformed", "'wait'")


def test_oversized_bodies_and_batches_are_413(net: Cluster) -> None:
    node = net.validators[1]
    with nothing_changes(net):
        too_big = b" " * (4 * 1024 * 1024 + 1)
        assert_problem(post(node, too_big), 413, "body-too-large", "limit")
        # Without a length (chunked), the node stops reading at the limit.
        connection = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
        try:
            chunks = (b" " * 65536 for _ in range(80))
            connection.request(
                "POST", "/v1/events", body=chunks, headers={"Content-Type": "application/json"}, encode_chunked=True
            )
            response = connection.getresponse()
            assert response.status == 413
            assert json.loads(response.read())["type"] == "urn:credledger:problem:body-too-large"
        finally:
            connection.close()
        batch = [net.issue("m1.test", digest(f"batch {i}")) for i in range(1001)]
        assert_problem(post(node, body_of(*batch)), 413, "batch-too-large", "1001 events")
        # Nothing of the refused batch was admitted.
        assert net.get(node, "/v1/status")["mempool"]["events"] == 0


def raw_exchange(node: Node, request: bytes) -> tuple[int, str, dict[str, Any]]:
    """Send raw bytes on a fresh connection; the status, content type and JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers.get("content-type", ""), json.loads(body)


def test_unparseable_requests_get_problem_documents_not_plain_text(net: Cluster) -> None:
    node = net.validators[0]
    cases = [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "url-too-long", "request URL is longer"),
        (
            b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n",
            431,
            "headers-too-large",
            "header line is longer",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
            431,
            "headers-too-large",
            "too many header lines",
        ),
        (b"\x00\x01garbage line\r\n\r\n", 400, "malformed-request", "request line is not valid HTTP/1.1"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400, "malformed-request", "HTTPS traffic"),
    ]
    with nothing_changes(net):
        for request, status, code, detail in cases:
            got, kind, problem = raw_exchange(node, request)
            assert (got, kind.split(";")[0]) == (status, PROBLEM), (request[:40], got, kind)
            assert problem["type"] == f"urn:credledger:problem:{code}" and problem["status"] == status
            assert detail in problem["detail"], problem["detail"]
        assert net.get(node, "/healthz") == {"status": "ok"}


def test_uppercase_digests_and_ids_are_refused_on_every_route_that_takes_one(net: Cluster) -> None:
    node = net.validators[0]
    event = net.submit(node, net.issue("m0.test", digest("upper")))["results"][0]
    upper_id = event["id"].upper()
    credential = digest("upper").hex().upper()
    for path, what in ((f"/v1/events/{upper_id}", "event id"), (f"/v1/credentials/{credential}", "credential digest")):
        with pytest.raises(urllib.error.HTTPError) as refused:
            net.get(node, path)
        assert refused.value.code == 400
        problem = json.loads(refused.value.read())
        assert problem["type"] == "urn:credledger:problem:malformed"
        assert f"{what}: digests and ids are lowercase hexadecimal" in problem["detail"]
        assert net.get(node, path.lower())  # the lowercase form answers
    assert net.get(node, f"/v1/events/{event['id']}")["status"] == "committed"


def test_forged_replayed_foreign_and_unauthorised_events_are_refused_by_rule(net: Cluster) -> None:
    m0, m1, m2, m3 = net.validators
    credential = digest("target")
    issued = net.issue("m0.test", credential)
    net.submit(m0, issued)
    with nothing_changes(net):
        # A forged signature: m2 names m0's issuer key but signs with a key of its own.
        forger = SigningKey("m0.test", os.urandom(32))
        real = net.members["m0.test"].issuer
        genuine = net.issue("m0.test", digest("forged"))
        forged = dataclasses.replace(
            genuine, signatures=(Signature("m0.test", real.key_id, forger.sign(domains.EVENT, genuine.signed_bytes())),)
        )
        assert_problem(post(m2, body_of(forged)), 403, "unauthorized", "does not verify", rule="bad-signature")
        # A replay of the committed issue, at another node.
        assert_problem(post(m1, body_of(issued)), 422, "invalid-event", "in the log already", rule="replayed-event")
        # An event made for another chain.
        foreign = sign_event(
            UnsignedEvent("credledger.test/another-chain", now_ms(), issued.payload), net.members["m0.test"].issuer
        )
        assert_problem(post(m3, body_of(foreign)), 422, "invalid-event", "another-chain", rule="wrong-origin")
        # m1 revoking m0's credential; and m1's node key alone is not governance.
        theft = net.sign(Revoke(credential, 0), net.members["m1.test"].issuer)
        assert_problem(post(m3, body_of(theft)), 403, "unauthorized", "only 'm0.test'", rule="not-the-issuer")
        lone = net.governance(Revoke(credential, 0), ["m1.test"])
        assert_problem(
            post(m0, body_of(lone)), 403, "unauthorized", "need more than 2/3", rule="insufficient-governance-power"
        )
        # An event timed an hour ahead of the node's clock.
        future = net.sign(Revoke(credential, 0), real, time_ms=now_ms() + 3_600_000)
        assert_problem(post(m1, body_of(future)), 422, "invalid-event", "after the block", rule="time-out-of-range")
    # The credential is untouched, as every node proves.
    assert {net.verdict(n, credential).status for n in net.validators} == {"valid"}


# --- peers --------------------------------------------------------------------------------------------------------


@dataclass
class Peer:
    """A test's peer connection; `closed` holds the close frame if the node refused the handshake."""

    ws: aiohttp.ClientWebSocketResponse
    closed: aiohttp.WSMessage | None = None


async def handshake(
    session: aiohttp.ClientSession,
    node: Node,
    key: SigningKey,
    *,
    origin: str,
    genesis: bytes,
) -> Peer:
    """Open the peer websocket and run the handshake as `key`'s member."""
    ws = await session.ws_connect(node.url + PEER_PATH)
    theirs = codec.decode(Hello, (await ws.receive(timeout=5)).data)
    nonce = os.urandom(32)
    await ws.send_bytes(codec.encode(Hello(origin, genesis, key.name, nonce)))
    message = await ws.receive(timeout=5)
    if message.type != aiohttp.WSMsgType.BINARY:
        return Peer(ws, message)  # refused before proofs: keep the close frame
    codec.decode(Proof, message.data)
    signature = key.sign(domains.PEER_CHALLENGE, challenge(genesis, theirs.nonce, nonce, key.name))
    await ws.send_bytes(codec.encode(Proof(signature)))
    return Peer(ws)


async def refused_with(peer: Peer) -> str:
    """The reason a node gave when it closed the peer socket."""
    ws = peer.ws
    message = peer.closed if peer.closed is not None else await ws.receive(timeout=10)
    while message.type == aiohttp.WSMsgType.BINARY:  # frames sent before the refusal
        message = await ws.receive(timeout=10)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED), message
    assert ws.close_code == aiohttp.WSCloseCode.POLICY_VIOLATION
    return str(message.extra or "")


async def test_peers_failing_the_handshake_are_refused_with_a_reason_and_counted(net: Cluster) -> None:
    node = net.validators[2]
    origin, genesis = net.genesis.origin, net.genesis.hash()
    before = net.metric(node, "credledger_peer_errors_total", reason="handshake")
    with nothing_changes(net):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            outsider = SigningKey("intruder.test", os.urandom(32))
            ws = await handshake(session, node, outsider, origin=origin, genesis=genesis)
            assert "'intruder.test' is not an active member" in await refused_with(ws)

            member = net.members["m0.test"].node
            ws = await handshake(session, node, member, origin=origin, genesis=os.urandom(32))
            assert "genesis" in await refused_with(ws)

            ws = await handshake(session, node, member, origin="credledger.test/elsewhere", genesis=genesis)
            assert "elsewhere" in await refused_with(ws)

            impostor = SigningKey("m0.test", os.urandom(32))  # a member's name, not its key
            ws = await handshake(session, node, impostor, origin=origin, genesis=genesis)
            assert "did not prove it holds its node key" in await refused_with(ws)

            raw = await session.ws_connect(node.url + PEER_PATH)
            await raw.receive(timeout=5)
            await raw.send_bytes(b"\x93not a hello")
            assert "malformed hello" in await refused_with(Peer(raw))
    after = net.metric(node, "credledger_peer_errors_total", reason="handshake")
    assert after - before == 5


async def test_garbage_from_an_authenticated_peer_is_counted_and_an_unknown_frame_closes_it(net: Cluster) -> None:
    node = net.validators[3]
    origin, genesis = net.genesis.origin, net.genesis.hash()
    member = net.members["m1.test"]

    def errors(reason: str) -> float:
        return net.metric(node, "credledger_peer_errors_total", reason=reason)

    counts = {r: errors(r) for r in ("malformed", "consensus-bad-signature", "unauthorized", "frame")}
    real = net.issue("m1.test", digest("gossiped forgery"))
    with nothing_changes(net):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            peer = await handshake(session, node, member.node, origin=origin, genesis=genesis)
            ws = peer.ws
            assert peer.closed is None and not ws.closed
            # Bytes that are no consensus message, an empty one, and a gossiped event with a forged signature:
            # each is refused and counted, and the connection stays.
            await ws.send_bytes(bytes([KIND_CONSENSUS]) + b"\x92\x01garbage")
            await ws.send_bytes(bytes([KIND_CONSENSUS]))
            forged = dataclasses.replace(real, signatures=(dataclasses.replace(real.signatures[0], sig=bytes(64)),))
            await ws.send_bytes(bytes([KIND_EVENT]) + forged.encode())
            # A prevote in m1's name signed with another key, for the height the node is deciding (if it decides
            # that height before the frame arrives, the prevote is stale and dropped unverified: send another).
            liar = SigningKey("m1.test", os.urandom(32))
            for _ in range(10):
                height = net.height(node) + 1
                await ws.send_bytes(
                    bytes([KIND_CONSENSUS]) + encode_message(sign_prevote(liar, origin, height, 0, None))
                )
                if await counted(lambda: errors("consensus-bad-signature") > counts["consensus-bad-signature"]):
                    break
            # A frame of unknown kind ends the connection, with the reason.
            await ws.send_bytes(b"\x7fwhat is this")
            assert "unknown frame: kind 127" in await refused_with(peer)
    assert errors("malformed") - counts["malformed"] == 2
    assert errors("consensus-bad-signature") - counts["consensus-bad-signature"] >= 1
    assert errors("unauthorized") - counts["unauthorized"] == 1
    assert errors("frame") - counts["frame"] == 1
    # The forged event reached no mempool and no block, on any node.
    assert {net.event_status(n, real.id) for n in net.validators} == {None}


async def counted(check: Callable[[], bool], timeout: float = 1.0) -> bool:
    """Whether `check` holds within `timeout` seconds (polled without blocking the loop for long)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def run_second(node: Node, **env: str) -> subprocess.CompletedProcess[bytes]:
    """Run another node process from `node`'s config, with environment overrides; it should refuse to start."""
    return subprocess.run(
        [sys.executable, "-m", "credledger.cli.main", "run", "--config", str(node.config)],
        cwd=PROJECT_ROOT,
        env={**os.environ, **env},
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_a_second_process_on_a_running_nodes_data_directory_or_port_is_refused(net: Cluster, tmp_path: Path) -> None:
    node = net.validators[0]
    with nothing_changes(net):
        # Same data directory: two processes would vote from two memories of what was signed.
        second = run_second(node, CREDLEDGER_API_PORT=str(free_port()))
        assert second.returncode == 2
        assert b"is in use by another running node" in second.stderr, second.stderr
        # Same port, another data directory.
        second = run_second(node, CREDLEDGER_DATA_DIR=str(tmp_path / "elsewhere"))
        assert second.returncode == 2
        assert f"cannot listen on 127.0.0.1:{node.port}: the port is in use".encode() in second.stderr, second.stderr
    assert node.running
