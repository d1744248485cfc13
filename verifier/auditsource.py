"""Where an audit reads the chain from: a node's API, or a node's data directory opened read-only.

A source hands the auditor certified blocks by height, its current height, and consistency proofs between tree
sizes (for `--resume`). Neither kind is trusted: the auditor replays every block it is given. A data directory is
`ledger.storage.datadir.DataDir`, which also compares the node's stored files with the replay.
"""

from __future__ import annotations

from typing import Protocol

from credledger.ledger.block import CertifiedBlock
from credledger.ledger.errors import DecodeError
from credledger.ledger.storage.datadir import AuditDiscrepancy, Discrepancy
from credledger.verifier.client import NodeClient


class BlockSource(Protocol):
    """What the auditor reads."""

    name: str

    def height(self) -> int: ...

    def block(self, height: int) -> CertifiedBlock: ...

    def consistency(self, size1: int, size2: int) -> list[bytes]: ...

    def close(self) -> None: ...


class NodeSource:
    """A node's API: certified blocks in their canonical encoding, consistency proofs from the node."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.reader = NodeClient(url, timeout=timeout)
        self.name = self.reader.base_url

    def height(self) -> int:
        return self.reader.height()

    def block(self, height: int) -> CertifiedBlock:
        try:
            return self.reader.block(height)
        except DecodeError as exc:
            raise AuditDiscrepancy(
                Discrepancy(height, "block", f"the node serves an undecodable block: {exc}")
            ) from None

    def consistency(self, size1: int, size2: int) -> list[bytes]:
        return list(self.reader.consistency(size1, size2).proof)

    def close(self) -> None:
        """Nothing to release: every request opens its own connection."""
