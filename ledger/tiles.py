"""C2SP tlog-tiles: tile and entry-bundle paths, their bytes, and a verifying tile reader, as pure functions.

Theory of operation
-------------------
A tiled log (c2sp.org/tlog-tiles, "Merkle Tree") serves its RFC 6962 tree as *tiles*: tile (L, N) is the 256
consecutive Merkle Tree Hashes ``MTH(D[(N·256 + i)·256^L : (N·256 + i + 1)·256^L])``, i = 0 … 255, so each hash
of a level-L tile is the root of a full tile at level L - 1 and the tile spans entries [N·256^(L+1),
(N+1)·256^(L+1)). At the right edge of a tree of size s, level L has one *partial* tile of width
``floor(s / 256^L) mod 256`` (none when that is zero); partial tiles are never hashed into the level above.

The tree of size s is therefore covered exactly by its partial tiles, read from the top level down: bit h of s
(h = 8L + r) is one complete node of 2^h entries, the root of 2^r consecutive hashes of the level-L partial tile.
So `TileReader` authenticates the partial tiles by recomputing the signed root from them alone, and then any full
tile by hashing it into its (already authenticated) parent hash one level up. Every node of the tree of size s,
hence the root of any size <= s and every RFC 9162 proof among them, comes from authenticated tiles; a tile of the
wrong length, a hash that does not match, or an entry bundle that does not hash to its level-0 tile is refused with
`VerificationError` naming the tile.

`tile_data` is the serving side: the bytes of any tile of a tree, from a callback that returns node hashes of one
tree level (the persistent log stores every complete node), or from leaf hashes in memory (`hashes_from_leaves`).
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from credledger.ledger.domains import LOG_NODE
from credledger.ledger.errors import CredledgerError, DecodeError, StorageError, VerificationError
from credledger.ledger.merkle import EMPTY_ROOT, HASH_SIZE, b64, leaf_hash

#: tlog-tiles §Merkle Tree: tiles are subtrees of height 8, so a full tile is 256 hashes wide (8,192 bytes).
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
#: tlog-tiles §Merkle Tree: "<L> … MUST be a decimal ASCII integer between 0 and 63".
MAX_TILE_LEVEL = 63
#: tlog-checkpoint sizes are read as at most 2^63 - 1 (ledger.note); no tile may reach past that.
MAX_TREE_SIZE = 2**63 - 1
#: tlog-tiles §Log entries: entries are big-endian uint16 length-prefixed.
MAX_ENTRY_SIZE = 0xFFFF
#: The longest well-formed tile path ("tile/entries/" + seven index elements + ".p/255"), with room to spare.
MAX_PATH_LENGTH = 64
#: Path element of a tile index: three digits, every element but the last prefixed with "x" (tlog-tiles §Merkle Tree).
_INDEX_ELEMENT = re.compile(r"x[0-9]{3}")
_LAST_ELEMENT = re.compile(r"[0-9]{3}")
_LEVEL = re.compile(r"0|[1-9][0-9]?")
_WIDTH = re.compile(r"[1-9][0-9]{0,2}")
_U16 = struct.Struct(">H")
_sha256 = hashlib.sha256


class TileRangeError(CredledgerError, ValueError):
    """A tile that the tree in question does not have (past its size, or impossible for any tree)."""

    code = "out-of-range"


class TileUnavailable(CredledgerError):
    """A tile the reader needs could not be fetched (neither the partial tile nor the full one behind it)."""

    code = "tile-unavailable"


def encode_index(index: int) -> str:
    """tlog-tiles §Merkle Tree: N as zero-padded 3-digit path elements, all but the last prefixed "x"."""
    if index < 0:
        raise ValueError(f"tile index must be non-negative, got {index}")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _span(level: int, index: int, width: int) -> tuple[int, int]:
    """The entries [start, end) covered by `width` hashes of tile (level, index)."""
    start = index << (TILE_HEIGHT * (level + 1))
    return start, start + (width << (TILE_HEIGHT * level))


def _check_coordinates(level: int, index: int, width: int) -> None:
    if not 0 <= level <= MAX_TILE_LEVEL:
        raise TileRangeError(f"tile level must be in [0, {MAX_TILE_LEVEL}], got {level}")
    if index < 0:
        raise TileRangeError(f"tile index must be non-negative, got {index}")
    if not 1 <= width <= TILE_WIDTH:
        raise TileRangeError(f"tile width must be in [1, {TILE_WIDTH}], got {width}")
    end = _span(level, index, width)[1]
    if end > MAX_TREE_SIZE:
        raise TileRangeError(f"tile ({level}, {index}) of width {width} ends at entry {end}, past any tree size")


@dataclass(frozen=True, slots=True)
class Tile:
    """Tile (level, index) of `width` hashes: full when width is 256, partial otherwise (tlog-tiles §Merkle Tree)."""

    level: int
    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        _check_coordinates(self.level, self.index, self.width)

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def start(self) -> int:
        """The first entry the tile's hashes cover."""
        return _span(self.level, self.index, self.width)[0]

    @property
    def end(self) -> int:
        """One past the last entry the tile's hashes cover (the tile's end index when it is full)."""
        return _span(self.level, self.index, self.width)[1]

    @property
    def size(self) -> int:
        """The tile's length in bytes."""
        return self.width * HASH_SIZE

    def path(self) -> str:
        """``tile/<L>/<N>[.p/<W>]``, relative to the log's prefix."""
        return f"tile/{self.level}/{encode_index(self.index)}" + ("" if self.is_full else f".p/{self.width}")


@dataclass(frozen=True, slots=True)
class EntryBundle:
    """Entry bundle `index` of `width` entries, the entries behind level-0 tile (0, index) (tlog-tiles §Log entries)."""

    index: int
    width: int = TILE_WIDTH

    def __post_init__(self) -> None:
        _check_coordinates(0, self.index, self.width)

    @property
    def is_full(self) -> bool:
        return self.width == TILE_WIDTH

    @property
    def start(self) -> int:
        return _span(0, self.index, self.width)[0]

    @property
    def end(self) -> int:
        return _span(0, self.index, self.width)[1]

    def tile(self) -> Tile:
        """The level-0 tile holding the leaf hashes of this bundle's entries."""
        return Tile(0, self.index, self.width)

    def path(self) -> str:
        """``tile/entries/<N>[.p/<W>]``, relative to the log's prefix."""
        return f"tile/entries/{encode_index(self.index)}" + ("" if self.is_full else f".p/{self.width}")


def parse_path(path: str) -> Tile | EntryBundle:
    """Parse a tile or entry-bundle path (relative to the log prefix), accepting only its one canonical spelling.

    Raises `DecodeError` for a malformed path and `TileRangeError` for a well-formed one no tree can have.
    """
    if len(path) > MAX_PATH_LENGTH:
        raise DecodeError(f"tile path: {len(path)} characters exceeds the limit of {MAX_PATH_LENGTH}")
    parts = path.split("/")
    if len(parts) < 3 or parts[0] != "tile":
        raise DecodeError(f"tile path: expected tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], got {path!r}")
    kind, elements = parts[1], parts[2:]
    width = TILE_WIDTH
    if len(elements) >= 2 and elements[-2].endswith(".p"):
        width_text = elements[-1]
        if not _WIDTH.fullmatch(width_text) or int(width_text) >= TILE_WIDTH:
            raise DecodeError(f"tile path {path!r}: partial width must be 1 to 255 without leading zeros")
        width = int(width_text)
        elements = [*elements[:-2], elements[-2][: -len(".p")]]
    index = _parse_index(path, elements)
    if kind == "entries":
        return EntryBundle(index, width)
    if not _LEVEL.fullmatch(kind) or int(kind) > MAX_TILE_LEVEL:
        raise DecodeError(f"tile path {path!r}: level must be 0 to {MAX_TILE_LEVEL} without leading zeros")
    return Tile(int(kind), index, width)


def _parse_index(path: str, elements: list[str]) -> int:
    if not elements or not _LAST_ELEMENT.fullmatch(elements[-1]):
        raise DecodeError(f"tile path {path!r}: the index must end in a 3-digit element")
    for element in elements[:-1]:
        if not _INDEX_ELEMENT.fullmatch(element):
            raise DecodeError(f"tile path {path!r}: index element {element!r} must be 'x' and 3 digits")
    if len(elements) > 1 and elements[0] == "x000":
        # One name per tile, so caches and exported folders never hold the same tile twice.
        raise DecodeError(f"tile path {path!r}: the index has a leading zero element")
    return int("".join(element.lstrip("x") for element in elements))


def tiles_for_size(size: int, *, since: int = 0) -> Iterator[Tile]:
    """The tiles of the tree of `size` entries that the tree of `since` entries (0 <= since <= size) lacks.

    With since = 0 this is every tile the tree has, full and partial (tlog-tiles §Partial Tiles); with the size of
    the previous checkpoint it is what a new checkpoint adds, so an export only writes new files.
    """
    if not 0 <= since <= size <= MAX_TREE_SIZE:
        raise TileRangeError(f"tile sizes: expected 0 <= since <= size <= {MAX_TREE_SIZE}, got {since}, {size}")
    level = 0
    while size >> (TILE_HEIGHT * level):
        shift = TILE_HEIGHT * (level + 1)
        for index in range(since >> shift, size >> shift):
            yield Tile(level, index)
        width = (size >> (TILE_HEIGHT * level)) % TILE_WIDTH
        old_width = (since >> (TILE_HEIGHT * level)) % TILE_WIDTH
        if width and (size >> shift, width) != (since >> shift, old_width):
            yield Tile(level, size >> shift, width)
        level += 1


def partial_tiles(size: int) -> list[Tile]:
    """The partial tiles of the tree of `size` entries, lowest level first: its right edge (§Partial Tiles)."""
    if not 0 <= size <= MAX_TREE_SIZE:
        raise TileRangeError(f"tree size must be in [0, {MAX_TREE_SIZE}], got {size}")
    tiles = []
    level = 0
    while size >> (TILE_HEIGHT * level):
        width = (size >> (TILE_HEIGHT * level)) % TILE_WIDTH
        if width:
            tiles.append(Tile(level, size >> (TILE_HEIGHT * (level + 1)), width))
        level += 1
    return tiles


def bundles_for_size(size: int, *, since: int = 0) -> Iterator[EntryBundle]:
    """The entry bundles of the tree of `size` entries that the tree of `since` entries lacks."""
    for tile in tiles_for_size(size, since=since):
        if tile.level == 0:
            yield EntryBundle(tile.index, tile.width)


# --- Entry bundles (tlog-tiles §Log entries) -------------------------------------------------------------------


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length followed by the entry."""
    if not 1 <= len(entries) <= TILE_WIDTH:
        raise ValueError(f"an entry bundle holds 1 to {TILE_WIDTH} entries, got {len(entries)}")
    parts: list[bytes] = []
    for position, entry in enumerate(entries):
        if len(entry) > MAX_ENTRY_SIZE:
            raise ValueError(f"entry {position}: {len(entry)} bytes exceeds the bundle limit of {MAX_ENTRY_SIZE}")
        parts += [_U16.pack(len(entry)), entry]
    return b"".join(parts)


def decode_bundle(data: bytes, width: int) -> list[bytes]:
    """The `width` entries of an entry bundle; `DecodeError` if it holds any other number or trailing bytes."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if len(entries) == width:
            raise DecodeError(f"entry bundle: expected {width} entries, found bytes after the last one")
        if offset + 2 > len(data):
            raise DecodeError(f"entry bundle: entry {len(entries)} has a truncated length prefix")
        (length,) = _U16.unpack_from(data, offset)
        offset += 2
        if offset + length > len(data):
            raise DecodeError(f"entry bundle: entry {len(entries)} claims {length} bytes, {len(data) - offset} remain")
        entries.append(data[offset : offset + length])
        offset += length
    if len(entries) != width:
        raise DecodeError(f"entry bundle: expected {width} entries, got {len(entries)}")
    return entries


# --- Serving: the bytes of a tile ------------------------------------------------------------------------------

#: Hashes of the complete nodes of one tree level: (level, start, end) -> node hashes [start, end) of that level.
NodeHashes = Callable[[int, int, int], Sequence[bytes]]


def hashes_from_leaves(leaf_hashes: Sequence[bytes]) -> NodeHashes:
    """A `NodeHashes` over leaf hashes held in memory (for tests, tools and small logs)."""

    def node_hashes(level: int, start: int, end: int) -> list[bytes]:
        span = 1 << level
        if end * span > len(leaf_hashes):
            raise TileRangeError(f"nodes [{start}, {end}) of level {level} need more than {len(leaf_hashes)} leaves")
        return [_perfect_root(leaf_hashes[i * span : (i + 1) * span]) for i in range(start, end)]

    return node_hashes


def tile_data(tile: Tile, size: int, node_hashes: NodeHashes) -> bytes:
    """The bytes of `tile` in the log of `size` entries: its hashes, level 8·L of the tree, concatenated.

    A full tile exists once the log reaches its end; a partial tile of width W as soon as the log has its first W
    hashes (it is the tile of every tree size whose digits put W hashes there). `TileRangeError` otherwise.
    """
    if tile.end > size:
        raise TileRangeError(f"{tile.path()} covers entries up to {tile.end}, the log has {size}")
    start = tile.index * TILE_WIDTH
    hashes = node_hashes(TILE_HEIGHT * tile.level, start, start + tile.width)
    if len(hashes) != tile.width or any(len(h) != HASH_SIZE for h in hashes):
        raise StorageError(f"{tile.path()}: expected {tile.width} hashes of {HASH_SIZE} bytes from the log")
    return b"".join(hashes)


def _perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root of a complete subtree whose bottom row is `hashes` (a power of two of them)."""
    level = list(hashes)
    while len(level) > 1:
        level = [_sha256(LOG_NODE + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=True)]
    return level[0]


# --- Reading: a verifying tile client --------------------------------------------------------------------------

#: Returns the bytes served at a tile path, or None if the log does not have it (any other failure: raise).
FetchTile = Callable[[str], bytes | None]


class TileReader:
    """Roots, proofs, leaf hashes and entries of a checkpointed tree, computed from tiles it checks as it reads.

    Construct it with a checkpoint's (verified) size and root; the constructor fetches the partial tiles and
    checks they lead to that root. Tiles are fetched at most once per reader.
    """

    def __init__(self, size: int, root: bytes, fetch: FetchTile) -> None:
        if not 0 <= size <= MAX_TREE_SIZE:
            raise VerificationError(f"tile reader: tree size must be in [0, {MAX_TREE_SIZE}], got {size}")
        if len(root) != HASH_SIZE:
            raise VerificationError(f"tile reader: expected a {HASH_SIZE}-byte root, got {len(root)} bytes")
        self.size = size
        self.root = root
        self._fetch = fetch
        # Per authenticated tile, its subtree rows: rows[r][i] is node i of the tile at tree level 8·L + r.
        self._rows: dict[tuple[int, int], list[list[bytes]]] = {}
        if size == 0:
            if root != EMPTY_ROOT:
                raise VerificationError(f"tile reader: a tree of size 0 must have root {b64(EMPTY_ROOT)}")
            return
        for tile in partial_tiles(size):  # provisionally authenticated, to compute the root from them
            self._rows[(tile.level, tile.index)] = _subtree_rows(self._read(tile))
        computed = self._range_root(0, size)
        if computed != root:
            self._rows.clear()
            raise VerificationError(
                f"tiles of the tree of size {size} lead to root {b64(computed)}, the checkpoint says {b64(root)}"
            )

    def root_at(self, size: int) -> bytes:
        """The root of the tree of `size` entries, any size from 0 to the checkpoint's."""
        self._check_size(size)
        return self._range_root(0, size) if size else EMPTY_ROOT

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash of entry `index`."""
        if not 0 <= index < self.size:
            raise TileRangeError(f"leaf index: expected 0 <= index < {self.size}, got {index}")
        return self._node(0, index)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 inclusion proof of entry `index` in the tree of `size` entries (default: checkpoint)."""
        size = self.size if size is None else size
        self._check_size(size)
        if not 0 <= index < size:
            raise TileRangeError(f"inclusion proof: expected 0 <= index < tree size {size}, got {index}")
        return self._path(0, index, size)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 consistency proof from `size1` to `size2` (default: checkpoint), 0 < size1 <= size2."""
        size2 = self.size if size2 is None else size2
        self._check_size(size2)
        if not 0 < size1 <= size2:
            raise TileRangeError(f"consistency proof: expected 0 < size1 <= size2 = {size2}, got size1 = {size1}")
        if size1 == size2:
            return []
        level = (size1 & -size1).bit_length() - 1
        index = (size1 - 1) >> level
        path = self._path(level, index, size2)
        return [self._node(level, index), *path] if index else path

    def entries(self, bundle_index: int) -> list[bytes]:
        """The entries of bundle `bundle_index` of the tree, checked against its authenticated level-0 tile."""
        tile = self._tile_for(0, bundle_index)
        bundle = EntryBundle(bundle_index, tile.width)
        try:
            data = self._fetch(bundle.path())
            if data is None and not bundle.is_full:
                full = self._fetch(EntryBundle(bundle_index).path())
                data = None if full is None else _bundle_prefix(full, bundle.width)
            if data is None:
                raise TileUnavailable(f"{bundle.path()} is not available")
            entries = decode_bundle(data, bundle.width)
        except DecodeError as exc:
            raise VerificationError(f"{bundle.path()}: {exc}") from None
        hashes = self._verified_rows(0, bundle_index)[0]
        for position, entry in enumerate(entries):
            if leaf_hash(entry) != hashes[position]:
                raise VerificationError(
                    f"{bundle.path()}: entry {position} does not hash to its leaf hash in {tile.path()}"
                )
        return entries

    # The tree's nodes, from authenticated tiles.

    def _check_size(self, size: int) -> None:
        if not 0 <= size <= self.size:
            raise TileRangeError(f"tree size: expected 0 <= size <= {self.size}, got {size}")

    def _tile_for(self, level: int, index: int) -> Tile:
        """Tile (level, index) as the tree of the checkpoint's size has it: full, or its partial width."""
        if (index + 1) << (TILE_HEIGHT * (level + 1)) <= self.size:
            return Tile(level, index)
        width = (self.size >> (TILE_HEIGHT * level)) - index * TILE_WIDTH
        if not 0 < width < TILE_WIDTH:
            raise TileRangeError(f"the tree of size {self.size} has no tile ({level}, {index})")
        return Tile(level, index, width)

    def _read(self, tile: Tile) -> bytes:
        """Fetch a tile and check its length; a missing partial tile falls back to the full one (§Partial Tiles)."""
        data = self._fetch(tile.path())
        if data is None and not tile.is_full:
            full = self._fetch(Tile(tile.level, tile.index).path())
            if full is not None:
                if len(full) != TILE_WIDTH * HASH_SIZE:
                    raise VerificationError(
                        f"{Tile(tile.level, tile.index).path()}: expected 8192 bytes, got {len(full)}"
                    )
                data = full[: tile.size]
        if data is None:
            raise TileUnavailable(f"{tile.path()} is not available")
        if len(data) != tile.size:
            raise VerificationError(f"{tile.path()}: expected {tile.size} bytes, got {len(data)}")
        return data

    def _verified_rows(self, level: int, index: int) -> list[list[bytes]]:
        """The subtree rows of tile (level, index) of the checkpoint's tree, authenticated up to the signed root."""
        rows = self._rows.get((level, index))
        if rows is not None:
            return rows
        tile = self._tile_for(level, index)  # partial tiles were all verified by the constructor
        rows = _subtree_rows(self._read(tile))
        computed = _sha256(LOG_NODE + rows[-1][0] + rows[-1][1]).digest()
        expected = self._node(TILE_HEIGHT * (level + 1), index)
        if computed != expected:
            raise VerificationError(
                f"{tile.path()}: hashes to {b64(computed)}, its parent tile level {level + 1} says {b64(expected)}"
            )
        self._rows[(level, index)] = rows
        return rows

    def _node(self, level: int, index: int) -> bytes:
        """Complete node (level, index) of the tree, from the tile at level ⌊level/8⌋ that holds its subtree."""
        tile_level, r = divmod(level, TILE_HEIGHT)
        tile_index = (index << r) // TILE_WIDTH
        return self._verified_rows(tile_level, tile_index)[r][index - tile_index * (TILE_WIDTH >> r)]

    def _range_root(self, start: int, end: int) -> bytes:
        """MTH of entries [start, end), where start is a multiple of a power of two >= end - start (RFC 9162 §2.1.1)."""
        parts: list[bytes] = []
        position = start
        while position < end:
            level = (end - position).bit_length() - 1
            parts.append(self._node(level, position >> level))
            position += 1 << level
        root = parts.pop()
        while parts:
            root = _sha256(LOG_NODE + parts.pop() + root).digest()
        return root

    def _path(self, level: int, index: int, size: int) -> list[bytes]:
        """Siblings of node (level, index) up to the root of the tree of `size` entries (as in ledger.storage.log)."""
        proof: list[bytes] = []
        last = (size - 1) >> level
        while last:
            sibling = index ^ 1
            if sibling < last or (sibling == last and not size & ((1 << level) - 1)):
                proof.append(self._node(level, sibling))
            elif sibling == last:
                proof.append(self._range_root(sibling << level, size))
            index >>= 1
            last >>= 1
            level += 1
        return proof


def _subtree_rows(data: bytes) -> list[list[bytes]]:
    """The tile's hashes, then each level of complete nodes above them inside the tile (an odd last node has none)."""
    rows = [[data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]]
    for _ in range(TILE_HEIGHT - 1):
        below = rows[-1]
        rows.append([_sha256(LOG_NODE + below[i] + below[i + 1]).digest() for i in range(0, len(below) - 1, 2)])
    return rows


def _bundle_prefix(data: bytes, width: int) -> bytes:
    """The first `width` entries of a full bundle, re-encoded (a fallback for a deleted partial bundle)."""
    return encode_bundle(decode_bundle(data, TILE_WIDTH)[:width])
