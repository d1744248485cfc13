"""The verification page every node serves at `/` (DESIGN §9).

A person drops a credential on the page; the page computes its digest, fetches the proof bundle from this node
(`GET /v1/credentials/{digest}`, same origin) and verifies it in the browser (`static/ledger.js`, WebCrypto
only) against the genesis embedded in the page -- so the page checks what the node says instead of repeating it.

The genesis is embedded in its normalised JSON form (members sorted by id, parameters in declaration order),
which is the order the page encodes it in to compute the genesis hash a bundle names.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from aiohttp import web

from credledger.ledger.genesis import genesis_json, parse_genesis
from credledger.ledger.vc.loader import shipped_loader

STATIC_DIR = Path(__file__).with_name("static")
#: The icon browsers ask for at /favicon.ico: a 32x32 PNG check mark in an ICO container.
FAVICON = STATIC_DIR / "favicon.ico"
#: Everything the page loads comes from this node; nothing else may run or be fetched.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def render_index(genesis_json_text: str) -> str:
    """The page's HTML with the network's genesis embedded (ConfigError if the genesis does not parse)."""
    genesis = parse_genesis(genesis_json_text)
    # Inside <script type="application/json"> only "</" could end the element early; JSON can spell "<" as \\u003c.
    embedded = genesis_json(genesis).strip().replace("<", "\\u003c")
    template = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return template.replace("{{ORIGIN}}", html.escape(genesis.origin)).replace("{{GENESIS}}", embedded)


#: Where the page finds the JSON-LD contexts credledger ships, to check a signed credential's proof without the network.
CONTEXTS_PATH = "/static/contexts.json"


def shipped_contexts_json() -> bytes:
    """Every shipped JSON-LD context as one JSON object, context URL -> document (`ledger.vc.loader`)."""
    return json.dumps(dict(shipped_loader().documents), ensure_ascii=False, separators=(",", ":")).encode()


def page_routes(genesis_json_text: str) -> list[web.AbstractRouteDef]:
    """Routes serving the page at `/`, its icon at `/favicon.ico`, its scripts and style under `/static/`, and the
    shipped JSON-LD contexts at `CONTEXTS_PATH`."""
    body = render_index(genesis_json_text)
    icon = FAVICON.read_bytes()
    contexts = shipped_contexts_json()

    async def index(_request: web.Request) -> web.Response:
        return web.Response(
            text=body,
            content_type="text/html",
            charset="utf-8",
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )

    async def favicon(_request: web.Request) -> web.Response:
        return web.Response(
            body=icon,
            content_type="image/x-icon",
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    async def shipped(_request: web.Request) -> web.Response:
        return web.Response(
            body=contexts,
            content_type="application/json",
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    return [
        web.get("/", index),
        web.get("/favicon.ico", favicon),
        web.get(CONTEXTS_PATH, shipped),
        web.static("/static", STATIC_DIR),
    ]
