"""RFC 9457 problem details: every error the API returns, as `application/problem+json`.

Errors raised by the ledger (`CredledgerError` subclasses) carry a `code` slug; this module maps each to an
HTTP status and a problem type URI (`urn:credledger:problem:<code>`), with the error's message as `detail`.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from credledger.ledger.errors import (
    ConfigError,
    CredledgerError,
    DecodeError,
    InvalidBlock,
    InvalidEvent,
    StatePruned,
    StorageError,
    StoreUnavailable,
    Unauthorized,
    VerificationError,
)
from credledger.node.mempool import DuplicateEvent, MempoolFull

CONTENT_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:credledger:problem:"

_STATUS: list[tuple[type[CredledgerError], int]] = [
    (DuplicateEvent, 409),
    (MempoolFull, 503),
    (Unauthorized, 403),
    (InvalidEvent, 422),
    (DecodeError, 400),
    (VerificationError, 422),
    (InvalidBlock, 422),
    (ConfigError, 500),
    (StoreUnavailable, 503),
    (StatePruned, 410),
    (StorageError, 500),
]

_TITLES = {
    400: "Bad request",
    403: "Not authorised",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    410: "Gone",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    500: "Internal error",
    503: "Service unavailable",
    504: "Timed out",
}


class Problem(CredledgerError):
    """An error that is only an HTTP answer (bad query parameter, unknown block, timeout, ...), with its status."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem_body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The RFC 9457 members of a problem, plus extension members."""
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + code,
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return body


def problem(status: int, code: str, detail: str, **extra: Any) -> web.Response:
    """A problem+json response."""
    return response(problem_body(status, code, detail, **extra))


def response(body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    """The problem+json response carrying `body` (as built by `problem_body` or `error_body`)."""
    return web.Response(status=body["status"], text=json.dumps(body), content_type=CONTENT_TYPE, headers=headers)


def status_of(error: CredledgerError) -> int:
    if isinstance(error, Problem):
        return error.status
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 400


def error_body(error: CredledgerError, **extra: Any) -> dict[str, Any]:
    """The problem for a ledger error; an InvalidEvent also names the rule it broke."""
    if isinstance(error, Problem):
        extra = {**error.extra, **extra}
    if isinstance(error, InvalidEvent):
        extra.setdefault("rule", error.rule)
    if isinstance(error, StatePruned):
        extra.setdefault("oldest_height", error.oldest)
    return problem_body(status_of(error), error.code, str(error), **extra)


def from_error(error: CredledgerError, **extra: Any) -> web.Response:
    """The problem response for a ledger error."""
    return response(error_body(error, **extra))
