"""VC-API benchmark: signing + registering standard credentials, and serving status lists, on a 4-validator devnet.

Phases, against one running devnet of real node processes (they share the machine's cores with the load):

1. issuance: `--clients` concurrent clients per node ``POST /credentials/issue`` an unsigned Open Badge for
   `--duration` seconds, each node signing (``eddsa-rdfc-2022``) for its own member with the issuer key it holds;
   then the load stops and the run waits until every issued credential is committed. Reported: credentials/s
   (committed credentials over the time from the first request to the last commit) and the time 10,000 would take
   at that rate.
2. status lists: one node's ``GET /v1/members/{id}/status/0/revocation`` with `--clients` concurrent clients for
   `--duration` seconds, plain and conditional (``If-None-Match`` with the list's ETag, answered 304). Reported:
   fetches/s of each.

The peers the issue names for issuance: ACA-Py about 100,000 credentials in 26 h (~1.1/s), OpenCerts 40,000 in
12 h (~0.9/s); `python -m bench vc` gives the CPU time of one sign and one verify.

Run ``python -m bench vcapi`` (about a minute) or ``python -m bench vcapi --duration 30``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from bench.node import free_base_port
from credledger.cli.devnet import create, members, start_node, stop_all, wait_ready
from credledger.ledger.vc.loader import CREDENTIALS_V2, OB_V3P0

TOKEN = "bench-token"
NODE_ENV = {"CREDLEDGER_CREDENTIALS_API_TOKEN": TOKEN, "CREDLEDGER_LOG_LEVEL": "warning"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _badge(n: int) -> dict[str, Any]:
    return {
        "@context": [CREDENTIALS_V2, OB_V3P0],
        "id": f"urn:uuid:00000000-0000-4000-8000-{n:012d}",
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": "Teamwork Badge",
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "https://example.com/achievements/teamwork",
                "type": ["Achievement"],
                "name": "Teamwork",
                "description": "Worked well in a team.",
                "criteria": {"narrative": "Completed the group project."},
            },
        },
    }


async def _issue_load(urls: list[str], clients: int, duration: float) -> tuple[int, int, float]:
    """(issued, refused, elapsed): `clients` loops per node issuing until `duration` passes."""
    counter = iter(range(10**9))
    issued = refused = 0
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def client(url: str) -> None:
            nonlocal issued, refused
            while time.monotonic() - started < duration:
                body = {"credential": _badge(next(counter))}
                async with session.post(f"{url}/credentials/issue", json=body, headers=AUTH) as response:
                    await response.read()
                    if response.status == 201:
                        issued += 1
                    else:
                        refused += 1

        await asyncio.gather(*(client(url) for url in urls for _ in range(clients)))
    return issued, refused, time.monotonic() - started


async def _committed_issues(session: aiohttp.ClientSession, url: str, member_id: str) -> int:
    async with session.get(f"{url}/v1/members/{member_id}/status") as response:
        usage = await response.json()
    return sum(entry["used"] for entry in usage["lists"])


async def _fetch_load(url: str, clients: int, duration: float, etag: str | None) -> int:
    fetched = 0
    headers = {"If-None-Match": etag} if etag else {}
    started = time.monotonic()
    async with aiohttp.ClientSession() as session:

        async def client() -> None:
            nonlocal fetched
            while time.monotonic() - started < duration:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status in (200, 304):
                        fetched += 1

        await asyncio.gather(*(client() for _ in range(clients)))
    return fetched


async def _measure(network: Any, clients: int, duration: float) -> None:
    urls = [m.url for m in network]
    begun = time.monotonic()
    issued, refused, _ = await _issue_load(urls, clients, duration)
    async with aiohttp.ClientSession() as session:
        while True:
            counts = [await _committed_issues(session, m.url, m.member_id) for m in network]
            if sum(counts) >= issued or time.monotonic() - begun > duration + 120:
                break
            await asyncio.sleep(0.2)
        committed_at = time.monotonic() - begun
        rate = sum(counts) / committed_at
        print(f"issuance: {sum(counts)} credentials committed in {committed_at:.1f} s ({refused} refused)")
        print(f"  {rate:.1f} credentials/s; 10,000 would take {10_000 / rate / 60:.1f} min")
        first = network[0]
        list_url = f"{first.url}/v1/members/{first.member_id}/status/0/revocation"
        for _ in range(100):
            async with session.get(list_url) as response:
                if response.status == 200:
                    etag = response.headers["ETag"]
                    break
            await asyncio.sleep(0.2)
        else:
            print("status lists: none published")
            return
    plain = await _fetch_load(list_url, clients * 4, duration, None)
    conditional = await _fetch_load(list_url, clients * 4, duration, etag)
    print(f"status lists from one node: {plain / duration:.0f} fetches/s, {conditional / duration:.0f} 304s/s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench vcapi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per phase (default 15)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent issuing clients per node (default 4)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="credledger-bench-vcapi-") as scratch:
        directory = Path(scratch)
        network = members(directory, 4, free_base_port(4))
        create(directory, network)
        processes = [(m, start_node(m, NODE_ENV)) for m in network]
        try:
            if not wait_ready(processes):
                return 1
            asyncio.run(_measure(network, args.clients, args.duration))
        finally:
            stop_all(processes)
    return 0
