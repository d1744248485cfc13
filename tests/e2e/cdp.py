"""A minimal Chrome DevTools Protocol driver for headless Chromium, over aiohttp's websocket client.

Just what the page tests need: open a tab (desktop or phone-sized with touch), navigate, evaluate JavaScript,
set a file input, press keys, answer a file chooser, cut the network, read console errors and take a screenshot.
Chromium is Debian's `/usr/bin/chromium`, started with its own temporary profile and `--remote-debugging-port=0`;
the port it chose is read from the profile's DevToolsActivePort file.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = "/usr/bin/chromium"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)
START_TIMEOUT = 20.0
COMMAND_TIMEOUT = 15.0


class Tab:
    """One page target, driven through a flat CDP session on the browser's websocket."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self.browser.send(method, params, session=self.session)

    async def navigate(self, url: str) -> None:
        loaded = self.browser.expect("Page.loadEventFired", self.session)
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded, COMMAND_TIMEOUT)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited if it is a promise)."""
        answer = await self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in answer:
            raise AssertionError(f"page script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        """Poll until `expression` is truthy; returns its value."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {expression}")
            await asyncio.sleep(0.02)

    async def set_file(self, selector: str, path: Path) -> None:
        """Choose `path` in the file input matching `selector`, as a person picking it would."""
        document = await self.send("DOM.getDocument")
        node = await self.send("DOM.querySelector", nodeId=document["root"]["nodeId"], selector=selector)
        await self.send("DOM.setFileInputFiles", files=[str(path)], nodeId=node["nodeId"])

    async def press(self, key: str) -> None:
        """Press and release one key ("Tab", "Enter" or " "), as a person at the keyboard would."""
        code, text = _KEYS[key]
        common = {"key": key, "code": "Space" if key == " " else key, "windowsVirtualKeyCode": code}
        await self.send("Input.dispatchKeyEvent", type="keyDown", text=text, **common)
        await self.send("Input.dispatchKeyEvent", type="keyUp", **common)

    async def intercept_file_chooser(self) -> None:
        """From now on a file dialog the page opens is not shown; `answer_file_chooser` picks the file instead."""
        await self.send("Page.setInterceptFileChooserDialog", enabled=True)

    async def answer_file_chooser(self, path: Path) -> None:
        """Wait until the page opens a file dialog and choose `path` in it."""
        opened = [p for m, p, s in self.browser.events if m == "Page.fileChooserOpened" and s == self.session]
        if not opened:
            await asyncio.wait_for(self.browser.expect("Page.fileChooserOpened", self.session), COMMAND_TIMEOUT)
            opened = [p for m, p, s in self.browser.events if m == "Page.fileChooserOpened" and s == self.session]
        await self.send("DOM.setFileInputFiles", files=[str(path)], backendNodeId=opened[-1]["backendNodeId"])

    async def go_offline(self) -> None:
        """Cut this tab's network, so the node cannot be reached (the page stays loaded)."""
        await self.send("Network.enable")
        await self.send(
            "Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1, uploadThroughput=-1
        )

    async def screenshot(self, path: Path, *, full_page: bool = True) -> None:
        """A PNG of the whole page, or with `full_page=False` of what the screen shows."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=full_page)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def errors(self) -> list[str]:
        """Console errors and uncaught exceptions the page has raised so far."""
        found = []
        for method, params, session in self.browser.events:
            if session != self.session:
                continue
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
        return found


_KEYS = {"Tab": (9, ""), "Enter": (13, "\r"), " ": (32, " ")}


class Browser:
    """A running headless Chromium and its browser-level websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[tuple[str, dict[str, Any], str | None]] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._waiters: list[tuple[str, str | None, asyncio.Future[None]]] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    if "error" in data:
                        future.set_exception(AssertionError(f"CDP error: {data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
                continue
            method, session = data.get("method", ""), data.get("sessionId")
            self.events.append((method, data.get("params", {}), session))
            for waiter in list(self._waiters):
                if waiter[0] == method and waiter[1] == session and not waiter[2].done():
                    waiter[2].set_result(None)
                    self._waiters.remove(waiter)

    async def send(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None) -> Any:
        message_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        payload: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session is not None:
            payload["sessionId"] = session
        await self.ws.send_str(json.dumps(payload))
        return await asyncio.wait_for(future, COMMAND_TIMEOUT)

    def expect(self, method: str, session: str | None) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((method, session, future))
        return future

    async def new_tab(self, width: int = 900, height: int = 1500, *, phone: bool = False) -> Tab:
        """A tab with a screen this size; `phone` makes it a mobile screen with a touch screen and no mouse."""
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        tab = Tab(self, attached["sessionId"])
        for domain in ("Page.enable", "Runtime.enable", "DOM.enable"):
            await tab.send(domain)
        await tab.send(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=phone
        )
        if phone:
            await tab.send("Emulation.setTouchEmulationEnabled", enabled=True, maxTouchPoints=5)
        return tab

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.send("Browser.close")
        await self.ws.close()
        self._reader.cancel()


@asynccontextmanager
async def chromium(profile: Path) -> AsyncIterator[Browser]:
    """Start headless Chromium with a fresh profile in `profile`; stop it (and only it) afterwards."""
    profile.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while not port_file.is_file() or len(port_file.read_text().split("\n")) < 2:
            if process.poll() is not None:
                raise AssertionError(f"chromium exited with status {process.returncode} before it listened")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("chromium did not open its DevTools port in time")
            await asyncio.sleep(0.05)
        port, path = port_file.read_text().split("\n")[:2]
        async with aiohttp.ClientSession() as session:
            ws = await session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=64 * 1024 * 1024)
            browser = Browser(ws)
            try:
                yield browser
            finally:
                await browser.close()
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(asyncio.to_thread(process.wait), 10)
        except TimeoutError:
            process.kill()
            await asyncio.to_thread(process.wait)
