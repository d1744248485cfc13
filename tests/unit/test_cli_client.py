"""The client commands (`issue`, `revoke`, `suspend`, `reinstate`, `status`) against a real node on 127.0.0.1.

The command runs in a worker thread (it is synchronous, over urllib) while the node serves on the test's loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from aiohttp import web
from aiohttp.test_utils import TestServer

from credledger.cli.main import main
from credledger.ledger.events import Issue, Reinstate, Revoke, Suspend, decode_event
from credledger.ledger.state import Status, get_credential
from credledger.verifier.client import NodeClient, NodeProblem, NodeUnreachable
from tests.apinode import TEST_API, ApiNode, api_node
from tests.factories import Network, digest, issue

CREDENTIAL: dict[str, Any] = {
    "@context": ["https://www.w3.org/ns/credentials/v2"],
    "type": ["VerifiableCredential"],
    "n": 1,
}


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    # Commands sign with the real clock, so the chain's clock is the real one too.
    async with api_node(tmp_path, clock=time.time) as n:
        yield n


def key_files(tmp_path: Path, network: Network) -> dict[str, Path]:
    """Signer-key files: "<id>.issuer" and "<id>.node" for every member."""
    files = {}
    for member in network.members.values():
        for label, key in (("issuer", member.issuer), ("node", member.node)):
            path = tmp_path / f"{member.id}.{label}"
            path.write_text(key.skey() + "\n")
            files[f"{member.id}.{label}"] = path
    return files


async def run(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def run_and_commit(node: ApiNode, *argv: str) -> int:
    """Run a --wait command while this loop commits whatever it submits."""

    async def commit_when_pending() -> None:
        while not node.application.mempool:
            await asyncio.sleep(0.005)
        node.decide()

    committer = asyncio.create_task(commit_when_pending())
    code = await run(*argv)
    await committer
    return code


def status_of(node: ApiNode, credential: bytes) -> str | None:
    with node.application.store.snapshot() as snap:
        record = get_credential(snap.state_view(), credential)
    return None if record is None else record.status


async def test_issue_a_json_credential_and_wait_for_commit(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = key_files(tmp_path, node.network)
    credential = tmp_path / "diploma.json"
    credential.write_text(json.dumps(CREDENTIAL, indent=4))  # formatting does not change the digest (JCS)
    expected = hashlib.sha256(rfc8785.dumps(CREDENTIAL)).digest()
    code = await run_and_commit(
        node, "issue", str(credential), "--key", str(keys["m0.test.issuer"]), "--node", node.url, "--wait"
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"issue of {expected.hex()} committed" in out and "at log index 0 in block 1" in out
    assert status_of(node, expected) == Status.ACTIVE


async def test_issue_with_expiry_and_components_prints_json(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = key_files(tmp_path, node.network)
    base = ["--key", str(keys["m0.test.issuer"]), "--node", node.url]
    assert await run("issue", digest("part").hex(), *base) == 0
    node.decide()
    capsys.readouterr()
    args = ["issue", digest("whole").hex(), *base, "--expires", "2030-01-01", "--component", digest("part").hex()]
    assert await run(*args, "--json") == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["kind"] == "issue" and answer["digest"] == digest("whole").hex()
    assert answer["results"][0]["status"] == "pending"
    pending = node.application.mempool.get(bytes.fromhex(answer["results"][0]["id"]))
    assert pending is not None
    assert pending.event.payload == Issue(digest("whole"), "m0.test", 1_893_456_000_000, (digest("part"),))
    assert pending.event.origin == node.network.genesis.origin  # asked from the node's status


async def test_suspend_reinstate_and_revoke_by_the_issuer_and_by_governance(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = key_files(tmp_path, node.network)
    cred = digest("c").hex()
    issuer = ["--key", str(keys["m0.test.issuer"]), "--node", node.url]
    assert await run("issue", cred, *issuer) == 0
    assert await run("suspend", cred, *issuer, "--reason", "on-hold") == 0
    node.decide()
    assert status_of(node, digest("c")) == Status.SUSPENDED
    assert await run("reinstate", cred, *issuer) == 0
    node.decide()
    assert status_of(node, digest("c")) == Status.ACTIVE
    governance = [arg for i in range(3) for arg in ("--governance", str(keys[f"m{i}.test.node"]))]
    assert await run_and_commit(node, "revoke", cred, *governance, "--reason", "17", "--node", node.url, "--wait") == 0
    assert status_of(node, digest("c")) == Status.REVOKED
    with node.application.store.snapshot() as snap:
        kinds = [type(decode_event(snap.entry(i)).payload) for i in range(snap.log_size)]
    assert kinds == [Issue, Suspend, Reinstate, Revoke]
    assert "committed" in capsys.readouterr().out


async def test_a_refusal_exits_1_naming_the_rule(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = key_files(tmp_path, node.network)
    cred = digest("c").hex()
    assert await run("issue", cred, "--key", str(keys["m0.test.issuer"]), "--node", node.url) == 0
    node.decide()
    capsys.readouterr()
    assert await run("revoke", cred, "--key", str(keys["m1.test.issuer"]), "--node", node.url) == 1
    err = capsys.readouterr().err
    assert "refused by the node (403 unauthorized, rule not-the-issuer)" in err
    assert "only 'm0.test' or governance may do this" in err
    assert await run("revoke", cred, "--key", str(keys["m1.test.issuer"]), "--node", node.url, "--json") == 1
    assert json.loads(capsys.readouterr().out)["rule"] == "not-the-issuer"
    assert status_of(node, digest("c")) == Status.ACTIVE


async def test_a_node_key_given_as_issuer_key_is_named_as_one(
    node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    member = node.network["m0.test"]
    directory = tmp_path / "m0"  # as `credledger init` lays it out
    directory.mkdir()
    (directory / "node.key").write_text(member.node.skey() + "\n")
    (directory / "issuer.key").write_text(member.issuer.skey() + "\n")
    assert await run("issue", digest("c").hex(), "--key", str(directory / "issuer.key"), "--node", node.url) == 0
    node.decide()
    capsys.readouterr()
    for kind in ("issue", "revoke"):
        assert await run(kind, digest("c").hex(), "--key", str(directory / "node.key"), "--node", node.url) == 2
        err = capsys.readouterr().err
        assert f"--key {directory / 'node.key'}: this is the node key of m0.test" in err, err
        assert f"sign credentials with an issuer key ({directory / 'issuer.key'})" in err
        assert "governance-power" not in err
    assert status_of(node, digest("c")) == Status.ACTIVE


async def test_status_prints_lines_or_json(node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = key_files(tmp_path, node.network)
    assert await run("issue", digest("a").hex(), "--key", str(keys["m0.test.issuer"]), "--node", node.url) == 0
    node.decide()
    capsys.readouterr()
    assert await run("status", "--node", node.url) == 0
    out = capsys.readouterr().out
    assert f"origin      {node.network.genesis.origin}" in out
    assert "height      1" in out and "signed by m0.test, m1.test, m2.test, m3.test" in out
    assert await run("status", "--node", node.url, "--json") == 0
    assert json.loads(capsys.readouterr().out)["log"]["size"] == 1


async def test_wait_that_times_out_exits_3_and_names_the_pending_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with api_node(tmp_path, clock=time.time, api=replace(TEST_API, commit_wait_ms=50)) as node:
        keys = key_files(tmp_path, node.network)
        code = await run("issue", digest("a").hex(), "--key", str(keys["m0.test.issuer"]), "--node", node.url, "--wait")
        assert code == 3
        err = capsys.readouterr().err
        event_id = next(iter(node.application.mempool.take(1, 1 << 20))).event_id.hex()
        assert "504 commit-timeout" in err and f"still pending: {event_id}" in err


async def test_usage_errors_exit_2(node: ApiNode, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = key_files(tmp_path, node.network)
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("PRIVATE+KEY+nope")
    cases = [
        (["issue", str(tmp_path / "missing.json"), "--key", str(keys["m0.test.issuer"])], "cannot read it as a file"),
        (["issue", digest("a").hex(), "--key", str(bad_key)], "key file"),
        (["issue", digest("a").hex(), "--key", str(keys["m0.test.issuer"]), "--expires", "soon"], "--expires"),
        (["revoke", digest("a").hex(), "--key", str(keys["m0.test.issuer"]), "--reason", "bored"], "--reason"),
    ]
    for argv, message in cases:
        assert await run(*argv, "--node", node.url) == 2, argv
        assert message in capsys.readouterr().err
    repeated = ["--governance", str(keys["m0.test.node"])] * 2
    assert await run("revoke", digest("a").hex(), *repeated, "--node", node.url) == 2
    assert "more than one key of m0.test" in capsys.readouterr().err
    assert await run("status", "--node", "ftp://example") == 2
    assert len(node.application.mempool) == 0


async def test_an_unreachable_node_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert await run("status", "--node", f"http://127.0.0.1:{port}", "--timeout", "2") == 3
    assert "cannot reach the node" in capsys.readouterr().err


async def test_something_that_is_not_a_node_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    async def gateway_error(_request: web.Request) -> web.Response:
        return web.Response(status=502, text="<html>bad gateway</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/v1/status", gateway_error)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        url = str(server.make_url("")).rstrip("/")
        assert await run("status", "--node", url) == 3
        assert "HTTP 502 <html>bad gateway</html>" in capsys.readouterr().err
        client = NodeClient(url)
        with pytest.raises(NodeUnreachable, match="502"):
            await asyncio.to_thread(client.status)


async def test_events_submitted_in_their_encodings_are_one_msgpack_batch(node: ApiNode) -> None:
    client = NodeClient(node.url)
    member = node.network.members[node.network.ids[0]]
    now = int(time.time() * 1000)
    first, second = (issue(member, digest(label), time_ms=now) for label in ("msgpack-1", "msgpack-2"))
    answer = await asyncio.to_thread(client.submit_encoded, [first.encode(), second.encode()])
    assert answer["results"] == [{"id": e.id.hex(), "status": "pending"} for e in (first, second)]
    with pytest.raises(NodeProblem) as caught:  # one event is a batch too: each event's outcome in `results`
        await asyncio.to_thread(client.submit_encoded, [first.encode()])
    assert caught.value.code == "batch-refused"
    assert caught.value.body["results"][0]["problem"]["type"].endswith(":duplicate-event")


async def test_client_turns_problems_into_typed_errors(node: ApiNode) -> None:
    client = NodeClient(node.url + "/")
    with pytest.raises(NodeProblem) as caught:
        await asyncio.to_thread(client.event, b"\x00" * 32)
    problem = caught.value
    assert (problem.status, problem.code, problem.rule) == (404, "unknown-event", None)
    assert "no committed or pending event" in problem.detail
    with pytest.raises(NodeProblem, match="503 no-checkpoint"):
        await asyncio.to_thread(client.checkpoint)
    with pytest.raises(ValueError, match="http:// or https://"):
        NodeClient("file:///etc/passwd")
