"""The node serves its log as C2SP tlog-tiles, and a reader that knows only the spec rebuilds what the JSON API says.

`SpecTileReader` is written from c2sp.org/tlog-tiles and RFC 6962 §2.1 alone (none of `ledger.tiles` or
`ledger.merkle`): it fetches tiles over HTTP from a real store behind a real server on 127.0.0.1, computes Merkle Tree
Hashes, audit paths and consistency proofs by the RFC's recursive definitions, and every one must equal the root or
proof `GET /v1/proof/...` serves.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from credledger.ledger.tiles import TileReader
from tests.apinode import ApiNode, api_node, problem_of
from tests.factories import T0, digest, issue

TIME = T0 + 1000
#: Two full level-0 tiles and a partial one, and a partial level-1 tile of width 2.
LOG_SIZE = 600

Fetch = Callable[[str], Awaitable[bytes]]


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _path_index(n: int) -> str:
    """tlog-tiles: N in zero-padded 3-digit elements, all but the last prefixed with 'x'."""
    digits = f"{n:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


class SpecTileReader:
    """RFC 6962 hashes of a tree of `size` entries, from tlog-tiles tiles (height 8, 32-byte hashes)."""

    def __init__(self, size: int, tiles: dict[tuple[int, int], bytes]) -> None:
        self.size = size
        self.tiles = tiles

    @classmethod
    async def load(cls, size: int, fetch: Fetch) -> SpecTileReader:
        """Fetch every tile of the tree: full ones, and the partial one at each level's right edge."""
        tiles: dict[tuple[int, int], bytes] = {}
        level = 0
        while size >> (8 * level):
            hashes_at_level = size >> (8 * level)
            for n in range((hashes_at_level + 255) // 256):
                width = min(256, hashes_at_level - 256 * n)
                path = f"tile/{level}/{_path_index(n)}" + ("" if width == 256 else f".p/{width}")
                data = await fetch(path)
                assert len(data) == 32 * width, path
                tiles[(level, n)] = data
            level += 1
        return cls(size, tiles)

    def node(self, height: int, index: int) -> bytes:
        """MTH of the complete subtree of 2^height entries starting at index·2^height."""
        level, r = divmod(height, 8)
        first = index << r  # its first hash in the row of tree level 8·level
        row = [self._stored(level, first + i) for i in range(1 << r)]
        while len(row) > 1:
            row = [_sha(b"\x01" + row[i] + row[i + 1]) for i in range(0, len(row), 2)]
        return row[0]

    def _stored(self, level: int, index: int) -> bytes:
        tile = self.tiles[(level, index // 256)]
        offset = 32 * (index % 256)
        return tile[offset : offset + 32]

    def mth(self, start: int, end: int) -> bytes:
        """RFC 6962 §2.1: MTH(D[start:end])."""
        n = end - start
        if n & (n - 1) == 0 and start % n == 0:
            return self.node(n.bit_length() - 1, start // n)
        k = 1 << ((n - 1).bit_length() - 1)  # the largest power of two smaller than n
        return _sha(b"\x01" + self.mth(start, start + k) + self.mth(start + k, end))

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        """RFC 6962 §2.1.1: PATH(m, D[start:end])."""
        n = end - start
        if n == 1:
            return []
        k = 1 << ((n - 1).bit_length() - 1)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def subproof(self, m: int, start: int, end: int, whole: bool) -> list[bytes]:
        """RFC 6962 §2.1.2: SUBPROOF(m, D[start:end], b)."""
        n = end - start
        if m == n:
            return [] if whole else [self.mth(start, end)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return [*self.subproof(m, start, start + k, whole), self.mth(start + k, end)]
        return [*self.subproof(m - k, start + k, end, False), self.mth(start, start + k)]


def decode_bundle(data: bytes) -> list[bytes]:
    """tlog-tiles §Log entries: entries, each after a big-endian uint16 length."""
    entries, offset = [], 0
    while offset < len(data):
        (length,) = struct.unpack_from(">H", data, offset)
        entries.append(data[offset + 2 : offset + 2 + length])
        offset += 2 + length
    assert offset == len(data)
    return entries


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        yield n


def fill(node: ApiNode, count: int, block: int = 150) -> None:
    m0 = node.network["m0.test"]
    made = node.log_size()
    while made < count:
        batch = min(block, count - made)
        node.decide([issue(m0, digest(f"tile {made + i}"), time_ms=TIME) for i in range(batch)])
        made = node.log_size()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def fetcher(node: ApiNode) -> Fetch:
    async def fetch(path: str) -> bytes:
        response = await node.client.get("/" + path)
        assert response.status == 200, (path, await response.text())
        assert response.content_type == "application/octet-stream"
        return await response.read()

    return fetch


async def test_a_reader_from_the_spec_rebuilds_every_root_and_proof_the_json_api_serves(node: ApiNode) -> None:
    fill(node, LOG_SIZE)
    size = node.log_size()
    note = await (await node.client.get("/checkpoint")).text()
    assert note == await (await node.client.get("/v1/checkpoint")).text()
    _origin, size_line, root_line = note.split("\n")[:3]
    assert int(size_line) == size >= LOG_SIZE
    reader = await SpecTileReader.load(size, await fetcher(node))
    assert b64(reader.mth(0, size)) == root_line

    for tree in (1, 2, 255, 256, 257, 511, 512, 513, size - 1, size):
        for index in sorted({0, tree // 3, tree - 1}):
            proof = await (await node.client.get(f"/v1/proof/inclusion?index={index}&size={tree}")).json()
            assert proof["root"] == b64(reader.mth(0, tree))
            assert proof["leaf_hash"] == b64(reader.node(0, index))
            assert proof["proof"] == [b64(h) for h in reader.path(index, 0, tree)]
        for old in sorted({1, tree // 2 or 1, tree - 1 or 1, tree}):
            proof = await (await node.client.get(f"/v1/proof/consistency?from={old}&to={tree}")).json()
            assert proof["from_root"] == b64(reader.mth(0, old))
            assert proof["proof"] == [b64(h) for h in reader.subproof(old, 0, tree, True)]


async def test_entry_bundles_hold_the_log_entries_that_hash_to_the_level_0_tiles(node: ApiNode) -> None:
    fill(node, 300)
    size = node.log_size()
    fetch = await fetcher(node)
    reader = await SpecTileReader.load(size, fetch)
    entries = decode_bundle(await fetch("tile/entries/000")) + decode_bundle(
        await fetch(f"tile/entries/001.p/{size - 256}")
    )
    served = (await (await node.client.get(f"/v1/entries?start=0&end={size}")).json())["entries"]
    assert [b64(e) for e in entries] == [e["encoded"] for e in served]
    assert [_sha(b"\x00" + e) for e in entries] == [reader.node(0, i) for i in range(size)]


async def test_the_projects_tile_reader_checks_the_served_tiles_against_the_checkpoint(node: ApiNode) -> None:
    fill(node, 300)
    size = node.log_size()
    served: dict[str, bytes] = {}
    fetch = await fetcher(node)
    for path in ("tile/0/000", f"tile/0/001.p/{size - 256}", "tile/1/000.p/1", "tile/entries/000"):
        served[path] = await fetch(path)
    root = (await (await node.client.get("/v1/proof/inclusion?index=0")).json())["root"]
    reader = TileReader(size, base64.b64decode(root), served.get)
    assert reader.entries(0)[5] == base64.b64decode(
        (await (await node.client.get("/v1/entries?start=5&end=6")).json())["entries"][0]["encoded"]
    )


async def test_full_tiles_are_immutable_and_partial_tiles_cached_briefly(node: ApiNode) -> None:
    fill(node, 260)
    full = await node.client.get("/tile/0/000")
    partial = await node.client.get("/tile/0/001.p/4")
    bundle = await node.client.get("/tile/entries/000")
    assert "immutable" in full.headers["Cache-Control"] and "immutable" in bundle.headers["Cache-Control"]
    assert "immutable" not in partial.headers["Cache-Control"]
    assert "max-age=" in partial.headers["Cache-Control"]


async def test_tile_paths_past_the_log_are_404_and_malformed_ones_400(node: ApiNode) -> None:
    fill(node, 10)
    await problem_of(await node.client.get("/tile/0/000"), 404, "unknown-tile", "covers entries up to 256")
    await problem_of(await node.client.get("/tile/0/000.p/11"), 404, "unknown-tile", "the log has 1")
    await problem_of(await node.client.get("/tile/entries/001.p/3"), 404, "unknown-tile", "covers entries up to 259")
    await problem_of(await node.client.get("/tile/1/000.p/1"), 404, "unknown-tile", "up to 256")
    for bad, why in [
        ("/tile/0/0", "3-digit element"),
        ("/tile/00/000", "level must be 0 to 63"),
        ("/tile/0/x000/001", "leading zero element"),
        ("/tile/0/000.p/256", "partial width must be 1 to 255"),
        ("/tile/0/000.p/007", "partial width"),
        ("/tile/entries/" + "x999/" * 12 + "000", "exceeds the limit"),
        ("/tile/64/000", "level must be 0 to 63"),
    ]:
        await problem_of(await node.client.get(bad), 400, "bad-tile-path", why)


async def test_a_partial_tile_of_any_width_the_log_has_passed_is_served(node: ApiNode) -> None:
    fill(node, 10)
    three = await (await node.client.get("/tile/0/000.p/3")).read()
    ten = await (await node.client.get("/tile/0/000.p/10")).read()
    assert ten[: len(three)] == three and len(ten) == 320
