"""Catching up: fetch certified blocks from peers and apply them through the consensus machine.

A node is behind when it restarts, joins late, or is a read replica that never votes. The syncer asks each
peer's public API for its height (`GET /v1/status`) every `interval`, or at once when consensus messages from a
later height arrive, and fetches the missing blocks (`GET /v1/blocks/{height}` in their canonical msgpack form)
from the highest peer first, up to `batch` requests at once, applied strictly in height order. Every block goes
through `Driver.apply_certified`, so the machine checks its certificate against the validator set of that height
and the chain checks every rule and root before anything is stored: a peer can make the syncer waste a request,
never corrupt the chain. A peer that serves a block that fails verification (or another height than asked for)
is skipped for the rest of that round of catching up, logged and counted in `credledger_peer_errors`.

A block is read whole before it is decoded, up to `max_certified_block_bytes(params)`: the largest block the
genesis limits allow, with its header and certificate. A round of catching up that leaves the node behind a peer
it could reach is a *failure*: the syncer keeps its reason (`failure`) until a later round catches up, sets
`credledger_sync_failing`, logs a warning when it starts (and again every `FAILURE_LOG_INTERVAL_S` while it
lasts), and the API reports it in `/v1/status` and `/readyz` -- a node that serves stale answers says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import aiohttp
import structlog

from credledger.consensus.errors import MessageOutOfWindow
from credledger.ledger import codec
from credledger.ledger.block import CertifiedBlock
from credledger.ledger.errors import CredledgerError, InvalidBlock
from credledger.ledger.genesis import Params
from credledger.ledger.note import MAX_NOTE_BYTES
from credledger.node.driver import Driver

MSGPACK = "application/msgpack"
#: Largest status document read from a peer (a real one is well under a kilobyte).
MAX_STATUS_BYTES = 64 * 1024
#: Bound on a block header's encoding (`ledger.block.decode_header` refuses more).
MAX_HEADER_BYTES = 4096
#: msgpack framing: at most 5 bytes before each event's bin, and the arrays and the certificate's str.
_FRAMING_PER_EVENT = 5
_FRAMING_FIXED = 64
#: How often a lasting catch-up failure is logged again.
FAILURE_LOG_INTERVAL_S = 30.0


def max_certified_block_bytes(params: Params) -> int:
    """The largest canonical `CertifiedBlock` a peer can honestly serve under these genesis limits: every event
    byte a block may carry, their framing, the header and the certificate note."""
    return (
        params.max_block_bytes
        + _FRAMING_PER_EVENT * params.max_block_events
        + MAX_HEADER_BYTES
        + MAX_NOTE_BYTES
        + _FRAMING_FIXED
    )


class BodyTooLarge(Exception):
    """A peer's answer is larger than anything it may honestly send."""


async def read_whole(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body of `response` (never a prefix of it), or BodyTooLarge once it is known to exceed `limit`."""
    if response.content_length is not None and response.content_length > limit:
        raise BodyTooLarge(f"{response.content_length} bytes announced, the limit is {limit}")
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_any():
        total += len(chunk)
        if total > limit:
            raise BodyTooLarge(f"more than {limit} bytes sent")
        chunks.append(chunk)
    return b"".join(chunks)


log = structlog.get_logger("credledger.sync")


async def read_peer_height(session: aiohttp.ClientSession, peer: str) -> int | None:
    """A peer's committed height from its `/v1/status`, or None if it does not say one (unreachable, an error, an
    oversized or malformed answer)."""
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


class Syncer:
    """Keeps a node's chain up with its peers' by fetching certified blocks over their public APIs."""

    def __init__(self, driver: Driver, peers: tuple[str, ...], *, interval_s: float = 1.0, batch: int = 64) -> None:
        self.driver = driver
        self.peers = tuple(p.rstrip("/") for p in peers)
        self.interval_s = interval_s
        self.batch = batch
        self.syncing = False
        self.max_block_bytes = max_certified_block_bytes(driver.chain.params)
        #: The highest height a reachable peer reported in the last round (None before any answered).
        self.peer_height: int | None = None
        #: Peers that did not answer `/v1/status` in the last round.
        self.unreachable: tuple[str, ...] = ()
        #: Why the last round of catching up left this node behind a reachable peer; None once it caught up.
        self.failure: str | None = None
        self._failure_logged = 0.0

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=30, connect=3)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                # Not asyncio.wait_for: on Python 3.11 it drops a cancellation that lands in the same turn of the
                # event loop as `behind` being set, and the node, stopping, would wait for this loop forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval_s):
                        await self.driver.behind.wait()
                await self.catch_up(session)

    async def catch_up(self, session: aiohttp.ClientSession) -> None:
        """Fetch and apply blocks until no reachable peer is ahead."""
        heights = await asyncio.gather(*(read_peer_height(session, p) for p in self.peers))
        self.unreachable = tuple(p for h, p in zip(heights, self.peers, strict=True) if h is None)
        known = [h for h in heights if h is not None]
        self.peer_height = max(known) if known else None
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
            self._succeeded()
            return
        self.syncing = True
        start = self.driver.chain.height
        reasons: list[str] = []
        try:
            for target, peer in ahead:
                reason = await self._fetch_from(session, peer, target)
                if reason is not None:
                    reasons.append(f"{peer}: {reason}")
                    continue
                if self.driver.chain.height >= target:
                    break
        finally:
            self.syncing = False
        if self.driver.chain.height >= ahead[-1][0] or not reasons:
            self._succeeded()
        else:
            self._failed(start, ahead[0][0], "; ".join(reasons))

    def _succeeded(self) -> None:
        if self.failure is not None:
            log.info("catch-up recovered", height=self.driver.chain.height)
        self.failure = None
        self.driver.chain.metrics.sync_failing.set(0)

    def _failed(self, start: int, target: int, reasons: str) -> None:
        height = self.driver.chain.height
        self.failure = f"at height {height} (from {start}), peers at {target}: {reasons}"
        self.driver.chain.metrics.sync_failing.set(1)
        now = time.monotonic()
        if now - self._failure_logged >= FAILURE_LOG_INTERVAL_S:
            self._failure_logged = now
            log.warning("catch-up failing: this node is behind and serves stale answers", reason=self.failure)

    async def _fetch_from(self, session: aiohttp.ClientSession, peer: str, target: int) -> str | None:
        """Apply blocks from `peer` up to `target`; the reason if the peer failed or misbehaved, else None.

        Up to `batch` blocks are requested at once, so a long catch-up pays the round trip once per batch rather
        than once per block; they are applied strictly in height order."""
        chain = self.driver.chain
        while chain.height < target:
            first = chain.height + 1
            heights = range(first, min(target, first + self.batch - 1) + 1)
            fetched = await asyncio.gather(*(self._fetch(session, peer, h) for h in heights))
            for height, (raw, failure) in zip(heights, fetched, strict=True):
                if raw is None:
                    return failure
                if chain.height >= height:
                    continue  # consensus decided it while we were fetching
                refusal = self._apply(peer, height, raw)
                if refusal is not None:
                    return refusal
            if chain.height < first:
                # Nothing applied: never ask the same peer for the same blocks in a loop.
                return f"no block from {first} could be applied"
            # Let the API and consensus breathe between batches.
            await asyncio.sleep(0)
        return None

    async def _fetch(self, session: aiohttp.ClientSession, peer: str, height: int) -> tuple[bytes | None, str]:
        """The canonical encoding of certified block `height` from `peer`, or None and why it could not be had."""
        try:
            async with session.get(f"{peer}/v1/blocks/{height}", headers={"Accept": MSGPACK}) as response:
                if response.status != 200:
                    log.info("peer cannot serve block", peer=peer, height=height, status=response.status)
                    return None, f"block {height}: HTTP {response.status}"
                raw = await read_whole(response, self.max_block_bytes)
        except BodyTooLarge as exc:
            log.warning("peer served an oversized block", peer=peer, height=height, reason=str(exc))
            self.driver.chain.metrics.peer_errors.labels("bad-block").inc()
            return None, f"block {height}: oversized ({exc})"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            log.info("peer unreachable for sync", peer=peer, error=reason)
            return None, f"block {height}: {reason}"
        return raw, ""

    def _apply(self, peer: str, height: int, raw: bytes) -> str | None:
        """Check and commit one fetched block; the reason (logged and counted) if the peer served something
        invalid, else None."""
        try:
            certified = codec.decode(CertifiedBlock, raw, max_bytes=self.max_block_bytes)
            if certified.header.height != height:
                raise InvalidBlock(f"asked for block {height}, got block {certified.header.height}")
            self.driver.apply_certified(certified)
        except MessageOutOfWindow:
            return None  # decided meanwhile by consensus: nothing to do
        except CredledgerError as exc:
            log.warning("peer served an invalid block", peer=peer, height=height, reason=str(exc))
            self.driver.chain.metrics.peer_errors.labels("bad-block").inc()
            return f"block {height}: {exc}"
        return None
