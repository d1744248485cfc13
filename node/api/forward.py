"""A read replica's `POST /v1/events`: writes go to the validators it follows, and their answer comes back.

A replica has no vote and no peer connections, so an event admitted to its own mempool would never reach a block.
It parses and bounds the body like a validator (a malformed one is refused here, with the same problem), then
sends the same bytes, content type and `?wait=commit` to the validators in its `[p2p] peers`, one after another
until one answers. Whatever the first validator that answers says -- 202 pending, 200 committed, a refusal -- is
the answer, with a `forwarded_to` member naming that validator. A committed answer is held back until this replica
has applied the block too (within the commit wait), so a client reading its own write from the replica finds it.
If no validator answers, the request fails with 502 `forward-failed`, naming every validator tried and why; with
none configured, 503 `no-validators`. Nothing is ever admitted to the replica's own mempool.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
from aiohttp import web

from credledger.node.api.common import CONFIG
from credledger.node.api.events import WAITERS, Submission, admit_events, parse_submission
from credledger.node.api.problems import CONTENT_TYPE as PROBLEM_TYPE
from credledger.node.api.problems import Problem
from credledger.node.sync import BodyTooLarge, read_whole

#: Largest answer read back from a validator (a batch's results with problems, well under this).
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: How long a validator may take to answer beyond the commit wait, and to accept a connection.
FORWARD_MARGIN_S = 5.0
CONNECT_TIMEOUT_S = 3.0
#: Only these answer headers are passed on.
_JSON_TYPES = frozenset({"application/json", PROBLEM_TYPE})

SESSION = web.AppKey("forward-session", aiohttp.ClientSession)


async def forward_session(app: web.Application) -> AsyncIterator[None]:
    """The HTTP client a replica forwards writes with, for as long as the app runs."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(connect=CONNECT_TIMEOUT_S)) as session:
        app[SESSION] = session
        yield


async def submit_events(request: web.Request) -> web.Response:
    """`POST /v1/events`: a validator admits the events; a replica forwards them to the validators."""
    submission = await parse_submission(request)
    config = request.app[CONFIG]
    if config.role != "replica":
        return await admit_events(request, submission)
    return await forward_events(
        request,
        submission,
        validators=config.p2p.peers,
        wait_ms=config.api.commit_wait_ms if submission.wait else None,
    )


async def forward_events(
    request: web.Request, submission: Submission, *, validators: Sequence[str], wait_ms: int | None
) -> web.Response:
    """Send a parsed submission to the first validator that answers, and pass its answer on."""
    body, content_type = submission.body, submission.media_type
    event_ids = [e.id for e in submission.events]
    if not validators:
        raise Problem(
            503,
            "no-validators",
            "this node is a read replica and knows no validator to send events to ([p2p] peers is empty); "
            "submit them to a validator",
        )
    session = request.app[SESSION]
    query = "?wait=commit" if wait_ms is not None else ""
    total = (wait_ms or 0) / 1000 + FORWARD_MARGIN_S
    failures: list[str] = []
    for validator in (v.rstrip("/") for v in validators):
        try:
            async with session.post(
                f"{validator}/v1/events{query}",
                data=body,
                headers={"Content-Type": content_type},
                timeout=aiohttp.ClientTimeout(total=total, connect=CONNECT_TIMEOUT_S),
            ) as upstream:
                raw = await read_whole(upstream, MAX_ANSWER_BYTES)
                status, media_type = upstream.status, upstream.content_type
        except (aiohttp.ClientError, OSError, TimeoutError, BodyTooLarge) as exc:
            failures.append(f"{validator} ({str(exc) or type(exc).__name__})")
            continue
        answer = _document(raw) if media_type in _JSON_TYPES else None
        if answer is None or (status >= 500 and status != 504):
            # Not an answer about these events (a proxy's error page, a failing or full node): try the next one.
            detail = answer.get("detail") if answer is not None else None
            failures.append(f"{validator} (HTTP {status}: {detail or media_type or 'no body'})")
            continue
        answer["forwarded_to"] = validator
        if status == 200 and wait_ms is not None:
            await _applied_here(request, event_ids, wait_ms)
        return web.Response(status=status, text=json.dumps(answer, separators=(",", ":")), content_type=media_type)
    raise Problem(
        502,
        "forward-failed",
        f"this node is a read replica and no validator took the events; tried {'; '.join(failures)}",
        tried=[v.rstrip("/") for v in validators],
    )


def _document(raw: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


async def _applied_here(request: web.Request, event_ids: Sequence[bytes], wait_ms: int) -> None:
    """Wait (at most `wait_ms`) until this replica holds the committed events too."""
    waiters = request.app[WAITERS]
    if waiters.room < len(event_ids):
        return
    futures = waiters.watch(event_ids)
    try:
        await asyncio.wait(futures, timeout=wait_ms / 1000)
    finally:
        waiters.forget(event_ids, futures)
