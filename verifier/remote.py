"""What verifiers, auditors and monitors read from a node: bundles, checkpoints, certified blocks, log proofs.

A thin extension of `verifier.client.NodeClient` (standard library only, no aiohttp), so a wallet that imports
`verifier.credential` pulls in no server code. Every answer is parsed and bounded here; whether it is *true* is for the
caller to check with the ledger's pure verifiers -- nothing a node says is trusted because it said it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from credledger.ledger import codec, encoding
from credledger.ledger.block import CertifiedBlock
from credledger.ledger.bundle import Bundle
from credledger.ledger.errors import DecodeError
from credledger.ledger.note import MAX_NOTE_BYTES
from credledger.verifier.client import NodeClient, NodeUnreachable

MSGPACK_TYPE = "application/msgpack"
#: Largest certified block read (a block of 10,000 events of 16 KiB each, with room for its certificate).
MAX_BLOCK_BYTES = 10_000 * 16 * 1024 + 1024 * 1024
#: Most hashes a consistency proof between two sizes below 2^64 can hold.
MAX_PROOF_HASHES = 130


@dataclass(frozen=True, slots=True)
class ConsistencyAnswer:
    """A node's consistency proof between two tree sizes, with the roots it claims for them."""

    size1: int
    size2: int
    root1: bytes
    root2: bytes
    proof: tuple[bytes, ...]


class NodeReader(NodeClient):
    """The read side of a node's API that verification, audit and monitoring use."""

    def bundle(self, digest: bytes) -> Bundle:
        """The `credledger-proof/v1` bundle for `digest`, parsed (DecodeError if it is not one)."""
        return Bundle.from_json(self.credential(digest))

    def checkpoint_note(self) -> str:
        """The latest checkpoint note, exactly as served (bounded in size, UTF-8)."""
        _, data = self._request("GET", "/v1/checkpoint", None, accept="text/plain", timeout=None)
        if len(data) > MAX_NOTE_BYTES:
            raise NodeUnreachable(f"{self.base_url}/v1/checkpoint: a note of {len(data)} bytes exceeds the limit")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"{self.base_url}/v1/checkpoint: the note is not UTF-8") from None

    def block(self, height: int) -> CertifiedBlock:
        """The certified block at `height`, from its canonical encoding."""
        path = f"/v1/blocks/{height}"
        content_type, data = self._request("GET", path, None, accept=MSGPACK_TYPE, timeout=None)
        if content_type != MSGPACK_TYPE:
            raise NodeUnreachable(f"{self.base_url}{path} answered {content_type or 'no content type'}, not msgpack")
        return codec.decode(CertifiedBlock, data, max_bytes=MAX_BLOCK_BYTES)

    def consistency(self, size1: int, size2: int) -> ConsistencyAnswer:
        """`GET /v1/proof/consistency?from=&to=`, parsed."""
        answer = self._json("GET", f"/v1/proof/consistency?from={size1}&to={size2}")
        proof = answer.get("proof")
        if not isinstance(proof, list) or len(proof) > MAX_PROOF_HASHES:
            raise DecodeError(f"{self.base_url}: consistency proof must be a list of at most {MAX_PROOF_HASHES}")
        return ConsistencyAnswer(
            size1=_count(answer.get("from"), "from"),
            size2=_count(answer.get("to"), "to"),
            root1=_hash(answer.get("from_root"), "from_root"),
            root2=_hash(answer.get("to_root"), "to_root"),
            proof=tuple(_hash(h, "proof") for h in proof),
        )

    def height(self) -> int:
        """The node's committed height, from `GET /v1/status`."""
        return _count(self.status().get("height"), "height")


def _count(raw: Any, what: str) -> int:
    if type(raw) is not int or raw < 0:
        raise DecodeError(f"node answer: {what} must be a non-negative integer, got {raw!r}")
    return raw


def _hash(raw: Any, what: str) -> bytes:
    value = encoding.from_base64(raw, f"node answer: {what}", canonical=False)
    if len(value) != 32:
        raise DecodeError(f"node answer: {what} must be a 32-byte hash, got {len(value)} bytes")
    return value
