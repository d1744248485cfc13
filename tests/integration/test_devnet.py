"""`credledger devnet` as `make run` starts it: it creates a network, prints the URLs and an issue command that
works as printed, stops every node on Ctrl-C (SIGINT), and the next start resumes the same chain."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import PROJECT_ROOT
from tests.integration.cluster import poll

BANNER_END = "Press Ctrl-C to stop the network."


def free_base_port(count: int = 4) -> int:
    """A port p with p .. p + count - 1 all free on 127.0.0.1."""
    for base in range(31_000, 60_000, 211):
        try:
            sockets = []
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no free range of ports")


def credledger() -> list[str]:
    """The installed command beside this interpreter (as `make run` runs it), else the module."""
    script = Path(sys.executable).parent / "credledger"
    return [str(script)] if script.exists() else [sys.executable, "-m", "credledger.cli.main"]


class Devnet:
    """`credledger devnet` in a process of its own, its output collected line by line."""

    def __init__(self, directory: Path, base_port: int, run: int) -> None:
        self.output = directory.parent / f"{directory.name}-{run}.out"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [*credledger(), "devnet", "--dir", str(directory), "--base-port", str(base_port)],
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def text(self) -> str:
        return self.output.read_text()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        def seen() -> bool:
            assert self.process.poll() is None or text in self.text(), f"devnet exited:\n{self.text()}"
            return text in self.text()

        poll(f"devnet to print {text!r}", seen, timeout, interval=0.2)

    def interrupt(self) -> int:
        """Ctrl-C, as in its terminal; its exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/v1/status", timeout=5) as response:
        document: dict[str, Any] = json.loads(response.read())
        return document


def test_devnet_starts_prints_a_working_issue_command_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    directory = tmp_path / "devnet"
    base = free_base_port()
    urls = [f"http://127.0.0.1:{base + i}" for i in range(4)]
    devnet = Devnet(directory, base, 1)
    try:
        devnet.wait_for(BANNER_END)
        banner = devnet.text()
        assert f"created a network of 4 institutions in {directory}/" in banner
        for url in urls:
            assert url in banner
        assert f"verification page:  {urls[0]}/" in banner
        (issue_line,) = [line.strip() for line in banner.splitlines() if " issue " in line]
        command = shlex.split(issue_line)
        assert command[1:3] == ["issue", str(directory / "example-badge.json")]
        issued = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert issued.returncode == 0, issued.stderr
        assert re.search(r"committed: event [0-9a-f]{64} at log index 0 in block \d+", issued.stdout)
        height: int = status(urls[3])["height"]

        # A second devnet on the same directory (a second `make run`) says why it cannot start, and starts nothing.
        second = Devnet(directory, base, 0)
        try:
            code = second.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = second.interrupt()  # it started after all: stop its nodes before failing
        assert code == 2, second.text()
        assert "is in use by another running node: is a devnet already running from" in second.text()
        assert "are running" not in second.text()
        assert status(urls[0])["height"] >= height  # the first one is untouched

        height = status(urls[3])["height"]
        assert devnet.interrupt() == 0
        assert "devnet stopped." in devnet.text()
        for url in urls:  # every node is gone
            try:
                status(url)
            except OSError:
                continue
            raise AssertionError(f"{url} still answers after Ctrl-C")
        logs = [(directory / d / "node.log").read_text() for d in os.listdir(directory) if (directory / d).is_dir()]
        assert len(logs) == 4 and all('"node stopped"' in log for log in logs)

        # The next start reuses the network: same chain, the credential still there.
        again = Devnet(directory, base, 2)
        try:
            again.wait_for(BANNER_END)
            assert "created a network" not in again.text()
            poll("the chain to resume", lambda: status(urls[0])["height"] > height)
            assert status(urls[1])["log"]["size"] == 1
            assert again.interrupt() == 0
        finally:
            again.kill()
    finally:
        devnet.kill()


def test_devnet_on_a_port_another_program_holds_says_so_and_starts_nothing(tmp_path: Path) -> None:
    base = free_base_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", base + 2))
        squatter.listen()
        done = subprocess.run(
            [*credledger(), "devnet", "--dir", str(tmp_path / "devnet"), "--base-port", str(base)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert f"port {base + 2} on 127.0.0.1 is in use" in done.stderr and "--base-port" in done.stderr
    assert not list((tmp_path / "devnet").glob("*/node.log"))  # no node was started
