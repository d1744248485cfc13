"""Every read has a deadline: a request body that trickles in is answered 408, an idle connection is closed."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from credledger.node.api.http_errors import api_runner
from tests.apinode import TEST_API, api_node


async def _answer(reader: asyncio.StreamReader) -> tuple[str, dict[str, object]]:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode()
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    return status_line, json.loads(await reader.readexactly(length))


async def test_a_request_body_that_does_not_arrive_in_time_is_answered_408_as_a_problem(tmp_path: Path) -> None:
    async with api_node(tmp_path, api=replace(TEST_API, body_timeout_ms=300)) as node:
        server = node.client.server
        reader, writer = await asyncio.open_connection(server.host, server.port)
        # Headers promise 100 bytes; the client sends 4 and then nothing, as a slow client would.
        writer.write(
            b"POST /v1/events HTTP/1.1\r\nHost: node\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"ev'
        )
        await writer.drain()
        async with asyncio.timeout(10):
            status_line, body = await _answer(reader)
        writer.close()
        assert status_line.startswith("HTTP/1.1 408")
        assert body["type"] == "urn:credledger:problem:request-timeout"
        assert body["status"] == 408
        assert "did not arrive within 0.3 s" in str(body["detail"])
        assert len(node.application.mempool) == 0


async def test_an_idle_keep_alive_connection_is_closed_by_the_node() -> None:
    async def hello(_request: web.Request) -> web.Response:
        return web.json_response({"hello": "world"})

    app = web.Application()
    app.router.add_get("/", hello)
    runner = api_runner(app, replace(TEST_API, keepalive_timeout_ms=200), shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: node\r\nConnection: keep-alive\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(10):
            status_line, body = await _answer(reader)
            assert (status_line, body) == ("HTTP/1.1 200 OK", {"hello": "world"})
            # The client stays silent: the node closes the connection instead of keeping it for aiohttp's default.
            assert await reader.read() == b""
        writer.close()
    finally:
        await runner.cleanup()
