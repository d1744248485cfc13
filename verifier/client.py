"""The HTTP client of the node API that the command line, verifiers, auditors and monitors use.

The standard library's urllib and the ledger's own msgpack (no aiohttp), so a wallet that imports
`credledger.verifier` pulls in no server code. Every call has a timeout and every answer is read up to a size
bound, parsed and bounded here; whether it is *true* is for the caller to check with the ledger's pure verifiers
-- nothing a node says is trusted because it said it. An answer that is an RFC 9457 problem becomes a
`NodeProblem` carrying its status, type, detail and the ledger rule, if any; a node that cannot be reached, times
out, or answers something that is not the API (wrong content, 5xx from a proxy) becomes `NodeUnreachable`.
"""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from credledger.ledger import codec, encoding
from credledger.ledger.block import CertifiedBlock
from credledger.ledger.bundle import Bundle
from credledger.ledger.errors import CredledgerError, DecodeError
from credledger.ledger.events import Event
from credledger.ledger.note import MAX_NOTE_BYTES

PROBLEM_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:credledger:problem:"
DEFAULT_TIMEOUT = 10.0
#: Largest answer read from a node (a proof bundle with a long validator-set chain stays far below).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MSGPACK_TYPE = "application/msgpack"
#: Largest certified block read (a block of 10,000 events of 16 KiB each, with room for its certificate).
MAX_BLOCK_BYTES = 10_000 * 16 * 1024 + 1024 * 1024
#: Most hashes a consistency proof between two sizes below 2^64 can hold.
MAX_PROOF_HASHES = 130


class NodeUnreachable(CredledgerError):
    """The node could not be reached, did not answer in time, or did not answer as a credledger node does."""

    code = "unreachable"


class NodeProblem(CredledgerError):
    """The node answered with a problem (RFC 9457): the request or the event in it was refused."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body
        self.type = str(body.get("type", ""))
        self.code = self.type.removeprefix(TYPE_PREFIX) or "error"
        self.title = str(body.get("title", ""))
        self.detail = str(body.get("detail", ""))
        rule = body.get("rule")
        self.rule = rule if isinstance(rule, str) else None
        super().__init__(f"{status} {self.code}: {self.detail}")


@dataclass(frozen=True, slots=True)
class ConsistencyAnswer:
    """A node's consistency proof between two tree sizes, with the roots it claims for them."""

    size1: int
    size2: int
    root1: bytes
    root2: bytes
    proof: tuple[bytes, ...]


class NodeClient:
    """Talks to one node's API at `base_url` (``http://host:port``)."""

    def __init__(self, base_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"node URL must be http:// or https:// with a host, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def status(self) -> dict[str, Any]:
        """`GET /v1/status`."""
        return self._json("GET", "/v1/status")

    def submit(self, events: Sequence[Event], *, wait: bool = False, timeout: float | None = None) -> dict[str, Any]:
        """Submit events in their canonical encoding; with `wait`, return once they are committed."""
        items = [{"encoded": base64.b64encode(e.encode()).decode()} for e in events]
        body = {"event": items[0]} if len(items) == 1 else {"events": items}
        path = "/v1/events?wait=commit" if wait else "/v1/events"
        return self._json("POST", path, json.dumps(body).encode(), timeout=timeout)

    def submit_encoded(
        self, encoded: Sequence[bytes], *, wait: bool = False, timeout: float | None = None
    ) -> dict[str, Any]:
        """Submit a batch of events given in their canonical encodings, as one msgpack array of them (neither side
        spends time on base64 and JSON: what a bulk issuer sends). Answered as `submit` with a batch is."""
        path = "/v1/events?wait=commit" if wait else "/v1/events"
        body = msgpack.packb(list(encoded), use_bin_type=True)
        return self._json("POST", path, body, timeout=timeout, content_type=MSGPACK_TYPE)

    def event(self, event_id: bytes) -> dict[str, Any]:
        """`GET /v1/events/{id}`."""
        return self._json("GET", f"/v1/events/{event_id.hex()}")

    def credential(self, digest: bytes) -> dict[str, Any]:
        """The `credledger-proof/v1` bundle for a credential digest."""
        return self._json("GET", f"/v1/credentials/{digest.hex()}")

    def record(self, digests: Sequence[bytes], *, timeout: float | None = None) -> dict[str, Any]:
        """`POST /v1/record`: the proofs of up to 1,000 credentials under one checkpoint (a `credledger-record/v1`)."""
        body = json.dumps({"digests": [d.hex() for d in digests]}).encode()
        return self._json("POST", "/v1/record", body, timeout=timeout)

    def members(self) -> dict[str, Any]:
        """`GET /v1/members`: every member with its node key and issuer keys."""
        return self._json("GET", "/v1/members")

    def status_usage(self, member_id: str) -> dict[str, Any]:
        """`GET /v1/members/{id}/status`: entries taken in each of the member's status lists."""
        return self._json("GET", f"/v1/members/{member_id}/status")

    def get_json(self, path: str) -> dict[str, Any]:
        """`GET path` answered with a JSON object (a status list credential, a DID document)."""
        if not path.startswith("/"):
            raise ValueError(f"expected an absolute path, got {path!r}")
        return self._json("GET", path)

    def did_document(self, member_id: str) -> dict[str, Any]:
        """`GET /v1/members/{id}/did.json`: the member's DID document, as the node derives it."""
        return self._json("GET", f"/v1/members/{urllib.parse.quote(member_id, safe='')}/did.json")

    def bundle(self, digest: bytes) -> Bundle:
        """The `credledger-proof/v1` bundle for `digest`, parsed (DecodeError if it is not one)."""
        return Bundle.from_json(self.credential(digest))

    def checkpoint(self) -> str:
        """The latest checkpoint note, exactly as served (bounded in size, UTF-8)."""
        _, data = self._request("GET", "/v1/checkpoint", None, accept="text/plain", timeout=None)
        if len(data) > MAX_NOTE_BYTES:
            raise NodeUnreachable(f"{self.base_url}/v1/checkpoint: a note of {len(data)} bytes exceeds the limit")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"{self.base_url}/v1/checkpoint: the note is not UTF-8") from None

    def witnessed_checkpoint(self, origin: str) -> str:
        """`GET /witnessed-checkpoint?origin=`: the checkpoint a witness node last cosigned for the log `origin`."""
        path = "/witnessed-checkpoint?" + urllib.parse.urlencode({"origin": origin})
        _, data = self._request("GET", path, None, accept="text/plain", timeout=None)
        if len(data) > MAX_NOTE_BYTES:
            raise NodeUnreachable(f"{self.base_url}{path}: a note of {len(data)} bytes exceeds the limit")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError(f"{self.base_url}{path}: the note is not UTF-8") from None

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

    # --- transport ------------------------------------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        timeout: float | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        content_type, data = self._request(
            method, path, body, accept="application/json", timeout=timeout, content_type=content_type
        )
        if content_type != "application/json":
            raise NodeUnreachable(f"{self.base_url}{path} answered {content_type or 'no content type'}, not JSON")
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            raise NodeUnreachable(f"{self.base_url}{path} answered malformed JSON") from None
        if not isinstance(document, dict):
            raise NodeUnreachable(f"{self.base_url}{path} answered JSON that is not an object")
        return document

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None,
        *,
        accept: str,
        timeout: float | None,
        content_type: str = "application/json",
    ) -> tuple[str, bytes]:
        url = self.base_url + path
        headers = {"Accept": f"{accept}, {PROBLEM_TYPE}"}
        if body is not None:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, headers=headers, method=method)  # noqa: S310 - http(s) only
        try:
            # The scheme was checked to be http or https in __init__, so no file:// or custom scheme can be opened.
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:  # noqa: S310
                return response.headers.get_content_type(), _read(response)
        except urllib.error.HTTPError as exc:
            with exc:
                raise self._problem(exc.code, exc.headers.get_content_type(), _read(exc), url) from None
        except TimeoutError:
            raise NodeUnreachable(f"{url}: no answer within {timeout or self.timeout:g} s") from None
        except urllib.error.URLError as exc:
            raise NodeUnreachable(f"{url}: cannot connect ({exc.reason})") from None
        except (http.client.HTTPException, OSError) as exc:
            raise NodeUnreachable(f"{url}: connection failed ({exc})") from None

    def _problem(self, status: int, content_type: str, data: bytes, url: str) -> CredledgerError:
        if content_type == PROBLEM_TYPE:
            try:
                body = json.loads(data)
            except (ValueError, RecursionError):
                body = None
            if isinstance(body, dict):
                return NodeProblem(status, body)
        # Not the API answering (a proxy, another server on that port): the node was not reached.
        text = data[:200].decode("utf-8", errors="replace").strip()
        return NodeUnreachable(f"{url}: HTTP {status} {text}".rstrip())


def _read(response: Any) -> bytes:
    data: bytes = response.read(MAX_RESPONSE_BYTES + 1)
    if len(data) > MAX_RESPONSE_BYTES:
        raise NodeUnreachable(f"answer exceeds {MAX_RESPONSE_BYTES} bytes")
    return data


def _count(raw: Any, what: str) -> int:
    if type(raw) is not int or raw < 0:
        raise DecodeError(f"node answer: {what} must be a non-negative integer, got {raw!r}")
    return raw


def _hash(raw: Any, what: str) -> bytes:
    value = encoding.from_base64(raw, f"node answer: {what}", canonical=False)
    if len(value) != 32:
        raise DecodeError(f"node answer: {what} must be a 32-byte hash, got {len(value)} bytes")
    return value
