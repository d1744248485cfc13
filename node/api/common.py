"""What the API's handler modules share: the application keys, and parsing of path and query parameters.

Handlers find the node's objects through `web.AppKey`s rather than globals, so one process can serve several
chains (tests do) and the server can mount the API inside a bigger application.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from credledger.ledger.digest import parse_digest
from credledger.ledger.errors import DecodeError
from credledger.node.api.problems import Problem
from credledger.node.application import LedgerApplication
from credledger.node.config import NodeConfig

#: Largest integer a query or path parameter may hold (heights, sizes and indexes are 63-bit).
MAX_PARAMETER = 2**63 - 1
JSON_TYPE = "application/json"
#: A well-formed id or digest: the common case, parsed without the checks that word what is wrong.
_LOWER_HEX32 = re.compile("[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class LiveStatus:
    """What the consensus driver and the peer layer know and the chain does not; None where nothing is running."""

    round: int | None = None
    peers: int | None = None
    syncing: bool = False
    #: Why the network does not commit as this node sees it (`node.health.why_not_committing`); None while it does.
    stalled: str | None = None
    #: Why catching up with the peers fails (this node serves stale answers meanwhile); None while it works.
    catch_up_failure: str | None = None
    #: The highest height a reachable peer reported.
    peer_height: int | None = None


#: Called on every `GET /v1/status`; the node's driver passes one that reads its live state.
StatusSource = Callable[[], LiveStatus]


def no_live_status() -> LiveStatus:
    """The status source of a node without a consensus driver or peers (tests, a node still starting)."""
    return LiveStatus()


APPLICATION = web.AppKey("chain", LedgerApplication)
CONFIG = web.AppKey("config", NodeConfig)
STATUS: web.AppKey[StatusSource] = web.AppKey("status")


def json_response(data: Any, status: int = 200) -> web.Response:
    """A compact JSON response."""
    return web.Response(status=status, text=json.dumps(data, separators=(",", ":")), content_type=JSON_TYPE)


def b64(data: bytes) -> str:
    """Standard base64: how Merkle hashes and encoded records travel (DESIGN §9)."""
    return base64.b64encode(data).decode()


def parse_hex32(text: str, what: str) -> bytes:
    """A 32-byte id or digest from its 64 lowercase hex digits, or a 400 problem naming `what`.

    Uppercase is refused, not folded: digests and ids have one written form (DESIGN §9), so a URL names a
    resource one way only and caches, logs and links agree."""
    if _LOWER_HEX32.fullmatch(text):
        return bytes.fromhex(text)
    try:
        value = parse_digest(text)
    except DecodeError as exc:
        raise Problem(400, "malformed", f"{what}: {exc}") from None
    upper = next((i for i, char in enumerate(text) if char.isupper()), None)
    if upper is not None:
        raise Problem(
            400,
            "malformed",
            f"{what}: digests and ids are lowercase hexadecimal: {text[upper]!r} at position {upper} is uppercase "
            f"(use {text.lower()})",
        )
    return value


def parse_count(text: str, what: str) -> int:
    """A non-negative decimal integer, or a 400 problem naming `what`."""
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > MAX_PARAMETER:
        raise Problem(400, "malformed", f"{what} must be a non-negative integer below 2^63, got {text[:40]!r}")
    return int(text)


def query_int(request: web.Request, name: str, default: int | None = None) -> int:
    """Query parameter `name` as a non-negative integer; 400 if it is malformed or missing without a default."""
    text = request.query.get(name)
    if text is None:
        if default is None:
            raise Problem(400, "malformed", f"query parameter {name!r} is required")
        return default
    return parse_count(text, f"query parameter {name!r}")
