"""Catching up: fetch certified blocks from peers and apply them through the consensus machine.

A node is behind when it restarts, joins late, or is a read replica that never votes. The syncer asks each
peer's public API for its height (`GET /v1/status`) every `interval`, or at once when consensus messages from a
later height arrive, and fetches the missing blocks (`GET /v1/blocks/{height}` in their canonical msgpack form)
from the highest peer first, up to `batch` requests at once, applied strictly in height order. Every block goes
through `Driver.apply_certified`, so the machine checks its certificate against the validator set of that height
and the chain checks every rule and root before anything is stored: a peer can make the syncer waste a request,
never corrupt the chain. A peer that serves a block that fails verification (or another height than asked for)
is skipped for the rest of that round of catching up, logged and counted in `credledger_peer_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import aiohttp
import structlog

from consensus.errors import MessageOutOfWindow
from ledger import codec
from ledger.block import CertifiedBlock
from ledger.errors import CredledgerError, InvalidBlock
from node.driver import Driver

MSGPACK = "application/msgpack"
#: Largest certified block accepted from a peer.
MAX_BLOCK_BYTES = 64 * 1024 * 1024
#: Largest status document read from a peer (a real one is well under a kilobyte).
MAX_STATUS_BYTES = 64 * 1024

log = structlog.get_logger("credledger.sync")


class Syncer:
    """Keeps a node's chain up with its peers' by fetching certified blocks over their public APIs."""

    def __init__(self, driver: Driver, peers: tuple[str, ...], *, interval_s: float = 1.0, batch: int = 64) -> None:
        self.driver = driver
        self.peers = tuple(p.rstrip("/") for p in peers)
        self.interval_s = interval_s
        self.batch = batch
        self.syncing = False

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30, connect=3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.driver.behind.wait(), self.interval_s)
                await self.catch_up(session)

    async def catch_up(self, session: aiohttp.ClientSession) -> None:
        """Fetch and apply blocks until no reachable peer is ahead."""
        heights = await asyncio.gather(*(self._height(session, p) for p in self.peers))
        ahead = sorted(
            (
                (h, p)
                for h, p in zip(heights, self.peers, strict=True)
                if h is not None and h > self.driver.chain.height
            ),
            reverse=True,
        )
        if not ahead:
            self.driver.behind.clear()
            return
        self.syncing = True
        try:
            for target, peer in ahead:
                if not await self._fetch_from(session, peer, target):
                    continue
                if self.driver.chain.height >= target:
                    break
        finally:
            self.syncing = False

    async def _height(self, session: aiohttp.ClientSession, peer: str) -> int | None:
        try:
            async with session.get(f"{peer}/v1/status") as response:
                if response.status != 200:
                    return None
                raw = await response.content.read(MAX_STATUS_BYTES + 1)
            body = json.loads(raw) if len(raw) <= MAX_STATUS_BYTES else None
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError, RecursionError):
            return None
        height = body.get("height") if isinstance(body, dict) else None
        return height if isinstance(height, int) and height >= 0 else None

    async def _fetch_from(self, session: aiohttp.ClientSession, peer: str, target: int) -> bool:
        """Apply blocks from `peer` up to `target`; False if the peer failed or misbehaved.

        Up to `batch` blocks are requested at once, so a long catch-up pays the round trip once per batch rather
        than once per block; they are applied strictly in height order."""
        chain = self.driver.chain
        while chain.height < target:
            first = chain.height + 1
            heights = range(first, min(target, first + self.batch - 1) + 1)
            fetched = await asyncio.gather(*(self._fetch(session, peer, h) for h in heights))
            for height, raw in zip(heights, fetched, strict=True):
                if raw is None:
                    return False
                if chain.height >= height:
                    continue  # consensus decided it while we were fetching
                if not self._apply(peer, height, raw):
                    return False
            if chain.height < first:
                return False  # nothing applied: never ask the same peer for the same blocks in a loop
            # Let the API and consensus breathe between batches.
            await asyncio.sleep(0)
        return True

    async def _fetch(self, session: aiohttp.ClientSession, peer: str, height: int) -> bytes | None:
        """The canonical encoding of certified block `height` from `peer`, or None if it cannot serve it."""
        try:
            async with session.get(f"{peer}/v1/blocks/{height}", headers={"Accept": MSGPACK}) as response:
                if response.status != 200:
                    log.info("peer cannot serve block", peer=peer, height=height, status=response.status)
                    return None
                raw = await response.content.read(MAX_BLOCK_BYTES + 1)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            log.info("peer unreachable for sync", peer=peer, error=str(exc) or type(exc).__name__)
            return None
        if len(raw) > MAX_BLOCK_BYTES:
            log.warning("peer served an oversized block", peer=peer, height=height)
            self.driver.chain.metrics.peer_errors.labels("bad-block").inc()
            return None
        return raw

    def _apply(self, peer: str, height: int, raw: bytes) -> bool:
        """Check and commit one fetched block; False (and counted) if the peer served something invalid."""
        try:
            certified = codec.decode(CertifiedBlock, raw, max_bytes=MAX_BLOCK_BYTES)
            if certified.header.height != height:
                raise InvalidBlock(f"asked for block {height}, got block {certified.header.height}")
            self.driver.apply_certified(certified)
        except MessageOutOfWindow:
            return True  # decided meanwhile by consensus: nothing to do
        except CredledgerError as exc:
            log.warning("peer served an invalid block", peer=peer, height=height, reason=str(exc))
            self.driver.chain.metrics.peer_errors.labels("bad-block").inc()
            return False
        return True
