"""A badge signed by a running node (4 validators, real processes on 127.0.0.1, through m0's VC-API) checked on
another node's verification page in headless Chromium: its Data Integrity proof verifies in the browser against
the key that registered it, and after a revocation the page shows the revocation with the proof still checked."""

from __future__ import annotations

import asyncio
import json
import urllib.error
from pathlib import Path
from typing import Any

from credledger.ledger.digest import credential_digest
from tests.e2e.cdp import Tab, chromium
from tests.e2e.test_page import ARTIFACTS, result_of
from tests.integration.cluster import Cluster, poll
from tests.integration.test_vc_live import M0, badge, post
from tests.integration.test_vc_live import net as net  # noqa: PLC0414 - the running network fixture


async def drop(tab: Tab, path: Path) -> dict[str, Any]:
    await tab.evaluate("document.getElementById('result').dataset.status = 'checking'")
    await tab.set_file("#file", path)
    return await result_of(tab)


def proof_lines(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(kind, text[1:]) for kind, text in answer["checks"] if text[1:].startswith("credential-proof: ")]


async def test_a_badge_a_node_signed_verifies_on_another_node_s_page_before_and_after_revocation(
    net: Cluster, tmp_path: Path
) -> None:
    m0, m1, m2 = net.validators[:3]
    signed = await asyncio.to_thread(post, m0, "/credentials/issue", {"credential": badge()})
    credential = signed["verifiableCredential"]
    path = tmp_path / "badge.json"
    path.write_text(json.dumps(credential, indent=2))
    digest = credential_digest(path.read_bytes()).hex()

    def registered() -> bool:
        try:
            return net.get(m1, f"/v1/credentials/{digest}")["credential"]["value"] is not None
        except (urllib.error.URLError, KeyError, TypeError):
            return False

    await asyncio.to_thread(poll, "the badge registered on m1", registered)
    method = credential["proof"]["verificationMethod"]
    assert method.startswith(f"did:web:{M0}#")
    async with chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(m1.url + "/")
        answer = await drop(tab, path)
        assert answer["code"] == "valid", answer
        assert proof_lines(answer) == [
            ("ok", f"credential-proof: eddsa-rdfc-2022 proof by {method}, the key that registered it")
        ]
        await tab.screenshot(ARTIFACTS / "verify-page-signed-live.png")

        body = {"credentialId": credential["id"], "credentialStatus": [{"statusPurpose": "revocation", "status": "1"}]}
        await asyncio.to_thread(post, m0, "/credentials/status", body)

        def revoked() -> bool:
            return len(net.get(m2, f"/v1/credentials/{digest}")["events"]) > 1

        await asyncio.to_thread(poll, "the revocation on m2", revoked)
        await tab.navigate(m2.url + "/")
        answer = await drop(tab, path)
        assert answer["code"] == "revoked", answer
        assert proof_lines(answer)[0][0] == "ok"
        assert tab.errors() == []
