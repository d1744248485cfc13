"""The page and the library give every document the same digest, or the same refusal, word for word.

The corpus (tests/vectors/jcs/) is fed to the page's own ledger.js in headless Chromium -- as served by a node --
and to ledger/digest.py; both are compared with each other and with the expected answers kept beside the files.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from credledger.ledger.digest import document_digest
from credledger.ledger.errors import DecodeError
from credledger.ledger.genesis import genesis_json
from credledger.node.api.page import page_routes
from tests.e2e.cdp import Tab, chromium
from tests.factories import make_network

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "jcs"
EXPECTED: dict[str, dict[str, str]] = json.loads((VECTORS / "expected.json").read_text(encoding="utf-8"))
READ = """(async () => {
  const bytes = Uint8Array.from(atob("%s"), (c) => c.charCodeAt(0));
  const r = await LEDGER.readDocument(bytes);
  return r.refused ? {refused: r.refused} : {method: r.method, sha256: LEDGER.toHex(r.digest)};
})()"""


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Tab]:
    app = web.Application()
    app.add_routes(page_routes(genesis_json(make_network(1).genesis)))
    async with TestServer(app, host="127.0.0.1", port=0) as server, chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(str(server.make_url("/")))
        yield tab


def library_answer(data: bytes) -> dict[str, str]:
    try:
        result = document_digest(data)
    except DecodeError as exc:
        return {"refused": str(exc)}
    return {"method": result.method.value, "sha256": result.digest.hex()}


async def page_answer(tab: Tab, data: bytes) -> Any:
    return await tab.evaluate(READ % base64.b64encode(data).decode())


async def test_page_and_library_agree_on_every_tricky_document(page: Tab) -> None:
    answers = {}
    for name in sorted(EXPECTED):
        data = (VECTORS / "tricky" / name).read_bytes()
        answers[name] = (library_answer(data), await page_answer(page, data))
    disagreements = {name: pair for name, pair in answers.items() if pair[0] != pair[1]}
    assert disagreements == {}
    assert {name: pair[1] for name, pair in answers.items()} == EXPECTED
    assert page.errors() == []


async def test_the_page_canonicalises_the_rfc_8785_reference_data_exactly(page: Tab) -> None:
    for source in sorted((VECTORS / "rfc8785" / "input").iterdir()):
        encoded = base64.b64encode(source.read_bytes()).decode()
        decoded = f'new TextDecoder().decode(Uint8Array.from(atob("{encoded}"), (c) => c.charCodeAt(0)))'
        canonical = await page.evaluate(f"LEDGER.canonicalJson({decoded})")
        assert canonical.encode() == (VECTORS / "rfc8785" / "output" / source.name).read_bytes(), source.name
