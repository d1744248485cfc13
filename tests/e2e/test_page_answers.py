"""What the page shows a verifier in the cases that go wrong: a kept receipt older than the freshness limit for a
credential suspended since, a node that cannot be reached, a receipt altered by someone, a C2SP tlog-proof, JSON
RFC 8785 refuses -- and that a keyboard alone and a phone screen can use it. A real node app on 127.0.0.1, Debian's
headless Chromium; screenshots go to test-artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from credledger.cli.common import MAX_CREDENTIAL_BYTES
from credledger.ledger import tlogproof
from credledger.ledger.bundle import Bundle
from credledger.ledger.events import Suspend
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
from tests.e2e.test_page import ARTIFACTS, result_of
from tests.factories import digest, issue, make_network, signed
from tests.forge import flip_byte

HOUR_MS = 3_600_000
VALID_GREEN = "rgb(19, 122, 58)"


@dataclass
class Files:
    url: str
    receipt: Path  # certified two hours ago, when the credential was valid; it has been suspended since
    tampered: Path  # the same receipt with one byte of its issue event flipped
    tlog: Path  # the C2SP tlog-proof of the same credential
    badge: Path  # a JSON credential issued just now
    refused: Path  # JSON that RFC 8785 cannot canonicalise


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[Files]:
    network = make_network(4)
    store = Store(tmp_path / "ledger")
    chain = LedgerApplication(
        store, network.genesis, mempool=Mempool(max_events=100, max_bytes=1 << 20), clock=time.time
    )
    m0 = network["m0.test"]
    badge = tmp_path / "badge.json"
    badge.write_text(json.dumps({"type": ["VerifiableCredential"], "name": "Keyboard badge"}, indent=2))
    refused = tmp_path / "odd.json"
    refused.write_bytes(b'{"name": "x", "name": "y"}')
    then = chain.now_ms() - 2 * HOUR_MS
    block, _ = store.build_block(
        [issue(m0, digest("kept"), time_ms=then)], proposer=network.ids[0], round=0, time_ms=then
    )
    store.commit_block(block, certify(network, block))
    config = NodeConfig(
        member_id=network.ids[0], data_dir=tmp_path / "ledger", genesis=tmp_path / "g.json", node_key=tmp_path / "k"
    )
    app = make_app(chain, config)
    app.add_routes(page_routes(genesis_json(network.genesis)))
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        url = str(server.make_url("")).rstrip("/")
        bundle = await asyncio.to_thread(NodeClient(url).credential, digest("kept"))
        receipt = tmp_path / "receipt.json"
        receipt.write_text(json.dumps(bundle))
        tampered = tmp_path / "tampered-receipt.json"
        tampered.write_text(json.dumps(flip_byte(bundle, "events.0.event")))
        tlog = tmp_path / "receipt.tlog-proof"
        tlog.write_text(tlogproof.from_bundle(Bundle.from_json(bundle)).format())
        now = chain.now_ms()
        events = [signed(Suspend(digest("kept"), 0), m0.issuer, time_ms=now), issue(m0, digest_of(badge), time_ms=now)]
        block, _ = store.build_block(events, proposer=network.ids[0], round=0, time_ms=now)
        store.commit_block(block, certify(network, block))
        yield Files(url, receipt, tampered, tlog, badge, refused)
    store.close()


async def text_of(tab: Tab, expression: str) -> Any:
    return await tab.evaluate(expression)


async def choose(tab: Tab, path: Path) -> dict[str, Any]:
    await tab.evaluate("document.getElementById('result').dataset.status = 'checking'")
    await tab.set_file("#file", path)
    return await result_of(tab)


async def test_a_stale_receipt_shows_the_suspension_the_node_certifies_now(files: Files, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(files.url + "/")
        answer = await choose(tab, files.receipt)
        assert answer["code"] == "suspended" and answer["status"] == "Suspended", answer
        steps = [text.split(":")[0][1:] for _, text in answer["checks"]]
        assert "receipt" in steps and "current" in steps and steps[-1] == "freshness"
        assert "receipt.json" in answer["facts"]
        assert tab.errors() == []


async def test_a_stale_receipt_the_node_cannot_confirm_never_looks_valid(files: Files, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(files.url + "/")
        await tab.go_offline()
        answer = await choose(tab, files.receipt)
        assert answer["code"] == "stale", answer
        assert await tab.evaluate("document.getElementById('result').dataset.verdict") == "valid"
        assert answer["status"].startswith("Valid as of ") and answer["status"].endswith("stale, could not confirm now")
        assert "do not rely on it" in answer["summary"]
        colour = await tab.evaluate("getComputedStyle(document.getElementById('status')).color")
        assert colour != VALID_GREEN
        assert await tab.evaluate("document.getElementById('checks').open") is True
        await tab.screenshot(ARTIFACTS / "verify-page-stale-receipt.png")


async def test_an_unreachable_node_is_named_and_nothing_claims_to_have_passed(files: Files, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(files.url + "/")
        await tab.go_offline()
        answer = await choose(tab, files.badge)
        assert answer["code"] == "unreachable" and answer["status"] == "Could not check", answer
        assert "node could not be reached, so nothing was verified" in answer["summary"]
        assert "badge.json" in answer["facts"]
        assert await tab.evaluate("document.getElementById('checks').hidden") is True
        assert "passed" not in await tab.evaluate("document.getElementById('result').innerText")
        await tab.screenshot(ARTIFACTS / "verify-page-unreachable.png")


async def test_an_altered_receipt_is_blamed_on_the_file_not_the_node(files: Files, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(files.url + "/")
        answer = await choose(tab, files.tampered)
        assert answer["code"] == "failed", answer
        assert answer["summary"].startswith("The file you chose (tampered-receipt.json) failed a check")
        assert "node" not in answer["summary"]
        assert answer["checks"][-1][0] == "failed" and "inclusion" in answer["checks"][-1][1]


async def test_a_tlog_proof_is_verified_then_the_current_status_is_asked(files: Files, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(files.url + "/")
        online = await choose(tab, files.tlog)
        assert online["code"] == "suspended", online
        assert online["checks"][0][0] == "ok" and online["checks"][0][1].startswith("\u2713certificate:")
        assert "the issue of credential" in online["checks"][1][1]
        await tab.go_offline()
        offline = await choose(tab, files.tlog)
        assert offline["code"] == "issued" and offline["status"] == "Issued \u2014 current status unknown", offline
        assert "says nothing about revocation" in offline["summary"]
        assert tab.errors() == []


async def test_json_that_rfc_8785_refuses_is_named_with_the_reason(files: Files, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(files.url + "/")
        answer = await choose(tab, files.refused)
        assert answer["code"] == "refused", answer
        assert answer["summary"].startswith('odd.json: the JSON cannot be canonicalised (RFC 8785): member name "name"')


async def test_a_keyboard_alone_can_choose_a_file_and_read_the_answer(files: Files, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(files.url + "/")
        await tab.intercept_file_chooser()
        await tab.press("Tab")
        assert await tab.evaluate("document.activeElement.id") == "choose"
        assert await tab.evaluate("document.activeElement.textContent") == "Choose a file"
        await tab.screenshot(ARTIFACTS / "verify-page-keyboard-focus.png", full_page=False)
        await tab.press("Enter")
        await tab.answer_file_chooser(files.badge)
        answer = await result_of(tab)
        assert answer["code"] == "valid", answer
        assert await tab.evaluate("document.getElementById('file-name').textContent") == "badge.json"
        assert await tab.evaluate("document.activeElement.id") == "status"  # focus moves to the answer
        assert "Checked file\tbadge.json" in answer["facts"] or "Checked file\nbadge.json" in answer["facts"]
        assert "Fingerprint (RFC 8785 JSON)" in answer["facts"]


async def test_on_a_phone_the_page_says_choose_and_the_answer_is_in_view(files: Files, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab(390, 844, phone=True)
        await tab.navigate(files.url + "/")
        invitation = await tab.evaluate("document.querySelector('#drop .big').innerText")
        assert invitation == "Choose a credential file"
        assert "drop" not in (await tab.evaluate("document.body.innerText")).lower()
        await tab.screenshot(ARTIFACTS / "verify-page-phone-start.png", full_page=False)
        answer = await choose(tab, files.badge)
        assert answer["code"] == "valid", answer
        box = await tab.evaluate(
            "(r => ({top: r.top, bottom: r.bottom, height: innerHeight, width: innerWidth}))"
            "(document.getElementById('status').getBoundingClientRect())"
        )
        assert box["width"] == 390 and box["top"] >= 0 and box["bottom"] <= box["height"], box
        await tab.screenshot(ARTIFACTS / "verify-page-phone-valid.png", full_page=False)
        assert tab.errors() == []


async def test_a_file_larger_than_the_command_line_reads_is_refused_unread(files: Files, tmp_path: Path) -> None:
    huge = tmp_path / "huge.pdf"
    with huge.open("wb") as sparse:
        sparse.truncate(MAX_CREDENTIAL_BYTES + 1)  # sparse: no 64 MiB written, and the page must not read it
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(files.url + "/")
        answer = await choose(tab, huge)
        assert answer["code"] == "refused", answer
        assert answer["summary"].startswith(f"huge.pdf: larger than {MAX_CREDENTIAL_BYTES} bytes")


async def test_on_a_wide_screen_without_touch_the_page_invites_dropping_a_file(files: Files, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(files.url + "/")
        assert await tab.evaluate("document.querySelector('#drop .big').innerText") == "Drop a credential file here"
        touch = await browser.new_tab(1024, 768, phone=True)  # a tablet: wide, but a finger is no mouse
        await touch.navigate(files.url + "/")
        assert await touch.evaluate("document.querySelector('#drop .big').innerText") == "Choose a credential file"
