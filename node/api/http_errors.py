"""Problems for requests that never reach the app: garbage request lines, oversized URLs and headers.

aiohttp parses the request line and headers before any route or middleware runs, and answers what it cannot
parse with its own plain-text 400. `ProblemAppRunner` serves the app with a request handler that answers those
as RFC 9457 problems like every other error: 414 `url-too-long`, 431 `headers-too-large`, or 400
`malformed-request`, with a detail naming what was wrong. The connection is closed after the answer (the
parser's position in the stream is lost), and the refusal is logged at info level: it is the client's fault.
"""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from credledger.node.api.problems import problem
from credledger.node.config import ApiConfig

log = structlog.get_logger("credledger.http")

#: Most characters of the client's own bytes quoted back in a detail.
_QUOTED = 80


def parse_failure(exc: BaseException | None, message: str | None) -> tuple[int, str, str]:
    """Status, problem code and detail for a request aiohttp could not parse."""
    if isinstance(exc, LineTooLong):
        line, limit = exc.args[0], exc.args[1]
        head = bytes(line[:16]) if isinstance(line, bytes | bytearray) else str(line)[:16].encode()
        if head.startswith(b"/") or b"://" in head:
            return 414, "url-too-long", f"the request URL is longer than the limit of {limit} bytes"
        return 431, "headers-too-large", f"a request header line is longer than the limit of {limit} bytes"
    text = (message or (str(exc) if exc is not None else "") or "unparseable request").strip()
    if isinstance(exc, BadHttpMessage) and "too many headers" in text.lower():
        return 431, "headers-too-large", f"the request has too many header lines ({text})"
    what = "request line" if isinstance(exc, BadHttpMethod) else "request"
    first = text.splitlines()[0] if text else "unparseable"
    quoted = first[:_QUOTED] + ("..." if len(first) > _QUOTED else "")
    return 400, "malformed-request", f"the {what} is not valid HTTP/1.1: {quoted}"


class _ProblemRequestHandler(RequestHandler):
    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= 500 or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        status, code, detail = parse_failure(exc, message)
        log.info("unparseable request refused", remote=request.remote, problem=code, detail=detail)
        answer = problem(status, code, detail)
        answer.force_close()
        return answer


class _ProblemServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class ProblemAppRunner(web.AppRunner):
    """An `AppRunner` whose connections answer unparseable requests with problem documents."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # Same server, one difference: the request handler it builds for each connection.
        server.__class__ = _ProblemServer
        return server


def api_runner(app: web.Application, api: ApiConfig, *, shutdown_timeout: float) -> ProblemAppRunner:
    """The runner that serves the node API: unparseable requests answered as problems, and an idle keep-alive
    connection closed after `api.keepalive_timeout_ms` (aiohttp's default would keep it, and its buffers, open)."""
    return ProblemAppRunner(
        app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=shutdown_timeout,
        keepalive_timeout=api.keepalive_timeout_ms / 1000,
    )
