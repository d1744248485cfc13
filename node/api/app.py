"""The node's public HTTP API (DESIGN §9): the app factory, the route table and the error middleware.

Theory of operation
-------------------
The API is a thin shell over `node.application.LedgerApplication`: handlers parse and bound what comes in, call the
application or read one store snapshot, and turn the result into JSON. Every error is an exception: ledger errors
(`CredledgerError` subclasses, including `node.api.problems.Problem` for purely HTTP conditions) become RFC 9457
``application/problem+json`` answers in `problem_middleware`, which also answers unknown routes (404) and wrong methods
(405) as problems, turns anything unexpected into a 500 problem without leaking a traceback (the exception goes to the
log), and records every request's latency by route template and status.

Handlers live in `node.api.events` (submission, event lookup) and `node.api.reads` (proofs, blocks, entries,
members); this module holds the small ones and `ROUTES`, the one list of what the API serves. Every route in it
is documented in `node.api.openapi` (a test holds the two equal), so adding a route means adding both.

The server mounts the app from `make_app` and may add its own routes (the peer websocket); the chain, config and
status source are reachable through the `web.AppKey`s in `node.api.common`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib.metadata import version
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import Histogram

from credledger.ledger.errors import CredledgerError, StoreUnavailable
from credledger.ledger.note import Checkpoint, SignedNote
from credledger.ledger.storage.datadir import COSIGNED_FILE
from credledger.ledger.storage.store import Snapshot
from credledger.node.api.catalogue import get_achievement, get_achievements, get_recognitions, post_record
from credledger.node.api.common import APPLICATION, CONFIG, STATUS, StatusSource, b64, json_response, no_live_status
from credledger.node.api.events import MAX_WAITERS, WAITERS, CommitWaiters, get_event
from credledger.node.api.forward import forward_session, submit_events
from credledger.node.api.openapi import openapi_document
from credledger.node.api.pathway import post_pathway
from credledger.node.api.problems import Problem, from_error, problem
from credledger.node.api.reads import (
    ROSTER,
    Roster,
    get_block,
    get_checkpoint,
    get_consistency_proof,
    get_credential,
    get_entries,
    get_inclusion_proof,
    get_members,
)
from credledger.node.api.standard import (
    STATUS_LISTS,
    StatusListCache,
    get_member_did,
    get_own_did,
    get_published_list,
    get_registry,
    get_status_usage,
)
from credledger.node.api.tiles import get_tile
from credledger.node.api.vcapi import SIGNER, issue_credential, make_signer, update_status
from credledger.node.api.vcapi import verify as verify_vc
from credledger.node.api.witness import (
    WITNESS,
    WITNESSING,
    get_witnessed_checkpoint,
    load_witness,
    post_add_checkpoint,
    witness_state,
    witnessing_task,
)
from credledger.node.application import LedgerApplication
from credledger.node.config import NodeConfig
from credledger.node.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from credledger.node.witnessing import Witnessing, load_witnesses

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: LMDB reader slots a request may never take: below this many free, requests get 503 `store-busy`, so that
#: however many requests arrive, consensus and catch-up can always open their read transactions.
RESERVED_READ_SLOTS = 16
#: Routes answered even when the reader slots run low: liveness reads nothing from the store.
_NO_STORE_ROUTES = frozenset({"/healthz"})

_log = structlog.get_logger("credledger.api")


@functools.cache
def _version() -> str:
    """The installed package's version, read from its metadata once (reading it parses a file)."""
    return version("credledger")


# --- small handlers -----------------------------------------------------------------------------------------------


async def get_status(request: web.Request) -> web.Response:
    """Who this node is and where its chain stands, plus what the consensus driver and peers report."""
    chain = request.app[APPLICATION]
    config = request.app[CONFIG]
    with chain.store.snapshot() as snap:
        height = snap.height
        size = snap.log_size
        root = snap.log_root(size)
        checkpoint = _checkpoint_summary(snap) if height else None
    live = request.app[STATUS]()
    return json_response(
        {
            "version": _version(),
            "origin": chain.genesis.origin,
            "genesis": chain.genesis.hash().hex(),
            "member": config.member_id,
            "role": config.role,
            "height": height,
            "log": {"size": size, "root": b64(root)},
            "checkpoint": checkpoint,
            "mempool": {"events": len(chain.mempool), "bytes": chain.mempool.size_bytes},
            "round": live.round,
            "peers": live.peers,
            "syncing": live.syncing,
            "commit": {"ok": live.stalled is None, "reason": live.stalled},
            "sync": {"peer_height": live.peer_height, "failure": live.catch_up_failure},
            "limits": {
                "batch_events": config.api.max_batch,
                "body_bytes": config.api.max_body_bytes,
                "block_events": chain.params.max_block_events,
                "commit_wait_ms": config.api.commit_wait_ms,
            },
        }
    )


def _checkpoint_summary(snap: Snapshot) -> dict[str, Any]:
    note = SignedNote.parse(snap.certificate(snap.height))
    checkpoint = Checkpoint.parse(note.text)
    return {
        "height": checkpoint.height,
        "round": checkpoint.round,
        "size": checkpoint.size,
        "root": b64(checkpoint.root),
        "header_hash": b64(checkpoint.header_hash),
        "time_ms": snap.header(snap.height).time_ms,
        "signers": [sig.name for sig in note.signatures],
    }


async def get_health(_request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return json_response({"status": "ok"})


async def get_ready(request: web.Request) -> web.Response:
    """The store is open and holds a genesis, and the node is not stuck behind its peers: it can answer reads."""
    chain = request.app[APPLICATION]
    if chain.store.genesis is None:
        raise Problem(503, "not-ready", "the store holds no genesis yet")
    try:
        with chain.store.snapshot() as snap:
            height = snap.height
    except StoreUnavailable as exc:
        raise Problem(503, "not-ready", str(exc)) from None
    failure = request.app[STATUS]().catch_up_failure
    if failure is not None:
        raise Problem(503, "not-ready", f"catch-up failing, the node serves stale answers: {failure}")
    return json_response({"status": "ready", "height": height})


async def get_metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of the node's metrics."""
    body = request.app[APPLICATION].metrics.render()
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def get_openapi(_request: web.Request) -> web.Response:
    """The OpenAPI 3.1 description of this API."""
    return json_response(openapi_document())


#: Everything the API serves: (method, path template, handler). GET routes answer HEAD too.
ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "/v1/events", submit_events),
    ("GET", "/v1/events/{id}", get_event),
    ("GET", "/v1/credentials/{digest}", get_credential),
    ("GET", "/v1/checkpoint", get_checkpoint),
    ("GET", "/v1/proof/inclusion", get_inclusion_proof),
    ("GET", "/v1/proof/consistency", get_consistency_proof),
    ("GET", "/v1/blocks/{height}", get_block),
    ("GET", "/v1/entries", get_entries),
    ("GET", "/v1/members", get_members),
    ("GET", "/v1/achievements", get_achievements),
    ("GET", "/v1/achievements/{member}/{id}", get_achievement),
    ("GET", "/v1/recognitions", get_recognitions),
    ("POST", "/v1/record", post_record),
    ("POST", "/v1/pathway", post_pathway),
    ("GET", "/v1/status", get_status),
    ("GET", "/healthz", get_health),
    ("GET", "/readyz", get_ready),
    ("GET", "/metrics", get_metrics),
    ("GET", "/openapi.json", get_openapi),
    ("GET", "/v1/members/{member}/did.json", get_member_did),
    ("GET", "/.well-known/did.json", get_own_did),
    ("GET", "/v1/registry.json", get_registry),
    ("GET", "/v1/members/{member}/status/{list}/{purpose}", get_published_list),
    ("GET", "/v1/members/{member}/status", get_status_usage),
    ("POST", "/credentials/issue", issue_credential),
    ("POST", "/credentials/verify", verify_vc),
    ("POST", "/credentials/status", update_status),
    ("GET", "/checkpoint", get_checkpoint),
    ("GET", "/tile/{tile}", get_tile),
    ("POST", "/add-checkpoint", post_add_checkpoint),
    ("GET", "/witnessed-checkpoint", get_witnessed_checkpoint),
)

#: Route parameters that span several path segments, by route (aiohttp's canonical form drops the pattern).
_MULTI_SEGMENT = {"/tile/{tile}": "/tile/{tile:.+}"}

#: The request latency histogram of each (route template, status) answered so far, so a request does not call
#: `labels` (which checks its arguments and looks the child up under a lock). Bounded by the routes (and
#: "unmatched") times the statuses the API answers with.
_LATENCIES: web.AppKey[dict[tuple[str, int], Histogram]] = web.AppKey("request latencies")


# --- middleware ---------------------------------------------------------------------------------------------------


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into a problem answer, and time every request by route template and status."""
    started = time.perf_counter()
    status = 499  # stays so if the client goes away (nginx's convention): nobody reads an answer then
    try:
        response = await _answer(request, handler)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status  # a redirect, passing through
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        app = request.app
        latencies = app[_LATENCIES]
        histogram = latencies.get((route, status))
        if histogram is None:
            histogram = latencies[route, status] = app[APPLICATION].metrics.request_latency.labels(route, str(status))
        histogram.observe(time.perf_counter() - started)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    store = request.app[APPLICATION].store
    if store.read_slots_free <= RESERVED_READ_SLOTS and request.path not in _NO_STORE_ROUTES:
        return problem(
            503,
            "store-busy",
            f"the node's store has {store.read_slots_free} of {store.max_readers} reader slots free and keeps "
            f"{RESERVED_READ_SLOTS} for consensus; retry shortly",
        )
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are answers, not errors
        return _http_problem(request, exc)
    except StoreUnavailable as exc:
        # A read for this request failed (the reader table is full, the disk failed): the request fails, not the
        # node, and the cause is logged for the operator.
        _log.warning("store read failed", method=request.method, path=request.path, error=str(exc))
        return problem(503, "store-unavailable", f"the node could not read its store; retry ({exc})")
    except CredledgerError as exc:
        return from_error(exc)
    except asyncio.CancelledError:
        raise
    except Exception:
        # The one catch-all: a bug must not take the connection down or show a traceback to clients.
        _log.exception("request failed", method=request.method, path=request.path)
        return problem(500, "internal", "the node failed to answer this request; the cause is in its log")


def _http_problem(request: web.Request, exc: web.HTTPException) -> web.Response:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        answer = problem(
            405, "method-not-allowed", f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
        )
        answer.headers["Allow"] = allowed
        return answer
    if isinstance(exc, web.HTTPNotFound):
        return problem(404, "not-found", f"no such resource: {request.method} {request.path}")
    slug = exc.reason.lower().replace(" ", "-")
    return problem(exc.status, slug, exc.text or exc.reason)


# --- the application ----------------------------------------------------------------------------------------------


def make_app(
    chain: LedgerApplication, config: NodeConfig, *, status: StatusSource | None = None, max_waiters: int = MAX_WAITERS
) -> web.Application:
    """The API application for `chain`. `status` adds live consensus and peer figures to `GET /v1/status`;
    `max_waiters` bounds the events `?wait=commit` requests wait on at once."""
    app = web.Application(middlewares=[problem_middleware], client_max_size=config.api.max_body_bytes)
    app[APPLICATION] = chain
    app[CONFIG] = config
    app[STATUS] = status or no_live_status
    app[WAITERS] = CommitWaiters(chain, max_waiters)
    app[ROSTER] = Roster(chain.genesis)
    app[STATUS_LISTS] = StatusListCache()
    app[_LATENCIES] = {}
    credentials = config.credentials
    app[SIGNER] = make_signer(credentials.issuer_key, credentials.api_token, config.data_dir, config.member_id)
    app.cleanup_ctx.append(_commit_waiters)
    if config.role == "replica":
        app.cleanup_ctx.append(forward_session)
    witness = load_witness(config.witness, config.data_dir)
    if witness is not None:
        app[WITNESS] = witness
        app.cleanup_ctx.append(witness_state)
    outside = load_witnesses(config.witnesses)
    if outside:
        app[WITNESSING] = Witnessing(chain.store, outside, config.witnesses, config.data_dir / COSIGNED_FILE)
        app.cleanup_ctx.append(witnessing_task)
    for method, path, handler in ROUTES:
        if method == "GET":
            app.router.add_get(_MULTI_SEGMENT.get(path, path), handler)
        else:
            app.router.add_route(method, path, handler)
    return app


async def _commit_waiters(app: web.Application) -> AsyncIterator[None]:
    """Hear the chain's commits while the app runs; cancel whoever still waits when it stops."""
    waiters = app[WAITERS]
    waiters.bind(asyncio.get_running_loop())
    yield
    waiters.close()
