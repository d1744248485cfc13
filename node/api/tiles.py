"""The log as C2SP tlog-tiles: `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]`.

Every node serves its whole log in the static layout any HTTP server, object store or CDN could serve, so clients
that speak tlog-tiles (and `ledger.tiles.TileReader`) read proofs without the JSON API. A tile is read from one
store snapshot: its hashes are the log's stored complete nodes of level 8·L (`MerkleLog.node_hashes`), so a full
tile costs the pages holding those nodes and nothing else; an entry bundle is the events' canonical bytes, each
length-prefixed (tlog-tiles §Log entries).

A full tile or bundle never changes once the log reaches its end, and is cached as immutable; a partial one is
replaced by a wider one as the log grows, so it is cached only briefly.
"""

from __future__ import annotations

from aiohttp import web

from credledger.ledger.errors import DecodeError
from credledger.ledger.tiles import EntryBundle, TileRangeError, encode_bundle, parse_path, tile_data
from credledger.node.api.common import APPLICATION
from credledger.node.api.problems import Problem

#: tlog-tiles: full tiles and bundles are immutable, so any cache may keep them for good.
FULL_TILE_CACHE = "public, max-age=31536000, immutable"
#: A partial tile is superseded (and may be deleted) once the log grows past it.
PARTIAL_TILE_CACHE = "public, max-age=60"
TILE_TYPE = "application/octet-stream"


async def get_tile(request: web.Request) -> web.Response:
    """A tile or entry bundle of the log, by its tlog-tiles path."""
    path = "tile/" + request.match_info["tile"]
    try:
        item = parse_path(path)
    except DecodeError as exc:
        raise Problem(400, "bad-tile-path", str(exc)) from None
    except TileRangeError as exc:
        raise Problem(404, "unknown-tile", str(exc)) from None
    chain = request.app[APPLICATION]
    with chain.store.snapshot() as snap:
        size = snap.log_size
        if item.end > size:
            raise Problem(404, "unknown-tile", f"{path} covers entries up to {item.end}, the log has {size}")
        if isinstance(item, EntryBundle):
            body = encode_bundle([snap.entry(i) for i in range(item.start, item.end)])
        else:
            body = tile_data(item, size, snap.node_hashes)
    cache = FULL_TILE_CACHE if item.is_full else PARTIAL_TILE_CACHE
    return web.Response(body=body, content_type=TILE_TYPE, headers={"Cache-Control": cache})
