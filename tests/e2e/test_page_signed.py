"""A signed W3C VC 2.0 / Open Badges 3.0 credential dropped on the page: its Data Integrity proof is checked in the
browser against the issuer key that registered it, as its own named line, in the same words as `credledger verify`.

A real node app on a real LMDB store on 127.0.0.1 serving the page; credentials signed in-test exactly as
`credledger issue --sign` signs them (ledger.vc.issuing) and registered with real issue events; Debian's headless
Chromium. Each case is also verified with the Python verifier, and the page's line must read the same.
Screenshots go to test-artifacts/.
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

from credledger.ledger.digest import credential_digest
from credledger.ledger.events import Event, Issue, KeyRetire
from credledger.ledger.genesis import genesis_json
from credledger.ledger.keys import SigningKey
from credledger.ledger.state import MemberRecord, get_member
from credledger.ledger.storage.store import Store
from credledger.ledger.vc.issuing import prepare_credential, sign_issued
from credledger.ledger.vc.loader import CREDENTIALS_V2, OB_V3P0
from credledger.node.api.app import make_app
from credledger.node.api.page import page_routes
from credledger.node.application import LedgerApplication
from credledger.node.config import NodeConfig
from credledger.node.mempool import Mempool
from credledger.verifier.client import NodeClient
from credledger.verifier.credential import verify_credential
from tests.blocks import certify
from tests.e2e.cdp import Tab, chromium
from tests.e2e.test_page import ARTIFACTS, result_of
from tests.factories import Network, key_for, make_network, signed

M0 = "m0.test"
PASSED, FAILED = "\u2713", "\u2717"


def badge(name: str) -> dict[str, Any]:
    """An unsigned Open Badges 3.0 credential, as an institution would hand it to `credledger issue --sign`."""
    return {
        "@context": [CREDENTIALS_V2, OB_V3P0],
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": name,
        "issuer": {"type": ["Profile"], "name": "M0 University", "url": "https://m0.test"},
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "urn:uuid:0b5b3c4e-8f2a-4f7e-9d7c-1e2f3a4b5c6d",
                "type": ["Achievement"],
                "name": name,
                "criteria": {"narrative": "Passed every module."},
            },
        },
    }


@dataclass
class Ledger:
    """A node app with the page, on a fresh store; `decide` commits a certified block of the given events."""

    network: Network
    store: Store
    chain: LedgerApplication
    url: str
    folder: Path

    def decide(self, *events: Event) -> None:
        block, _ = self.store.build_block(
            list(events), proposer=self.network.ids[0], round=0, time_ms=self.chain.now_ms()
        )
        self.store.commit_block(block, certify(self.network, block))

    def member(self) -> MemberRecord:
        with self.store.snapshot() as snap:
            record = get_member(snap.state_view(), M0)
        assert record is not None
        return record

    def sign(self, name: str, key: SigningKey, index: int) -> dict[str, Any]:
        now = self.chain.now_ms()
        return sign_issued(prepare_credential(badge(name), self.member(), 0, index, now), self.member(), key, now)

    def register(self, document: dict[str, Any], file: str, key: SigningKey | None = None) -> Path:
        """Write `document` to a file and commit its issue event, signed by `key` (m0's first issuer key)."""
        path = self.folder / file
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False))
        issue = Issue(credential_digest(path.read_bytes()), M0, None, ())
        self.decide(signed(issue, key or self.network[M0].issuer, time_ms=self.chain.now_ms()))
        return path


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    network = make_network(4, issuer_keys=2)
    store = Store(tmp_path / "ledger")
    chain = LedgerApplication(
        store, network.genesis, mempool=Mempool(max_events=100, max_bytes=1 << 20), clock=time.time
    )
    config = NodeConfig(
        member_id=network.ids[0], data_dir=tmp_path / "ledger", genesis=tmp_path / "g.json", node_key=tmp_path / "k"
    )
    app = make_app(chain, config)
    app.add_routes(page_routes(genesis_json(network.genesis)))
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        yield Ledger(network, store, chain, str(server.make_url("")).rstrip("/"), tmp_path)
    store.close()


async def drop(tab: Tab, path: Path) -> dict[str, Any]:
    await tab.evaluate("document.getElementById('result').dataset.status = 'checking'")
    await tab.set_file("#file", path)
    answer = await result_of(tab)
    answer["verdict"] = await tab.evaluate("document.getElementById('result').dataset.verdict")
    return answer


def proof_line(answer: dict[str, Any]) -> tuple[str, str]:
    """The page's credential-proof line: its class ("ok" / "failed") and its text without the mark."""
    lines = [(kind, text[1:]) for kind, text in answer["checks"] if text[1:].startswith("credential-proof: ")]
    assert len(lines) == 1, answer["checks"]
    return lines[0]


async def library_line(ledger: Ledger, path: Path) -> tuple[str, str]:
    report = await asyncio.to_thread(verify_credential, path, genesis=ledger.network.genesis, nodes=[ledger.url])
    check = next(c for c in report.checks if c.step == "credential-proof")
    return ("ok" if check.ok else "failed", f"credential-proof: {check.detail}")


async def test_a_signed_badge_verifies_in_the_page_with_its_proof_as_a_named_check(ledger: Ledger) -> None:
    m0 = ledger.network[M0]
    path = ledger.register(ledger.sign("Marine Biology, BSc", m0.issuer, 11), "badge.json")
    async with chromium(ledger.folder / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(ledger.url + "/")
        answer = await drop(tab, path)
        assert answer["code"] == "valid" and answer["status"] == "Valid", answer
        line = proof_line(answer)
        assert line == (
            "ok",
            f"credential-proof: eddsa-rdfc-2022 proof by did:web:{M0}#{m0.issuer.key_id.hex()}, "
            "the key that registered it",
        )
        assert line == await library_line(ledger, path)
        await tab.screenshot(ARTIFACTS / "verify-page-signed-valid.png")
        assert tab.errors() == []


async def test_a_credential_signed_before_its_key_was_retired_still_verifies(ledger: Ledger) -> None:
    m0 = ledger.network[M0]
    path = ledger.register(ledger.sign("Signed before the rotation", m0.issuer, 12), "before-rotation.json")
    ledger.decide(signed(KeyRetire(M0, m0.issuer.key_id, None), m0.issuers[1], time_ms=ledger.chain.now_ms()))
    async with chromium(ledger.folder / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(ledger.url + "/")
        answer = await drop(tab, path)
        assert answer["code"] == "valid", answer
        assert proof_line(answer)[0] == "ok"
        assert proof_line(answer) == await library_line(ledger, path)
        assert tab.errors() == []


async def test_a_tampered_signed_credential_fails_naming_the_proof_check(ledger: Ledger) -> None:
    document = ledger.sign("Marine Biology, BSc", ledger.network[M0].issuer, 13)
    document["name"] = "Marine Biology, PhD"  # changed after signing, then registered as it is now
    path = ledger.register(document, "tampered.json")
    async with chromium(ledger.folder / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(ledger.url + "/")
        answer = await drop(tab, path)
        assert answer["code"] == "failed" and answer["verdict"] == "invalid-proof", answer
        assert answer["status"] == "Its signature does not verify"
        kind, text = proof_line(answer)
        assert kind == "failed" and text.startswith("credential-proof: signature: Ed25519 signature does not verify")
        assert (kind, text) == await library_line(ledger, path)
        assert [t[1:].split(":")[0] for k, t in answer["checks"] if k == "failed"] == ["credential-proof"]
        assert await tab.evaluate("document.getElementById('checks').open") is True
        await tab.screenshot(ARTIFACTS / "verify-page-signed-tampered.png")
        assert tab.errors() == []


async def test_a_credential_whose_json_ld_breaks_safe_mode_names_the_term(ledger: Ledger) -> None:
    document = ledger.sign("Marine Biology, BSc", ledger.network[M0].issuer, 14)
    document["notInAnyContext"] = "JSON-LD would drop this silently"
    path = ledger.register(document, "unsafe.json")
    async with chromium(ledger.folder / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(ledger.url + "/")
        answer = await drop(tab, path)
        assert answer["verdict"] == "invalid-proof", answer
        kind, text = proof_line(answer)
        assert (kind, text) == (
            "failed",
            "credential-proof: canonicalization: term 'notInAnyContext' is not defined by the document's contexts "
            "(it would be ignored)",
        )
        assert (kind, text) == await library_line(ledger, path)
        await tab.screenshot(ARTIFACTS / "verify-page-signed-unsafe.png")
        assert tab.errors() == []


async def test_a_credential_signed_with_a_key_the_ledger_never_registered_fails(ledger: Ledger) -> None:
    stranger = key_for(M0, "never registered")
    path = ledger.register(ledger.sign("Forged", stranger, 15), "forged.json")
    async with chromium(ledger.folder / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(ledger.url + "/")
        answer = await drop(tab, path)
        assert answer["verdict"] == "invalid-proof", answer
        kind, text = proof_line(answer)
        assert kind == "failed" and text.startswith("credential-proof: verification-method: ")
        assert stranger.key_id.hex() in text
        assert (kind, text) == await library_line(ledger, path)
        assert tab.errors() == []


async def test_a_credential_signed_with_a_compromised_key_fails_at_the_issuer_key(ledger: Ledger) -> None:
    m0 = ledger.network[M0]
    path = ledger.register(ledger.sign("Signed with a stolen key", m0.issuer, 16), "compromised.json")
    retire = KeyRetire(M0, m0.issuer.key_id, 1)
    governance = [ledger.network[i].node for i in ledger.network.ids]
    ledger.decide(signed(retire, *governance, time_ms=ledger.chain.now_ms()))
    async with chromium(ledger.folder / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(ledger.url + "/")
        answer = await drop(tab, path)
        assert answer["code"] == "failed", answer
        failed = [t[1:] for k, t in answer["checks"] if k == "failed"]
        assert len(failed) == 1 and failed[0].startswith("issuer-key: the key is marked compromised since height 1")
        assert tab.errors() == []


async def test_an_unsigned_json_credential_gets_no_proof_line(ledger: Ledger) -> None:
    path = ledger.register({"type": ["VerifiableCredential"], "name": "Unsigned"}, "unsigned.json")
    async with chromium(ledger.folder / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(ledger.url + "/")
        answer = await drop(tab, path)
        assert answer["code"] == "valid", answer
        assert not [t for _, t in answer["checks"] if "credential-proof" in t]
        assert tab.errors() == []


async def drop_pair(tab: Tab, credential: Path, bundle: Path) -> dict[str, Any]:
    """Choose a credential and its kept bundle together, as a person selecting both files would."""
    await tab.evaluate("document.getElementById('result').dataset.status = 'checking'")
    document = await tab.send("DOM.getDocument")
    node = await tab.send("DOM.querySelector", nodeId=document["root"]["nodeId"], selector="#file")
    await tab.send("DOM.setFileInputFiles", files=[str(credential), str(bundle)], nodeId=node["nodeId"])
    answer = await result_of(tab)
    answer["verdict"] = await tab.evaluate("document.getElementById('result').dataset.verdict")
    return answer


async def keep_bundle(ledger: Ledger, credential: Path, file: str) -> Path:
    kept = await asyncio.to_thread(NodeClient(ledger.url).credential, credential_digest(credential.read_bytes()))
    path = ledger.folder / file
    path.write_text(json.dumps(kept))
    return path


async def test_a_signed_credential_chosen_with_its_kept_bundle_is_checked_with_that_bundle(ledger: Ledger) -> None:
    m0 = ledger.network[M0]
    path = ledger.register(ledger.sign("Kept with its proof", m0.issuer, 21), "kept-badge.json")
    bundle = await keep_bundle(ledger, path, "kept-badge.proof.json")
    tampered_document = ledger.sign("Kept with its proof", m0.issuer, 22)
    tampered_document["name"] = "Changed after signing"
    tampered = ledger.register(tampered_document, "kept-tampered.json")
    tampered_bundle = await keep_bundle(ledger, tampered, "kept-tampered.proof.json")
    async with chromium(ledger.folder / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(ledger.url + "/")
        answer = await drop_pair(tab, path, bundle)
        assert answer["code"] == "valid", answer
        steps = [text[1:].split(":")[0] for _, text in answer["checks"]]
        assert "receipt" in steps and steps[-1] == "credential-proof"
        assert proof_line(answer) == await library_line(ledger, path)
        assert "kept-badge.json and kept-badge.proof.json" in answer["facts"]
        await tab.screenshot(ARTIFACTS / "verify-page-signed-pair.png")

        answer = await drop_pair(tab, tampered_bundle, tampered)  # in either order
        assert answer["verdict"] == "invalid-proof", answer
        assert proof_line(answer)[1].startswith("credential-proof: signature: ")

        assert tab.errors() == []
