"""The verification page's routes: the genesis embedded safely, strict security headers, static files served."""

from __future__ import annotations

import json
import math
import re

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from credledger.cli.common import MAX_CREDENTIAL_BYTES
from credledger.ledger.events import MemberAdd
from credledger.ledger.genesis import Genesis, Params, genesis_json
from credledger.node.api.page import CONTENT_SECURITY_POLICY, STATIC_DIR, page_routes, render_index
from tests.factories import T0, make_member


def hostile_genesis() -> Genesis:
    member = make_member("m0.test")
    add = MemberAdd(
        "m0.test", "</script><script>alert(1)</script>", 1, member.node.public.raw, (member.issuer.public.raw,)
    )
    return Genesis.of("credledger.test/<b>page</b>", T0, [add], Params())


def test_the_genesis_is_embedded_normalised_and_cannot_break_out_of_its_script_element() -> None:
    genesis = hostile_genesis()
    page = render_index(genesis_json(genesis))
    embedded = re.search(r'<script type="application/json" id="genesis">(.*?)</script>', page, re.S)
    assert embedded is not None
    assert "<" not in embedded.group(1)
    assert json.loads(embedded.group(1)) == json.loads(genesis_json(genesis))
    assert "<title>Verify a credential · credledger.test/&lt;b&gt;page&lt;/b&gt;</title>" in page


async def test_the_page_and_its_scripts_are_served_with_a_strict_policy() -> None:
    app = web.Application()
    app.add_routes(page_routes(genesis_json(hostile_genesis())))
    async with TestClient(TestServer(app)) as client:
        index = await client.get("/")
        assert index.status == 200 and index.content_type == "text/html"
        assert index.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert "script-src 'self'" in CONTENT_SECURITY_POLICY and "connect-src 'self'" in CONTENT_SECURITY_POLICY
        for name, kind in (("ledger.js", "javascript"), ("verify.js", "javascript"), ("style.css", "text/css")):
            answer = await client.get(f"/static/{name}")
            assert answer.status == 200 and kind in answer.content_type, name
        assert (await client.get("/static/../page.py")).status in (403, 404)


async def test_the_node_serves_an_icon_at_favicon_ico() -> None:
    app = web.Application()
    app.add_routes(page_routes(genesis_json(hostile_genesis())))
    async with TestClient(TestServer(app)) as client:
        answer = await client.get("/favicon.ico")
        assert answer.status == 200 and answer.content_type == "image/x-icon"
        icon = await answer.read()
        # An ICO header (reserved 0, type 1 = icon, one image) holding a PNG.
        assert icon[:6] == b"\x00\x00\x01\x00\x01\x00" and icon[22:30] == b"\x89PNG\r\n\x1a\n"


def test_the_page_and_the_command_line_bound_credential_files_alike() -> None:
    script = (STATIC_DIR / "verify.js").read_text(encoding="utf-8")
    bound = re.search(r"const MAX_FILE_BYTES = ([0-9 *]+);", script)
    assert bound is not None
    assert math.prod(int(factor) for factor in bound.group(1).split("*")) == MAX_CREDENTIAL_BYTES
