"""Split-view monitoring against real nodes on 127.0.0.1: honest nodes pass; nodes on two forks certified by the
same validators (keys the test holds), or a node that switches forks, are caught with both notes as evidence."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from aiohttp import ClientSession, web

from credledger.cli.main import main as run_cli
from credledger.ledger.block import verify_certificate
from credledger.ledger.genesis import write_genesis
from credledger.ledger.note import SignedNote
from credledger.verifier.monitor import Monitor, MonitorResult
from tests.apinode import ApiNode, api_node
from tests.factories import digest, issue, make_network
from tests.forge import serve


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[ApiNode, ApiNode]]:
    """Two nodes of one network with the same first block; each then commits its own second block."""
    network = make_network(4)
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(api_node(tmp_path / "a", network=network))
        b = await stack.enter_async_context(api_node(tmp_path / "b", network=network))
        m0 = network["m0.test"]
        shared = [issue(m0, digest("shared"), time_ms=a.application.now_ms())]
        a.decide(shared)
        b.decide(shared)
        yield a, b


def fork(a: ApiNode, b: ApiNode) -> None:
    """Every validator signs a different block at height 2 on each node: equivocation."""
    m1 = a.network["m1.test"]
    a.decide([issue(m1, digest("only on a"), time_ms=a.application.now_ms())])
    b.decide([issue(m1, digest("only on b"), time_ms=b.application.now_ms())])


async def monitor(urls: list[str], node: ApiNode, tmp_path: Path, rounds: int = 1) -> MonitorResult:
    watcher = Monitor(urls, node.network.genesis, evidence=tmp_path / "evidence.json", sleep=lambda _s: None)
    return await asyncio.to_thread(watcher.run, rounds=rounds, interval=0.01)


async def test_honest_nodes_one_lagging_show_no_split_view(nodes: tuple[ApiNode, ApiNode], tmp_path: Path) -> None:
    a, b = nodes
    m0 = a.network["m0.test"]
    for i in range(3):
        a.decide([issue(m0, digest(f"more{i}"), time_ms=a.application.now_ms())])
    result = await monitor([a.url, b.url], a, tmp_path, rounds=2)
    assert result.rounds == 2 and not result.split_views and not result.faults
    assert {node: seen.checkpoint.height for node, seen in result.latest.items()} == {a.url: 4, b.url: 1}


async def test_two_nodes_on_two_certified_forks_are_a_split_view(
    nodes: tuple[ApiNode, ApiNode], tmp_path: Path
) -> None:
    a, b = nodes
    fork(a, b)
    result = await monitor([a.url, b.url], a, tmp_path)
    assert len(result.split_views) == 1
    split = result.split_views[0]
    assert {split.first.node, split.second.node} == {a.url, b.url}
    assert "two certified checkpoints for height 2" in split.detail
    evidence = json.loads((tmp_path / "evidence.json").read_text())
    assert len(evidence) == 1 and evidence[0]["kind"] == "split-view"
    validators = a.network.genesis.validator_set()
    notes = [evidence[0][side]["note"] for side in ("first", "second")]
    # The evidence is portable: both notes verify with nothing but the validators' keys, and disagree.
    checkpoints = [verify_certificate(SignedNote.parse(note), validators)[0] for note in notes]
    assert checkpoints[0].height == checkpoints[1].height == 2
    assert checkpoints[0].header_hash != checkpoints[1].header_hash


async def test_a_fork_at_a_lower_height_is_found_through_the_consistency_proof(
    nodes: tuple[ApiNode, ApiNode], tmp_path: Path
) -> None:
    a, b = nodes
    fork(a, b)
    m0 = a.network["m0.test"]
    for i in range(2):
        b.decide([issue(m0, digest(f"b{i}"), time_ms=b.application.now_ms())])
    result = await monitor([a.url, b.url], a, tmp_path)  # a at height 2, b at height 4: no height in common
    assert len(result.split_views) == 1
    split = result.split_views[0]
    assert split.first.node == a.url and split.second.node == b.url
    assert split.first.checkpoint.height == split.second.checkpoint.height == 2
    assert "does not extend" in split.detail


def switching_proxy(upstreams: list[str]) -> tuple[web.Application, list[int]]:
    """A node that forwards every request to upstreams[choice[0]]: a node rigged to change its view."""
    choice = [0]

    async def forward(request: web.Request) -> web.Response:
        url = upstreams[choice[0]] + request.path_qs
        headers = {"Accept": request.headers.get("Accept", "*/*")}
        async with ClientSession() as session, session.get(url, headers=headers) as answer:
            body = await answer.read()
            return web.Response(body=body, status=answer.status, content_type=answer.content_type)

    app = web.Application()
    app.router.add_get("/{tail:.*}", forward)
    return app, choice


async def test_a_node_that_switches_forks_is_caught_by_its_own_successive_checkpoints(
    nodes: tuple[ApiNode, ApiNode], tmp_path: Path
) -> None:
    a, b = nodes
    fork(a, b)
    m0 = a.network["m0.test"]
    b.decide([issue(m0, digest("b later"), time_ms=b.application.now_ms())])
    app, choice = switching_proxy([a.url, b.url])
    async with serve(app) as rigged:
        watcher = Monitor([rigged], a.network.genesis, sleep=lambda _s: None)
        first = await asyncio.to_thread(watcher.run, rounds=1)
        assert not first.split_views and first.latest[rigged].checkpoint.height == 2
        choice[0] = 1
        second = await asyncio.to_thread(watcher.run, rounds=1)
    assert len(second.split_views) == 1
    assert second.split_views[0].first.checkpoint.height == 2
    assert second.split_views[0].first.checkpoint.header_hash != second.split_views[0].second.checkpoint.header_hash


async def test_a_checkpoint_without_a_quorum_is_a_fault_not_a_split_view(
    nodes: tuple[ApiNode, ApiNode], tmp_path: Path
) -> None:
    a, _ = nodes
    note = SignedNote.parse((await (await a.client.get("/v1/checkpoint")).read()).decode())
    weak = SignedNote(note.text, note.signatures[:2]).format()

    async def checkpoint(_request: web.Request) -> web.Response:
        return web.Response(text=weak, content_type="text/plain")

    app = web.Application()
    app.router.add_get("/v1/checkpoint", checkpoint)
    async with serve(app) as liar:
        result = await monitor([liar, a.url], a, tmp_path)
    assert not result.split_views
    assert [(f.node, f.kind) for f in result.faults] == [(liar, "invalid-checkpoint")]
    assert "need more than 2/3" in result.faults[0].detail


async def test_cli_monitor_exit_codes(
    nodes: tuple[ApiNode, ApiNode], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = nodes
    genesis = tmp_path / "genesis.json"
    write_genesis(a.network.genesis, genesis)
    base = ["monitor", "--node", a.url, "--node", b.url, "--genesis", str(genesis), "--interval", "0.05"]
    assert await asyncio.to_thread(run_cli, [*base, "--rounds", "2"]) == 0
    assert "2 rounds, 0 faults: no split view seen" in capsys.readouterr().out
    fork(a, b)
    evidence = tmp_path / "split.json"
    assert await asyncio.to_thread(run_cli, [*base, "--duration", "0.01", "--evidence", str(evidence)]) == 1
    captured = capsys.readouterr()
    assert "1 SPLIT VIEW(S) FOUND" in captured.out and "SPLIT VIEW: two certified checkpoints" in captured.err
    assert len(json.loads(evidence.read_text())) == 1
    assert await asyncio.to_thread(run_cli, [*base, "--rounds", "0"]) == 2
