"""The page's record view end to end: a real node app (API and page) on 127.0.0.1 and Debian's headless Chromium.

A learner chooses several credential files at once, or one saved record (`credledger-record/v1`); the page
verifies every proof in the browser under the record's one checkpoint and shows each credential's status, the
valid ones' credits, levels and skills, and the awards they complete (from `POST /v1/pathway`). Also: a record of
100 credentials (its verification time is printed, not asserted), a record altered by one byte, and a record
checked with the node out of reach. Screenshots go to test-artifacts/.
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

from credledger.ledger.events import Event, Revoke
from credledger.ledger.genesis import genesis_json
from credledger.ledger.storage.store import Store
from credledger.node.api.app import make_app
from credledger.node.api.page import page_routes
from credledger.node.application import LedgerApplication
from credledger.node.config import NodeConfig
from credledger.node.mempool import Mempool
from credledger.verifier.credential import digest_of
from credledger.verifier.learner import LearnerClient
from tests.blocks import certify
from tests.catalogue import award, definition, publish
from tests.e2e.cdp import Tab, chromium
from tests.factories import digest, make_network, signed
from tests.forge import flip_byte

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
A, B = "m0.test", "m1.test"
SUBJECT = "did:example:learner-7"
SKILL = {"targetName": "Data analysis", "targetUrl": "https://example.org/rsd/data-analysis"}
BULK = 100


def credential(name: str) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential"],
        "name": name,
        "credentialSubject": {"id": SUBJECT},
    }


@dataclass
class Site:
    url: str
    files: dict[str, Path]
    bulk: list[bytes]


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    """M0 offers two modules, M1 a certificate (10 ECTS) and a diploma (stats and 60 ECTS); the learner holds both
    modules and a revoked one; a hundred more module credentials make the large record."""
    network = make_network(4)
    store = Store(tmp_path / "ledger")
    chain = LedgerApplication(
        store, network.genesis, mempool=Mempool(max_events=100, max_bytes=1 << 20), clock=time.time
    )
    files = {}
    for name in ("stats", "intro", "dropped"):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(credential(name), indent=2))
    m0, m1 = network[A], network[B]
    now = chain.now_ms()
    bulk = [digest(f"module-{i}") for i in range(BULK)]
    diploma = {"all": [{"achievement": {"member": A, "id": "stats"}}, {"credits": {"min": 60, "system": "ECTS"}}]}
    blocks: list[list[Event]] = [
        [
            publish(m0, definition("stats", credits=5, level=6, field="Maths", alignment=[SKILL]), time_ms=now),
            publish(m0, definition("intro", credits=5, level=5, field="Maths"), time_ms=now),
        ],
        [
            publish(
                m1, definition("cert", kind="Certificate", rule={"credits": {"min": 10, "system": "ECTS"}}), time_ms=now
            ),
            publish(m1, definition("data-diploma", kind="Diploma", rule=diploma), time_ms=now),
        ],
        [
            award(m0, digest_of(files["stats"]), "stats", time_ms=now),
            award(m0, digest_of(files["intro"]), "intro", time_ms=now),
            award(m0, digest_of(files["dropped"]), "intro", time_ms=now),
            *(award(m0, d, "intro", time_ms=now) for d in bulk),
        ],
        [signed(Revoke(digest_of(files["dropped"]), 4), m0.issuer, time_ms=now)],
    ]
    for events in blocks:
        block, _ = store.build_block(events, proposer=network.ids[0], round=0, time_ms=chain.now_ms())
        store.commit_block(block, certify(network, block))
    config = NodeConfig(
        member_id=network.ids[0], data_dir=tmp_path / "ledger", genesis=tmp_path / "g.json", node_key=tmp_path / "k"
    )
    app = make_app(chain, config)
    app.add_routes(page_routes(genesis_json(network.genesis)))
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        yield Site(str(server.make_url("")).rstrip("/"), files, bulk)
    store.close()


async def choose(tab: Tab, *paths: Path) -> dict[str, Any]:
    """Choose files in the page's file input as a person would; wait for the record view's answer."""
    await tab.evaluate("document.getElementById('record').dataset.status = 'checking'")
    document = await tab.send("DOM.getDocument")
    node = await tab.send("DOM.querySelector", nodeId=document["root"]["nodeId"], selector="#file")
    await tab.send("DOM.setFileInputFiles", files=[str(p) for p in paths], nodeId=node["nodeId"])
    status = await tab.wait_for(
        "(s => s && s !== 'checking' ? s : null)(document.getElementById('record').dataset.status)", timeout=60
    )
    text = await tab.evaluate(
        "({status: document.getElementById('record-status').textContent,"
        " summary: document.getElementById('record-summary').textContent,"
        " facts: document.getElementById('record-facts').innerText,"
        " rows: [...document.querySelectorAll('#record-table tbody tr')].map(r => r.cells[0].textContent),"
        " awards: document.getElementById('record-awards').innerText,"
        " awardsState: document.getElementById('record-awards').dataset.state || null,"
        " elapsed: document.getElementById('record').dataset.elapsed,"
        " resultHidden: document.getElementById('result').hidden,"
        " checks: [...document.querySelectorAll('#record-check-list li')].map(li => [li.className, li.textContent])})"
    )
    return {"code": status, **text}


def save_record(site: Site, digests: list[bytes], path: Path, *, tamper: str | None = None) -> Path:
    record = LearnerClient(site.url, timeout=30).record(digests)
    path.write_text(json.dumps(record if tamper is None else flip_byte(record, tamper)))
    return path


async def test_several_credential_files_are_checked_as_one_record_with_totals_and_awards(
    site: Site, tmp_path: Path
) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        seen = await choose(tab, site.files["stats"], site.files["intro"], site.files["dropped"])
        assert seen["code"] == "partial" and seen["status"] == "2 of 3 credentials valid", seen
        assert seen["rows"] == ["Valid", "Valid", "Revoked"]
        assert "10 ECTS" in seen["facts"] and "EQF 5, EQF 6" in seen["facts"] and "Data analysis" in seen["facts"]
        assert seen["resultHidden"] is True
        assert seen["awardsState"] == "shown"
        assert "Completes\nCert (m1.test/cert)" in seen["awards"], seen["awards"]
        assert "Data Diploma (m1.test/data-diploma)" in seen["awards"]
        assert "credits: 10 of 60 ECTS" in seen["awards"]
        assert [cls for cls, _ in seen["checks"]] == ["ok"] * len(seen["checks"])
        assert [text.split(":")[0][1:] for _, text in seen["checks"]] == [
            "network",
            "validators",
            "certificate",
            "record",
        ]
        await tab.evaluate("document.getElementById('record-checks').open = true")
        await tab.screenshot(ARTIFACTS / "verify-page-record.png")
        assert tab.errors() == []


async def test_one_award_is_chosen_and_its_whole_standing_asked_of_the_node(site: Site, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        seen = await choose(tab, site.files["stats"], site.files["intro"])
        assert seen["awardsState"] == "shown", seen
        options = await tab.evaluate("[...document.getElementById('record-toward').options].map(o => o.value)")
        assert options == ["", "m1.test/cert", "m1.test/data-diploma"]

        async def toward(achievement: str) -> str:
            chosen = json.dumps(achievement)
            await tab.evaluate(
                f"(s => {{ s.value = {chosen}; s.dispatchEvent(new Event('change')); }})"
                "(document.getElementById('record-toward'))"
            )
            await tab.wait_for("document.getElementById('record-toward-result').dataset.state === 'shown'")
            return str(await tab.evaluate("document.getElementById('record-toward-result').innerText"))

        diploma = await toward("m1.test/data-diploma")
        assert diploma.startswith("Data Diploma (m1.test/data-diploma): missing"), diploma
        assert "credits: 10 of 60 ECTS" in diploma
        assert await toward("m1.test/cert") == "Cert (m1.test/cert): complete"
        await tab.screenshot(ARTIFACTS / "verify-page-record-toward.png")
        assert tab.errors() == []


async def test_a_saved_record_of_a_hundred_credentials_is_verified_in_the_page(site: Site, tmp_path: Path) -> None:
    record = await asyncio.to_thread(save_record, site, site.bulk, tmp_path / "record-100.json")
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        seen = await choose(tab, record)
        assert seen["code"] == "valid" and seen["status"] == f"All {BULK} credentials valid", seen
        assert len(seen["rows"]) == BULK and "500 ECTS" in seen["facts"]
        assert "Cert (m1.test/cert)" in seen["awards"]
        # The figure the issue asks for (under 1 s in the page), reported rather than asserted on a loaded machine.
        print(f"\npage: record of {BULK} credentials verified in {seen['elapsed']} ms")
        await tab.screenshot(ARTIFACTS / "verify-page-record-100.png", full_page=False)
        assert tab.errors() == []


async def test_a_record_altered_by_one_byte_fails_naming_the_credential(site: Site, tmp_path: Path) -> None:
    digests = [digest_of(site.files[n]) for n in ("stats", "intro")]
    lying = await asyncio.to_thread(
        save_record, site, digests, tmp_path / "lying.json", tamper="credentials.1.events.0.event"
    )
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        seen = await choose(tab, lying)
        assert seen["code"] == "failed" and seen["status"] == "Could not be verified", seen
        assert "The record file (lying.json) failed a check" in seen["summary"]
        last_class, last_text = seen["checks"][-1]
        assert last_class == "failed" and f"credential 1 ({digests[1].hex()})" in last_text, last_text
        await tab.screenshot(ARTIFACTS / "verify-page-record-tampered.png")
        assert tab.errors() == []


async def test_a_saved_record_verifies_offline_and_says_the_awards_could_not_be_asked(
    site: Site, tmp_path: Path
) -> None:
    digests = [digest_of(site.files[n]) for n in ("stats", "intro")]
    record = await asyncio.to_thread(save_record, site, digests, tmp_path / "record.json")
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        await tab.go_offline()
        seen = await choose(tab, record)
        assert seen["code"] == "valid" and seen["status"] == "All 2 credentials valid", seen
        assert seen["awardsState"] == "unavailable"
        assert "Could not ask the node which awards this record completes" in seen["awards"]
        # Several files, on the other hand, need the node for their proofs: the page says it could not check.
        unreachable = await choose(tab, site.files["stats"], site.files["intro"])
        assert unreachable["code"] == "unreachable" and unreachable["status"] == "Could not check", unreachable


async def test_a_record_among_files_a_repeated_file_and_two_subjects_are_refused(site: Site, tmp_path: Path) -> None:
    record = await asyncio.to_thread(save_record, site, [digest_of(site.files["stats"])], tmp_path / "record.json")
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        mixed = await choose(tab, site.files["stats"], record)
        assert mixed["code"] == "error" and "record.json is a saved record: drop it on its own" in mixed["summary"]
        copy = tmp_path / "copy-of-stats.json"
        copy.write_text(site.files["stats"].read_text())
        twice = await choose(tab, site.files["stats"], copy)
        assert twice["code"] == "error" and "are the same credential" in twice["summary"], twice
        someone_else = tmp_path / "someone-else.json"
        someone_else.write_text(json.dumps({**credential("intro"), "credentialSubject": {"id": "did:example:other"}}))
        mixed_subjects = await choose(tab, site.files["stats"], someone_else)
        assert mixed_subjects["code"] == "error", mixed_subjects
        assert "the credentials name different subjects" in mixed_subjects["summary"]
        assert "someone-else.json: did:example:other" in mixed_subjects["summary"]
        assert tab.errors() == []
