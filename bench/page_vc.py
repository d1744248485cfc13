"""Verification page benchmark: how long the page takes to check a signed credential's ``eddsa-rdfc-2022`` proof in
headless Chromium (its own JSON-LD expansion, RDFC-1.0 and WebCrypto Ed25519), beside pyld in this process.

The credential is `bench.vc`'s Open Badges 3.0 badge. The page is served by the node's own routes on 127.0.0.1;
the timing loop runs inside the page (``performance.now()``, wall time on the page's one thread), after one
round to load the contexts and warm up. The Python side is `ledger.vc.proof.verify_credential` timed the same
way (``time.perf_counter``) in the same run, so both see the same load on the machine.

Run ``python -m bench page_vc`` or ``python -m bench page_vc --rounds 200``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.vc import DID, T0, _badge
from credledger.ledger.genesis import genesis_json
from credledger.ledger.keys import SigningKey
from credledger.ledger.vc.canon import canonicalize
from credledger.ledger.vc.did import IssuerKey, KeyStatus, did_document, did_document_resolver, verification_method_id
from credledger.ledger.vc.proof import sign_credential, verify_credential
from credledger.node.api.page import page_routes
from tests.e2e.cdp import chromium
from tests.factories import make_network

#: Runs in the page: `rounds` timed calls of `work` (an async function), returning each call's milliseconds.
TIMED = """(async () => {
  const times = [];
  const work = %s;
  for (let i = 0; i < %d; i++) {
    const started = performance.now();
    await work();
    times.push(performance.now() - started);
  }
  return times;
})()"""


def _stats(times_ms: list[float]) -> tuple[float, float]:
    return statistics.median(times_ms), statistics.quantiles(times_ms, n=10)[-1]


async def _page_times(signed: dict[str, Any], key: bytes, rounds: int) -> dict[str, list[float]]:
    app = web.Application()
    app.add_routes(page_routes(genesis_json(make_network(1).genesis)))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    document = base64.b64encode(json.dumps(signed).encode()).decode()
    encoded_key = base64.b64encode(key).decode()
    setup = (
        f"window.DOC = JSON.parse(atob('{document}'));"
        f" window.KEY = Uint8Array.from(atob('{encoded_key}'), (c) => c.charCodeAt(0));"
        " window.UNSECURED = Object.fromEntries(Object.entries(DOC).filter(([k]) => k !== 'proof'));"
        " DATA_INTEGRITY.shippedContexts().then((c) => { window.CONTEXTS = c; })"
    )
    verify = "() => DATA_INTEGRITY.verifyCredential(DOC, () => KEY, CONTEXTS)"
    canon = "async () => JSONLD.canonicalize(UNSECURED, CONTEXTS)"
    try:
        with tempfile.TemporaryDirectory() as profile:
            async with chromium(Path(profile)) as browser:
                tab = await browser.new_tab()
                await tab.navigate(f"http://127.0.0.1:{port}/")
                await tab.evaluate(setup)
                await tab.evaluate(TIMED % (verify, 1))  # warm up (and fail loudly if the proof does not verify)
                return {
                    "verify": await tab.evaluate(TIMED % (verify, rounds)),
                    "canonicalize": await tab.evaluate(TIMED % (canon, rounds)),
                }
    finally:
        await runner.cleanup()


def _python_times(work: Any, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench page_vc", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    args = parser.parse_args(argv)
    key = SigningKey("uni.bench", hashlib.sha256(b"bench/vc/issuer").digest())
    method = verification_method_id(DID, key.key_id)
    resolver = did_document_resolver([did_document(DID, [IssuerKey(key.key_id, key.public.raw, KeyStatus.VALID)])])
    badge = _badge()
    signed = sign_credential(badge, key, method, T0)
    verify_credential(signed, resolver)
    page = asyncio.run(_page_times(signed, key.public.raw, args.rounds))
    python_verify = _python_times(lambda: verify_credential(signed, resolver), args.rounds)
    python_canon = _python_times(lambda: canonicalize(badge), args.rounds)
    quads = canonicalize(badge).count("\n")
    print(f"credledger page_vc: eddsa-rdfc-2022 on an Open Badges 3.0 badge ({quads} quads), {args.rounds:,} rounds,")
    print("wall ms (median / p90)                      page (Chromium)        pyld (this process)")
    rows = (
        ("verify the proof", page["verify"], python_verify),
        ("canonicalize the document (RDFC-1.0)", page["canonicalize"], python_canon),
    )
    for label, in_page, in_python in rows:
        (pm, p9), (ym, y9) = _stats(in_page), _stats(in_python)
        print(f"  {label:<38} {pm:7.2f} / {p9:7.2f}      {ym:7.2f} / {y9:7.2f}")
    return 0
