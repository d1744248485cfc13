"""The generic C2SP checkpoint body (c2sp.org/tlog-checkpoint §Note text) of any log, credledger's or another's.

`ledger.note.Checkpoint` is credledger's own checkpoint, with exactly one `credledger` extension line. A witness
and a tile client also read other logs' checkpoints, whose extension lines are opaque, so they use `TreeHead`.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from credledger.ledger import encoding
from credledger.ledger.errors import DecodeError
from credledger.ledger.merkle import HASH_SIZE

#: Tree sizes are read as at most 2^63 - 1, like ledger.note.
MAX_TREE_SIZE = 2**63 - 1
#: Most extension lines a checkpoint may carry here (the spec sets no limit; a note is at most 64 KiB anyway).
MAX_EXTENSIONS = 64
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True, slots=True)
class TreeHead:
    """Origin, tree size, root hash and opaque extension lines of a checkpoint."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin:
            raise ValueError(f"checkpoint origin {self.origin!r} must be one non-empty line")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise ValueError(f"checkpoint size must be in [0, {MAX_TREE_SIZE}], got {self.size}")
        if len(self.root) != HASH_SIZE:
            raise ValueError(f"checkpoint root must be {HASH_SIZE} bytes, got {len(self.root)}")
        if any(not line or "\n" in line for line in self.extensions):
            raise ValueError("checkpoint extension lines must be non-empty single lines")

    def body(self) -> str:
        """The note text: origin, size, base64 root, extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode(), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> TreeHead:
        """Parse checkpoint note text strictly (tlog-checkpoint §Note text); `DecodeError` names the bad line."""
        if not text.endswith("\n"):
            raise DecodeError("checkpoint: text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise DecodeError(f"checkpoint: expected at least 3 lines (origin, size, root), got {len(lines)}")
        origin, size_text, root_text, *extensions = lines
        if not origin:
            raise DecodeError("checkpoint: the origin line is empty")
        if not _DECIMAL.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
            raise DecodeError(
                f"checkpoint: size must be a decimal up to 2^63-1 without leading zeros, got {size_text[:30]!r}"
            )
        # Through `encoding`: b64decode raises a bare ValueError for non-ASCII text, which a witness must refuse.
        root = encoding.from_base64(root_text, "checkpoint: root hash")
        if len(root) != HASH_SIZE:
            raise DecodeError(f"checkpoint: root hash must be {HASH_SIZE} bytes in canonical base64")
        if len(extensions) > MAX_EXTENSIONS:
            raise DecodeError(f"checkpoint: {len(extensions)} extension lines exceeds the limit of {MAX_EXTENSIONS}")
        if any(not line for line in extensions):
            raise DecodeError("checkpoint: extension lines must be non-empty")
        return cls(origin, int(size_text), root, tuple(extensions))
