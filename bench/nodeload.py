"""The load `bench node` puts on a devnet of real node processes, from a process of its own, and what it reads
back from the chain afterwards: saturating batches (`saturate`), paced batches waiting for their commit (`paced`),
proof bundles over a minimal HTTP/1.1 client (`fetch_bundles`), and the header times of the blocks of a phase.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgpack

from credledger.node.server import event_loop_factory

MSGPACK = "application/msgpack"


# --- the load process ---------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    submitted: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    samples: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, log size)
    #: The phase's span in wall-clock milliseconds (the clock the nodes' block headers are timed by).
    wall_ms: tuple[int, int] = (0, 0)
    bundles: int = 0
    errors: int = 0
    seconds: float = 0.0


async def log_size(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(f"{url}/v1/status") as response:
        status = await response.json()
    size: int = status["log"]["size"]
    return size


async def _pending(session: aiohttp.ClientSession, urls: list[str]) -> int:
    """Events waiting in the mempools of all nodes."""
    total = 0
    for url in urls:
        async with session.get(f"{url}/v1/status") as response:
            total += int((await response.json())["mempool"]["events"])
    return total


async def drain(urls: list[str], timeout: float = 120.0) -> float:
    """Wait until every mempool is empty (the previous phase's backlog committed); return the seconds it took."""
    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while await _pending(session, urls):
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"mempools still hold events after {timeout:g} s")
            await asyncio.sleep(0.2)
    return time.monotonic() - started


async def _post(session: aiohttp.ClientSession, url: str, batch: list[bytes], *, wait: bool) -> str | None:
    """POST a batch; None if admitted (or committed), else the problem code."""
    path = "/v1/events?wait=commit" if wait else "/v1/events"
    body = msgpack.packb(batch)
    async with session.post(f"{url}{path}", data=body, headers={"Content-Type": MSGPACK}) as response:
        if response.status in (200, 202):
            await response.read()
            return None
        problem = await response.json(content_type=None)
        return str(problem.get("type", response.status)).rsplit(":", 1)[-1]


async def saturate(urls: list[str], events: list[bytes], duration: float, batch: int, window: int) -> LoadResult:
    """Submit as fast as the network commits, keeping at most `window` events uncommitted."""
    result = LoadResult()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        base = await log_size(session, urls[0])
        committed = base
        start = time.monotonic()
        started_ms = int(time.time() * 1000)
        result.samples.append((0.0, base))
        cursor = 0
        nodes = itertools.cycle(urls)
        in_flight: set[asyncio.Task[str | None]] = set()

        async def watch() -> None:
            nonlocal committed
            while True:
                await asyncio.sleep(0.25)
                committed = await log_size(session, urls[0])
                result.samples.append((time.monotonic() - start, committed))

        watcher = asyncio.create_task(watch())
        try:
            while time.monotonic() - start < duration and cursor < len(events):
                if cursor - (committed - base) >= window or len(in_flight) >= 8:
                    await asyncio.sleep(0.005)
                    for task in [t for t in in_flight if t.done()]:
                        in_flight.discard(task)
                        code = task.result()
                        if code is not None:
                            result.refused[code] = result.refused.get(code, 0) + 1
                    continue
                chunk = events[cursor : cursor + batch]
                cursor += len(chunk)
                in_flight.add(asyncio.create_task(_post(session, next(nodes), chunk, wait=False)))
            await asyncio.gather(*in_flight)
        finally:
            watcher.cancel()
        result.wall_ms = (started_ms, int(time.time() * 1000))
        result.samples.append((time.monotonic() - start, await log_size(session, urls[0])))
        result.submitted = cursor
        result.seconds = time.monotonic() - start
    return result


async def block_times(url: str, started_ms: int, ended_ms: int) -> list[int]:
    """The header times (ms) of the blocks a node holds that were proposed between `started_ms` and `ended_ms`,
    oldest first: read back from the chain after the phase, so no request made during it is timed."""
    times: list[int] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        async with session.get(f"{url}/v1/status") as response:
            height = int((await response.json())["height"])
        while height >= 1:
            async with session.get(f"{url}/v1/blocks/{height}") as response:
                time_ms = int((await response.json())["header"]["time_ms"])
            if time_ms < started_ms:
                break
            if time_ms <= ended_ms:
                times.append(time_ms)
            height -= 1
    return times[::-1]


async def paced(urls: list[str], events: list[bytes], rate: float, duration: float, batch: int) -> LoadResult:
    """Submit `batch`-event requests with `?wait=commit` at `rate` events/s; record each request's latency."""
    result = LoadResult()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(url: str, chunk: list[bytes]) -> None:
            sent = time.monotonic()
            code = await _post(session, url, chunk, wait=True)
            if code is None:
                result.latencies.append(time.monotonic() - sent)
            else:
                result.refused[code] = result.refused.get(code, 0) + 1

        start = time.monotonic()
        tasks = []
        nodes = itertools.cycle(urls)
        interval = batch / rate
        for n, cursor in enumerate(range(0, len(events), batch)):
            due = start + n * interval
            if due - start > duration:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            tasks.append(asyncio.create_task(one(next(nodes), events[cursor : cursor + batch])))
            result.submitted += batch
        await asyncio.gather(*tasks)
        result.seconds = time.monotonic() - start
    return result


async def fetch_bundles(url: str, digests: list[str], duration: float, concurrency: int) -> LoadResult:
    """GET proof bundles from one node over `concurrency` keep-alive connections, one request in flight on each,
    for `duration` seconds.

    The client speaks just enough HTTP/1.1 (a GET, then the status line, the headers and a Content-Length body):
    a general client spends more CPU per request than the node does serving a bundle, and on a machine with few
    cores it, not the node, would set the rate."""
    result = LoadResult()
    host, _, port = url.removeprefix("http://").partition(":")
    start = time.monotonic()
    stop = start + duration
    counter = itertools.count()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while time.monotonic() < stop:
                digest = digests[next(counter) % len(digests)]
                writer.write(f"GET /v1/credentials/{digest} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                if status == 200:
                    result.bundles += 1
                else:
                    result.errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.monotonic() - start
    return result


def _load_process(kind: str, kwargs: dict[str, Any], events_file: str | None, results: Any) -> None:
    """Entry point of the load process: read the pre-signed events, run one phase, send back its result."""
    events: list[bytes] = []
    if events_file is not None:
        with open(events_file, "rb") as file:
            events = msgpack.unpackb(file.read())
    # On the node's event loop too: the load shares the cores with the nodes, so the less it spends the better.
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        if kind == "saturate":
            result = runner.run(saturate(events=events, **kwargs))
        elif kind == "paced":
            result = runner.run(paced(events=events, **kwargs))
        else:
            result = runner.run(fetch_bundles(**kwargs))
    results.put(result)


def run_load(kind: str, events_file: Path | None, **kwargs: Any) -> LoadResult:
    """Run one phase's load in a separate process (spawned: nothing of this process's state is shared)."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(
        target=_load_process, args=(kind, kwargs, None if events_file is None else str(events_file), results)
    )
    process.start()
    result: LoadResult = results.get()
    process.join()
    return result
