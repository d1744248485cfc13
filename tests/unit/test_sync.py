"""Catching up over HTTP from a real peer API: whole blocks of the largest size, and failures said out loud."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from credledger.ledger import codec
from credledger.ledger.genesis import Params
from credledger.ledger.storage.store import Store
from credledger.node.application import LedgerApplication
from credledger.node.driver import Driver
from credledger.node.mempool import Mempool
from credledger.node.sync import Syncer, max_certified_block_bytes
from tests.apinode import ApiNode, api_node
from tests.factories import T0, digest, issue, make_network

NOW = T0 / 1000 + 5
#: The genesis limits of the network under test: blocks of 2,000 events (about 350 kB), the default.
PARAMS = Params()


@dataclass
class Follower:
    chain: LedgerApplication
    driver: Driver


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path / "peer", network=make_network(4, params=PARAMS)) as node:
        yield node


@pytest.fixture
async def follower(tmp_path: Path, peer: ApiNode) -> AsyncIterator[Follower]:
    store = Store(tmp_path / "follower")
    chain = LedgerApplication(
        store, peer.network.genesis, mempool=Mempool(max_events=10, max_bytes=1 << 20), clock=lambda: NOW
    )
    driver = Driver(chain, signer=None, clock=lambda: NOW)
    driver.start()
    try:
        yield Follower(chain, driver)
    finally:
        driver.stop()
        store.close()


def full_block(peer: ApiNode) -> None:
    """Commit block 1 on the peer, holding the most events the genesis allows."""
    m0 = peer.network["m0.test"]
    peer.decide([issue(m0, digest(f"{i}"), time_ms=T0 + 1000) for i in range(PARAMS.max_block_events)])


async def test_a_block_of_the_largest_size_is_read_whole_and_applied(peer: ApiNode, follower: Follower) -> None:
    full_block(peer)
    with peer.application.store.snapshot() as snap:
        size = len(codec.encode(snap.block(1)))
    assert size > 300_000
    syncer = Syncer(follower.driver, (peer.url,))
    async with aiohttp.ClientSession() as session:
        await syncer.catch_up(session)
    assert follower.chain.height == 1
    assert syncer.failure is None and syncer.peer_height == 1


def test_the_block_bound_covers_the_largest_block_the_genesis_allows() -> None:
    bound = max_certified_block_bytes(PARAMS)
    assert bound > PARAMS.max_block_bytes
    assert bound < 2 * PARAMS.max_block_bytes


async def test_a_peer_serving_broken_blocks_makes_catch_up_fail_loudly(follower: Follower, peer: ApiNode) -> None:
    full_block(peer)

    async def status(_request: web.Request) -> web.Response:
        return web.json_response({"height": 1})

    async def block(_request: web.Request) -> web.Response:
        return web.Response(body=b"\x92\x01", content_type="application/msgpack")

    app = web.Application()
    app.router.add_get("/v1/status", status)
    app.router.add_get("/v1/blocks/{height}", block)
    liar = TestServer(app, host="127.0.0.1", port=0)
    await liar.start_server()
    try:
        url = str(liar.make_url("")).rstrip("/")
        syncer = Syncer(follower.driver, (url,))
        async with aiohttp.ClientSession() as session:
            await syncer.catch_up(session)
            assert follower.chain.height == 0
            assert syncer.failure is not None
            assert f"{url}: block 1: CertifiedBlock" in syncer.failure
            assert "at height 0 (from 0), peers at 1" in syncer.failure
            assert follower.chain.metrics.sync_failing._value.get() == 1
            syncer.peers = (peer.url,)
            await syncer.catch_up(session)
        assert follower.chain.height == 1 and syncer.failure is None
        assert follower.chain.metrics.sync_failing._value.get() == 0
    finally:
        await liar.close()


async def test_a_syncer_told_to_stop_as_it_falls_behind_stops(follower: Follower) -> None:
    """Regression: the syncer waited for `behind` through `asyncio.wait_for`, which on Python 3.11 drops a
    cancellation that lands in the same turn of the event loop as the event being set: the syncer caught up and
    went on waiting, and the node, stopping, waited for it forever."""
    syncer = Syncer(follower.driver, ())
    running = asyncio.create_task(syncer.run())
    await asyncio.sleep(0.05)  # the first round found no peer ahead; the syncer waits for `behind`

    def fall_behind_and_stop() -> None:
        follower.driver.behind.set()
        running.cancel()

    asyncio.get_running_loop().call_soon(fall_behind_and_stop)
    await asyncio.wait([running], timeout=3)
    assert running.cancelled()
