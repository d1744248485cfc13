"""The verification page end to end: a real node app (API and page) on 127.0.0.1, Debian's headless Chromium
driven over the DevTools protocol, and a person's actions -- choosing a credential file, pasting a digest.

Cases: a valid JSON credential (its digest computed in the browser by RFC 8785), a revoked one, one never
issued, and one whose bundle the server tampers with (one byte of the issue event), which the page must show as
failing its inclusion check, not as valid. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from credledger.ledger.events import Revoke
from credledger.ledger.genesis import genesis_json
from credledger.ledger.storage.store import Store
from credledger.node.api.app import make_app
from credledger.node.api.page import page_routes
from credledger.node.application import LedgerApplication
from credledger.node.config import NodeConfig
from credledger.node.mempool import Mempool
from credledger.verifier.client import NodeClient
from credledger.verifier.credential import digest_of
from tests.blocks import certify
from tests.e2e.cdp import Tab, chromium
from tests.factories import digest, issue, make_network, signed
from tests.forge import flip_byte

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DIPLOMA: dict[str, Any] = {
    "@context": ["https://www.w3.org/ns/credentials/v2", "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"],
    "type": ["VerifiableCredential", "OpenBadgeCredential"],
    "name": "Bachelor of Science in Marine Biology",
    "issuer": {"id": "https://m0.example", "type": ["Profile"], "name": "M0 University"},
    "validFrom": "2026-06-30T00:00:00Z",
    "credentialSubject": {"type": ["AchievementSubject"], "achievement": {"name": "Marine Biology, BSc", "ü": 1}},
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Site:
    url: str
    tampered: bytes


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """A node with a valid, a revoked and a tampered-with credential, serving its API and the page."""
    network = make_network(4)
    store = Store(tmp_path / "ledger")
    chain = LedgerApplication(
        store, network.genesis, mempool=Mempool(max_events=100, max_bytes=1 << 20), clock=time.time
    )
    diploma = tmp_path / "diploma.json"
    diploma.write_text(json.dumps(DIPLOMA, indent=4, ensure_ascii=False))
    m0 = network["m0.test"]
    now = chain.now_ms()
    for events in (
        [issue(m0, digest_of(diploma), time_ms=now), issue(m0, digest("revoked"), time_ms=now)],
        [issue(m0, digest("tampered"), time_ms=now), signed(Revoke(digest("revoked"), 17), m0.issuer, time_ms=now)],
    ):
        block, _ = store.build_block(events, proposer=network.ids[0], round=0, time_ms=chain.now_ms())
        store.commit_block(block, certify(network, block))

    @web.middleware
    async def tamper(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.path == f"/v1/credentials/{digest('tampered').hex()}" and isinstance(response, web.Response):
            document = json.loads(response.text or "")
            return web.json_response(flip_byte(document, "events.0.event"))
        return response

    config = NodeConfig(
        member_id=network.ids[0], data_dir=tmp_path / "ledger", genesis=tmp_path / "g.json", node_key=tmp_path / "k"
    )
    app = make_app(chain, config)
    app.add_routes(page_routes(genesis_json(network.genesis)))
    app.middlewares.append(tamper)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        yield Site(str(server.make_url("")).rstrip("/"), digest("tampered"))
    store.close()


async def result_of(tab: Tab) -> dict[str, Any]:
    """Wait for the page's answer; return what a person reads."""
    status = await tab.wait_for(
        "(s => s && s !== 'checking' ? s : null)(document.getElementById('result').dataset.status)"
    )
    text = await tab.evaluate(
        "({status: document.getElementById('status').textContent,"
        " summary: document.getElementById('summary').textContent,"
        " facts: document.getElementById('facts').innerText,"
        " checks: [...document.querySelectorAll('#check-list li')].map(li => [li.className, li.textContent])})"
    )
    return {"code": status, **text}


async def paste(tab: Tab, credential: bytes) -> dict[str, Any]:
    await tab.evaluate(
        "document.getElementById('result').dataset.status = 'checking';"
        f"document.getElementById('digest').value = '{credential.hex()}';"
        "document.getElementById('digest-form').requestSubmit()"
    )
    return await result_of(tab)


async def test_the_page_checks_valid_revoked_unknown_and_tampered_credentials(site: Site, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        assert await tab.evaluate("document.title") == "Verify a credential · credledger.test/unit"

        # A person chooses the diploma file: digest by RFC 8785 in the browser, proof fetched and checked there.
        await tab.set_file("#file", tmp_path / "diploma.json")
        valid = await result_of(tab)
        assert valid["code"] == "valid" and valid["status"] == "Valid", valid
        assert "M0.TEST (m0.test)" in valid["facts"] and "Issued on" in valid["facts"] and "never" in valid["facts"]
        steps = [text.split(":")[0][1:] for _, text in valid["checks"]]
        assert steps == [
            "digest",
            "network",
            "validators",
            "certificate",
            "state",
            "inclusion",
            "issue-signature",
            "issuer-key",
            "freshness",
        ]
        assert all(cls == "ok" for cls, _ in valid["checks"])
        await tab.evaluate("document.getElementById('checks').open = true")
        await tab.screenshot(ARTIFACTS / "verify-page-valid.png")

        revoked = await paste(tab, digest("revoked"))
        assert revoked["code"] == "revoked" and revoked["status"] == "Revoked", revoked
        assert "Status changed on" in revoked["facts"]

        unknown = await paste(tab, digest("never issued"))
        assert unknown["code"] == "unknown" and unknown["status"] == "Not found", unknown

        tampered = await paste(tab, site.tampered)
        assert tampered["code"] == "failed" and tampered["status"] == "Could not be verified", tampered
        assert tampered["checks"][-1][0] == "failed" and "inclusion" in tampered["checks"][-1][1]
        assert await tab.evaluate("document.getElementById('checks').open") is True
        await tab.screenshot(ARTIFACTS / "verify-page-tampered.png")
        assert tab.errors() == []


async def test_a_kept_proof_bundle_dropped_on_the_page_is_checked_offline(site: Site, tmp_path: Path) -> None:
    receipt = tmp_path / "receipt.json"
    bundle = await asyncio.to_thread(NodeClient(site.url).credential, digest("revoked"))
    receipt.write_text(json.dumps(bundle))
    lying = tmp_path / "lying.json"
    lying.write_text(json.dumps(_weaken(bundle)))
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        await tab.set_file("#file", receipt)
        kept = await result_of(tab)
        assert kept["code"] == "revoked", kept
        await tab.evaluate("document.getElementById('result').dataset.status = 'checking'")
        await tab.set_file("#file", lying)
        weak = await result_of(tab)
        assert weak["code"] == "failed" and "need more than 2/3" in weak["checks"][-1][1], weak
        assert tab.errors() == []


def _weaken(bundle: dict[str, Any]) -> dict[str, Any]:
    """The bundle with its checkpoint carrying only two of the four validators' signatures."""
    text: str = bundle["checkpoint"]
    body, signatures = text.rsplit("\n\n", 1)
    kept = "\n".join(signatures.rstrip("\n").split("\n")[:2]) + "\n"
    return {**bundle, "checkpoint": body + "\n\n" + kept}
