"""`POST /v1/events` and `GET /v1/events/{id}`: submitting events and following them to the log.

Submission
----------
A body holds one event or a batch, as JSON (``{"event": E}`` or ``{"events": [E, ...]}``, where E is
``{"encoded": "<base64 canonical msgpack>"}`` or the JSON field form of `ledger.eventjson`) or as
``application/msgpack`` (a bin holding one encoded event, or an array of bins).

Semantics, in order:

1. The whole body is parsed first. Anything malformed (not JSON, wrong field types, non-canonical msgpack, too
   many events) refuses the whole request with a 400/413 problem naming the field, and admits nothing.
2. Each event is then admitted in order (`LedgerApplication.admit_batch`: signatures, rules against the committed
   state plus the pending events, duplicates, size limits). One event's refusal does not stop the others.
3. The answer: 202 with one result per event when all were admitted. A single event that is refused gets its own
   problem (403 unauthorised, 409 duplicate, 422 rule broken, ...) naming the rule. A batch in which any event is
   refused gets a 422 ``batch-refused`` problem whose ``results`` say, per event, "pending" or "refused" with the
   event's own problem: the admitted ones stay admitted.
4. With ``?wait=commit`` (and every event admitted) the answer waits until all of them are committed: 200 with
   each event's log index and block height, and the checkpoint note of the latest of those blocks (it covers all
   of them). After `api.commit_wait_ms` it gives up with a 504 problem listing the event ids, which stay pending.
   An event that a committed block made invalid (a conflicting event from another node) is dropped from the
   mempool; its waiter gets a 409 ``event-dropped`` problem.

A read replica parses the body the same way but forwards it to the validators instead of admitting it
(`node.api.forward`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
from aiohttp import web

from credledger.ledger import encoding, merkle
from credledger.ledger.errors import CredledgerError, DecodeError
from credledger.ledger.eventjson import event_from_json, event_to_json, json_type
from credledger.ledger.events import Event, decode_event
from credledger.ledger.limits import MAX_ANY_EVENT_BYTES
from credledger.node.api.common import APPLICATION, CONFIG, b64, json_response, parse_hex32
from credledger.node.api.problems import Problem, error_body, problem_body, response
from credledger.node.application import Admitted, Committed, LedgerApplication

#: Media types a msgpack body may be sent as.
MSGPACK_TYPES = frozenset({"application/msgpack", "application/x-msgpack"})
#: Refusals spelled out in a batch problem's detail (every one is in its `results`).
_DETAILS_SHOWN = 5
#: Most `?wait=commit` requests' events waited on at once; beyond it such requests get 503 before admission.
MAX_WAITERS = 10_000


@dataclass(frozen=True, slots=True)
class Inclusion:
    """Where a committed event landed."""

    index: int
    height: int
    checkpoint: str


class EventDropped(CredledgerError):
    """An admitted event left the mempool uncommitted: a committed block made it invalid."""

    code = "event-dropped"


class CommitWaiters:
    """Futures of requests waiting for events to commit, resolved by the chain's commit listener.

    Bounded (`limit` events waited on at once); a request removes its futures when it is answered, times out or
    is cancelled. Commits arriving from another thread are handed to the loop the waiters were bound on.
    """

    def __init__(self, chain: LedgerApplication, limit: int = MAX_WAITERS) -> None:
        self._chain = chain
        self._limit = limit
        self._waiting: dict[bytes, list[asyncio.Future[Inclusion]]] = {}
        self._count = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start hearing commits; futures are created and resolved on `loop`."""
        if self._loop is None:
            self._chain.on_commit(self._on_commit)
        self._loop = loop

    def close(self) -> None:
        """Stop: cancel every waiting future (their requests are being shut down with the server)."""
        for futures in self._waiting.values():
            for future in futures:
                future.cancel()
        self._waiting.clear()
        self._count = 0
        self._loop = None

    @property
    def room(self) -> int:
        return self._limit - self._count

    def watch(self, event_ids: Sequence[bytes]) -> list[asyncio.Future[Inclusion]]:
        """One future per id, resolved with its `Inclusion` once committed (at once if committed already)."""
        if self._loop is None:
            raise Problem(503, "not-ready", "the API is not running: commits cannot be awaited")
        futures = [self._loop.create_future() for _ in event_ids]
        for event_id, future in zip(event_ids, futures, strict=True):
            self._waiting.setdefault(event_id, []).append(future)
        self._count += len(futures)
        with self._chain.store.snapshot() as snap:
            for event_id, future in zip(event_ids, futures, strict=True):
                index = snap.event_index(event_id)
                if index is not None:
                    height = snap.block_height_of(index)
                    future.set_result(Inclusion(index, height, snap.certificate(height)))
        return futures

    def forget(self, event_ids: Sequence[bytes], futures: Sequence[asyncio.Future[Inclusion]]) -> None:
        """Remove a request's futures (answered, timed out or cancelled)."""
        for event_id, future in zip(event_ids, futures, strict=True):
            future.cancel()
            waiting = self._waiting.get(event_id)
            if waiting is not None and future in waiting:
                waiting.remove(future)
                self._count -= 1
                if not waiting:
                    del self._waiting[event_id]

    def _on_commit(self, committed: Committed) -> None:
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._resolve(committed)
        else:
            loop.call_soon_threadsafe(self._resolve, committed)

    def _resolve(self, committed: Committed) -> None:
        for offset, event_id in enumerate(committed.event_ids):
            inclusion = Inclusion(committed.first_index + offset, committed.height, committed.checkpoint)
            for future in self._waiting.get(event_id, ()):
                if not future.done():
                    future.set_result(inclusion)
        for event_id, futures in self._waiting.items():
            if event_id in self._chain.mempool:
                continue
            for future in futures:
                if not future.done():
                    future.set_exception(
                        EventDropped(
                            f"event {event_id.hex()} was dropped from the mempool uncommitted: block "
                            f"{committed.height} made it invalid (a conflicting event was committed first)"
                        )
                    )


WAITERS = web.AppKey("waiters", CommitWaiters)


# --- POST /v1/events ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Submission:
    """A parsed `POST /v1/events`: its events, whether it was one event (not a batch), and what came in."""

    events: list[Event]
    single: bool
    wait: bool
    body: bytes
    media_type: str


async def parse_submission(request: web.Request) -> Submission:
    """Read, bound and parse a submission; any malformed part refuses all of it (400/413/415)."""
    api = request.app[CONFIG].api
    wait = _wait_mode(request)
    media_type = request.content_type
    if media_type != "application/json" and media_type not in MSGPACK_TYPES:
        raise Problem(
            415,
            "unsupported-media-type",
            f"Content-Type {media_type!r} is not accepted: send application/json or application/msgpack",
        )
    body = await read_body(request, api.max_body_bytes, api.body_timeout_ms / 1000)
    if media_type == "application/json":
        events, single = _parse_json_body(body, api.max_batch)
    else:
        events, single = _parse_msgpack_body(body, api.max_batch)
    return Submission(events, single, wait, body, media_type)


async def post_events(request: web.Request) -> web.Response:
    """Submit one event or a batch (see the module docstring for the semantics)."""
    submission = await parse_submission(request)
    return await admit_events(request, submission)


async def admit_events(request: web.Request, submission: Submission) -> web.Response:
    """Admit a parsed submission to this node's mempool and answer as the module docstring says."""
    chain = request.app[APPLICATION]
    api = request.app[CONFIG].api
    events, single, wait = submission.events, submission.single, submission.wait
    waiters = request.app[WAITERS]
    if wait and waiters.room < len(events):
        raise Problem(503, "too-many-waiters", "too many requests are waiting for commits; retry later or without wait")

    outcomes = chain.admit_batch(events)
    if not all(isinstance(outcome, Admitted) for outcome in outcomes):
        return _refusal(events, outcomes, single)
    results: list[dict[str, Any]] = [{"id": e.id.hex(), "status": "pending"} for e in events]
    if not wait:
        return json_response({"results": results}, status=202)
    return await await_commit(waiters, [e.id for e in events], api.commit_wait_ms, results)


def _wait_mode(request: web.Request) -> bool:
    wait = request.query.get("wait")
    if wait is None:
        return False
    if wait != "commit":
        raise Problem(400, "malformed", f"query parameter 'wait' may only be 'commit', got {wait[:40]!r}")
    return True


async def read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The request body, or a 413 problem as soon as it is known to exceed `limit` bytes, or a 408 problem if it has
    not all arrived within `timeout_s` (a slow client must not hold a connection and a buffer indefinitely)."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_bounded(request, limit)
    except TimeoutError:
        raise Problem(
            408, "request-timeout", f"the request body did not arrive within {timeout_s:g} s; send it at once"
        ) from None


async def _read_bounded(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise Problem(
            413, "body-too-large", f"request body is {request.content_length} bytes, the limit is {limit} bytes"
        )
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
        if total > limit:
            raise Problem(413, "body-too-large", f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_json_body(body: bytes, max_batch: int) -> tuple[list[Event], bool]:
    document = parse_json(body)
    if not isinstance(document, dict):
        raise DecodeError(f"request body: expected an object with 'event' or 'events', got {json_type(document)}")
    keys = set(document)
    if keys == {"event"}:
        return [_json_item(document["event"], "event")], True
    if keys == {"events"}:
        items = document["events"]
        if not isinstance(items, list) or not items:
            raise DecodeError(f"events: expected a non-empty list of events, got {json_type(items)}")
        _check_batch(len(items), max_batch)
        return [_json_item(item, f"events[{i}]") for i, item in enumerate(items)], False
    raise DecodeError(
        f"request body: expected exactly one of 'event' or 'events', got {', '.join(sorted(keys)) or 'neither'}"
    )


def parse_json(body: bytes) -> Any:
    """Parse a JSON request body strictly: UTF-8, no repeated names, no NaN or Infinity (400 otherwise)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"request body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_no_repeated_names, parse_constant=_no_constant)
    except RecursionError:
        raise DecodeError("request body is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise DecodeError(f"request body is not valid JSON: {exc}") from None


def _no_repeated_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"name {name!r} appears twice in one object")
        result[name] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _json_item(item: Any, where: str) -> Event:
    if isinstance(item, dict) and "encoded" in item:
        if set(item) != {"encoded"}:
            raise DecodeError(f"{where}: an encoded event is {{'encoded': <base64>}} and nothing else")
        encoded = item["encoded"]
        if not isinstance(encoded, str):
            raise DecodeError(f"{where}.encoded: expected a base64 string, got {json_type(encoded)}")
        raw = encoding.from_base64(encoded, f"{where}.encoded", canonical=False)
        return _decode(raw, f"{where}.encoded")
    return event_from_json(item, where)


def _parse_msgpack_body(body: bytes, max_batch: int) -> tuple[list[Event], bool]:
    limit = len(body)
    try:
        value = msgpack.unpackb(
            body,
            raw=False,
            use_list=True,
            max_bin_len=limit,
            max_str_len=limit,
            max_array_len=limit,
            max_map_len=limit,
            max_ext_len=0,
        )
    except msgpack.ExtraData:
        raise DecodeError("msgpack body: trailing bytes after the first value") from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise DecodeError(f"msgpack body: not valid msgpack ({exc})") from None
    if isinstance(value, bytes):
        return [_decode(value, "msgpack body")], True
    if not isinstance(value, list) or not value:
        raise DecodeError("msgpack body: expected a bin (one encoded event) or a non-empty array of bins")
    _check_batch(len(value), max_batch)
    events = []
    for i, item in enumerate(value):
        if not isinstance(item, bytes):
            raise DecodeError(f"msgpack body[{i}]: expected a bin holding an encoded event")
        events.append(_decode(item, f"msgpack body[{i}]"))
    return events, False


def _check_batch(count: int, max_batch: int) -> None:
    if count > max_batch:
        raise Problem(413, "batch-too-large", f"the batch holds {count} events, the limit is {max_batch}")


def _decode(raw: bytes, where: str) -> Event:
    try:
        return decode_event(raw, max_bytes=MAX_ANY_EVENT_BYTES)
    except DecodeError as exc:
        raise DecodeError(f"{where}: {exc}") from None


def _refusal(events: Sequence[Event], outcomes: Sequence[object], single: bool) -> web.Response:
    if single:
        error = outcomes[0]
        assert isinstance(error, CredledgerError)
        return response(error_body(error, id=events[0].id.hex()))
    results: list[dict[str, Any]] = []
    details: list[str] = []
    for i, (event, outcome) in enumerate(zip(events, outcomes, strict=True)):
        if isinstance(outcome, CredledgerError):
            results.append({"id": event.id.hex(), "status": "refused", "problem": error_body(outcome)})
            details.append(f"events[{i}]: {outcome}")
        else:
            results.append({"id": event.id.hex(), "status": "pending"})
    admitted = len(events) - len(details)
    shown = "; ".join(details[:_DETAILS_SHOWN]) + ("; ..." if len(details) > _DETAILS_SHOWN else "")
    detail = f"{len(details)} of {len(events)} events were refused ({shown})"
    detail += f"; the other {admitted} were admitted and are pending" if admitted else ""
    return response(problem_body(422, "batch-refused", detail, results=results))


async def await_commit(
    waiters: CommitWaiters, event_ids: list[bytes], wait_ms: int, results: list[dict[str, Any]]
) -> web.Response:
    """Wait up to `wait_ms` for the admitted events to commit; answer with `results` completed, or a problem."""
    futures = waiters.watch(event_ids)
    try:
        async with asyncio.timeout(wait_ms / 1000):
            inclusions = await asyncio.gather(*futures)
    except TimeoutError:
        pending = [i.hex() for i, f in zip(event_ids, futures, strict=True) if not (f.done() and not f.cancelled())]
        raise Problem(
            504,
            "commit-timeout",
            f"{len(pending)} of {len(event_ids)} events were not committed within {wait_ms} ms; they stay pending",
            ids=[i.hex() for i in event_ids],
            pending=pending,
        ) from None
    except EventDropped as exc:
        raise Problem(409, exc.code, str(exc), ids=[i.hex() for i in event_ids]) from None
    finally:
        waiters.forget(event_ids, futures)
    latest = max(inclusions, key=lambda inc: inc.height)
    for result, inclusion in zip(results, inclusions, strict=True):
        result.update(status="committed", index=inclusion.index, height=inclusion.height)
    return json_response({"results": results, "checkpoint": latest.checkpoint})


# --- GET /v1/events/{id} ------------------------------------------------------------------------------------------


async def get_event(request: web.Request) -> web.Response:
    """A committed or pending event: its JSON form and encoding, and for a committed one its index and height."""
    chain = request.app[APPLICATION]
    event_id = parse_hex32(request.match_info["id"], "event id")
    with chain.store.snapshot() as snap:
        index = snap.event_index(event_id)
        if index is not None:
            return json_response(_event_json(snap.entry(index), "committed", index, snap.block_height_of(index)))
    pending = chain.mempool.get(event_id)
    if pending is not None:
        return json_response(_event_json(pending.encoded, "pending", None, None))
    raise Problem(404, "unknown-event", f"no committed or pending event has id {event_id.hex()}")


def _event_json(encoded: bytes, status: str, index: int | None, height: int | None) -> dict[str, Any]:
    event = decode_event(encoded)
    return {
        "id": event.id.hex(),
        "status": status,
        "index": index,
        "height": height,
        "leaf_hash": b64(merkle.leaf_hash(encoded)),
        "event": event_to_json(event),
        "encoded": b64(encoded),
    }
