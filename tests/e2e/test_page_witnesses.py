"""The page's witness policy in headless Chromium: a person lists witnesses' cosigner vkeys and a quorum, and the
page accepts a proof only if its checkpoint carries that many valid cosignatures, naming the witnesses missing.

A real node app (API and page) on 127.0.0.1 submits its checkpoints to a real witness node (`[witnesses]`), so the
bundles it serves carry the witness's tlog-cosignature; a kept receipt with the cosignature lines cut off stands
for a proof that was never witnessed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from credledger.ledger.cosignature import CosignerKey, cosign, verified_cosignatures
from credledger.ledger.genesis import genesis_json
from credledger.ledger.note import SignedNote
from credledger.ledger.storage.store import Store
from credledger.node.api.app import make_app
from credledger.node.api.page import page_routes
from credledger.node.application import LedgerApplication
from credledger.node.config import NodeConfig, WitnessConfig, WitnessedLogConfig, WitnessEndpointConfig, WitnessesConfig
from credledger.node.mempool import Mempool
from credledger.verifier.client import NodeClient
from tests.apinode import api_node
from tests.blocks import certify
from tests.e2e.cdp import Tab, chromium
from tests.e2e.test_page import ARTIFACTS, paste, result_of
from tests.factories import digest, issue, key_for, make_network

WITNESS = key_for("witness.test/w1", "witness")
ABSENT = key_for("witness.test/absent", "witness")


@dataclass
class Site:
    url: str
    unwitnessed: Path  # a kept receipt whose checkpoint lost its cosignature lines
    also_absent: Path  # a kept receipt cosigned by ABSENT too, a witness the node never reaches
    forged: Path  # a kept receipt whose line in WITNESS's name and key id is not its signature


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    network = make_network(4)
    (tmp_path / "witness.key").write_text(WITNESS.skey())
    vkeys = tuple(network[i].node.public.vkey() for i in network.ids)
    follows = WitnessConfig(tmp_path / "witness.key", (WitnessedLogConfig(network.genesis.origin, vkeys, 3),))
    async with api_node(tmp_path / "w", witness=follows) as witness:
        store = Store(tmp_path / "ledger")
        chain = LedgerApplication(
            store, network.genesis, mempool=Mempool(max_events=100, max_bytes=1 << 20), clock=time.time
        )
        now = chain.now_ms()
        block, _ = store.build_block(
            [issue(network["m0.test"], digest("witnessed"), time_ms=now)], proposer=network.ids[0], round=0, time_ms=now
        )
        store.commit_block(block, certify(network, block))
        endpoint = WitnessEndpointConfig(CosignerKey.of(WITNESS).vkey(), witness.url)
        config = NodeConfig(
            member_id=network.ids[0],
            data_dir=tmp_path / "ledger",
            genesis=tmp_path / "g.json",
            node_key=tmp_path / "k",
            witnesses=WitnessesConfig((endpoint,), quorum=1, witness_interval_ms=20),
        )
        app = make_app(chain, config)
        app.add_routes(page_routes(genesis_json(network.genesis)))
        async with TestServer(app, host="127.0.0.1", port=0) as server:
            url = str(server.make_url("")).rstrip("/")
            bundle = await cosigned_bundle(NodeClient(url))
            note = SignedNote.parse(str(bundle["checkpoint"]))
            bundle["checkpoint"] = replace(note, signatures=note.signatures[:3]).format()  # the validators' only
            unwitnessed = tmp_path / "unwitnessed-receipt.json"
            unwitnessed.write_text(json.dumps(bundle))
            absent_too = note.with_signatures([cosign(note.text, ABSENT, int(time.time())).note_signature()])
            also_absent = tmp_path / "also-absent-receipt.json"
            also_absent.write_text(json.dumps({**bundle, "checkpoint": absent_too.format()}))
            line = cosign(note.text, WITNESS, int(time.time())).note_signature()
            forged_note = replace(note, signatures=(*note.signatures[:3], replace(line, signature=bytes(72))))
            forged = tmp_path / "forged-receipt.json"
            forged.write_text(json.dumps({**bundle, "checkpoint": forged_note.format()}))
            yield Site(url, unwitnessed, also_absent, forged)
        store.close()


async def cosigned_bundle(client: NodeClient) -> dict[str, object]:
    """The node's bundle of the credential once its checkpoint carries the witness's cosignature."""
    for _ in range(600):
        bundle = await asyncio.to_thread(client.credential, digest("witnessed"))
        assert isinstance(bundle["checkpoint"], str)
        if verified_cosignatures(SignedNote.parse(bundle["checkpoint"]), [CosignerKey.of(WITNESS)]):
            return bundle
        await asyncio.sleep(0.05)
    raise AssertionError("the node's checkpoint was never cosigned")


async def require(tab: Tab, vkeys: list[str], quorum: str) -> str:
    """Fill in the witness policy as a person would; return what the form says of it."""
    await tab.evaluate(
        "document.getElementById('witness-details').open = true;"
        f"document.getElementById('witness-vkeys').value = {json.dumps(chr(10).join(vkeys))};"
        f"document.getElementById('witness-quorum').value = {json.dumps(quorum)};"
        "document.getElementById('witness-quorum').dispatchEvent(new Event('input'))"
    )
    await asyncio.sleep(0.2)
    state: str = await tab.evaluate("document.getElementById('witness-policy-state').textContent")
    return state


def witness_checks(answer: dict[str, object]) -> list[tuple[str, str]]:
    checks = answer["checks"]
    assert isinstance(checks, list)
    # Each item reads as its mark (one character), then "<step>: <detail>".
    return [(outcome, text[1:]) for outcome, text in checks if text[1:].startswith("witnesses:")]


async def test_the_page_demands_the_witnesses_a_person_lists_and_names_the_missing(site: Site, tmp_path: Path) -> None:
    present, absent = CosignerKey.of(WITNESS).vkey(), CosignerKey.of(ABSENT).vkey()
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")

        answer = await paste(tab, digest("witnessed"))  # no policy: the members' certificate is enough
        assert answer["code"] == "valid" and witness_checks(answer) == [], answer

        state = await require(tab, [present], "")
        assert "cosignatures of 1 of 1 witnesses (witness.test/w1)" in state
        answer = await paste(tab, digest("witnessed"))
        assert answer["code"] == "valid", answer
        assert witness_checks(answer) == [
            ("ok", "witnesses: the node's proof: cosigned by witness.test/w1 (1 of 1 required)")
        ]

        await require(tab, [present, absent], "2")
        answer = await paste(tab, digest("witnessed"))
        await tab.screenshot(ARTIFACTS / "page-witnesses-missing.png")
        assert answer["code"] == "failed" and answer["status"] == "Could not be verified", answer
        ((outcome, text),) = witness_checks(answer)
        assert outcome == "failed"
        assert "carries 1 of the 2 required witness cosignatures; missing: witness.test/absent" in text

        await require(tab, [present], "1")
        await tab.evaluate("document.getElementById('result').dataset.status = 'checking'")
        await tab.set_file("#file", site.unwitnessed)
        answer = await result_of(tab)
        assert answer["code"] == "failed", answer
        assert "The file you chose (unwitnessed-receipt.json) failed a check" in str(answer["summary"])
        ((outcome, text),) = witness_checks(answer)
        assert "the proof file you chose: the checkpoint carries 0 of the 1 required" in text
        assert "missing: witness.test/w1" in text
        assert tab.errors() == []


async def test_a_policy_the_page_cannot_read_is_refused_with_what_is_wrong(site: Site, tmp_path: Path) -> None:
    node_vkey = make_network(1)["m0.test"].node.public.vkey()  # a note key, not a cosigner key
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        state = await require(tab, [node_vkey], "")
        assert "expected signature type 0x04 (Ed25519 cosignature), got 0x01" in state
        answer = await paste(tab, digest("witnessed"))
        assert answer["code"] == "error", answer
        assert "expected signature type 0x04" in str(answer["summary"])
        state = await require(tab, [CosignerKey.of(WITNESS).vkey()], "3")
        assert "witness quorum must be between 0 and the 1 witnesses, got 3" in state
        assert tab.errors() == []


async def test_a_kept_receipt_that_meets_the_policy_is_not_replaced_by_a_node_proof_that_does_not(
    site: Site, tmp_path: Path
) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        await require(tab, [CosignerKey.of(ABSENT).vkey()], "1")
        await tab.evaluate("document.getElementById('result').dataset.status = 'checking'")
        await tab.set_file("#file", site.also_absent)
        answer = await result_of(tab)
        assert answer["code"] == "valid", answer
        assert "only the proof file you chose was used" in str(answer["summary"])
        checks = witness_checks(answer)
        assert checks[0] == (
            "ok",
            "witnesses: the proof file you chose: cosigned by witness.test/absent (1 of 1 required)",
        )
        assert (
            checks[1][0] == "failed" and "the node's current proof: the checkpoint carries 0 of the 1" in checks[1][1]
        )
        assert tab.errors() == []


async def test_a_forged_cosignature_of_a_listed_witness_refuses_the_proof(site: Site, tmp_path: Path) -> None:
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        await require(tab, [CosignerKey.of(WITNESS).vkey()], "1")
        await tab.evaluate("document.getElementById('result').dataset.status = 'checking'")
        await tab.set_file("#file", site.forged)
        answer = await result_of(tab)
        assert answer["code"] == "failed", answer
        ((outcome, text),) = witness_checks(answer)
        assert (outcome, text) == ("failed", "witnesses: the proof file you chose: the cosignature of witness "
                                   "witness.test/w1 does not verify")  # fmt: skip
        assert tab.errors() == []


async def test_the_policy_a_person_set_is_kept_in_the_browser_and_shown_open(site: Site, tmp_path: Path) -> None:
    present = CosignerKey.of(WITNESS).vkey()
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(site.url + "/")
        await require(tab, [present, CosignerKey.of(ABSENT).vkey()], "2")
        await tab.navigate(site.url + "/")  # the same browser comes back to the page
        assert await tab.evaluate("document.getElementById('witness-details').open") is True
        state = await tab.evaluate("document.getElementById('witness-policy-state').textContent")
        assert "cosignatures of 2 of 2 witnesses (witness.test/w1, witness.test/absent)" in state
        answer = await paste(tab, digest("witnessed"))
        assert answer["code"] == "failed" and "missing: witness.test/absent" in str(answer["checks"])
        await require(tab, [], "")  # cleared: nothing is kept, and the page asks for no witness
        await tab.navigate(site.url + "/")
        assert await tab.evaluate("document.getElementById('witness-details').open") is False
        assert (await paste(tab, digest("witnessed")))["code"] == "valid"
        assert tab.errors() == []
