"""Every command block of README.md, run in order as a newcomer would, against a real `credledger devnet`.

How the blocks run: each ```sh block is split into commands (backslash continuations joined, comment lines
dropped) and each command runs with bash in a temporary directory that stands for the repository checkout --
`.venv` there is a link to this interpreter's environment, so `.venv/bin/credledger` works as written, and
`credledger` is on PATH as after `. .venv/bin/activate`. Every command must exit 0. A ```python block runs with
this interpreter in the same directory and must print `valid`.

What cannot run as written, and how it is run instead:

- Ports: the README's 8700..8709 are moved to free ports (one mapping for every command: 87NN -> base + NN),
  since other test runs share this machine.
- `make run` is started as what it runs, `credledger devnet` (with the mapped --base-port), and kept running to
  the end; `make test` is this very suite and is skipped; `docker compose` needs a Docker engine, which this
  machine lacks (tests/unit/test_compose.py checks the compose file, the Dockerfile and config/devnet instead).
- `credledger run` starts its node in the background, listening on 127.0.0.1 (`CREDLEDGER_API_HOST`, the
  override README documents for every setting; the README's institution listens on every interface). The test
  waits until it answers, and a replica until it has caught up with the devnet; each is stopped with SIGTERM at
  the end and must exit 0.
- `credledger monitor` follows nodes until stopped: it gets `--rounds 2 --interval 0.5`.
- The hand-built network: README shows institution uni-a's `init`; the test runs the same command for uni-b,
  uni-c and uni-d (each institution runs its own), so that `genesis` finds their member files.
- The credential files the examples name (badge.json, other-badge.json, award.json) are made from the devnet's
  example badge, each with a name of its own, once the devnet has written it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from credledger.node.config import load_config
from tests.conftest import PROJECT_ROOT
from tests.integration.cluster import poll
from tests.integration.test_devnet import BANNER_END, free_base_port

README = PROJECT_ROOT / "README.md"
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)
PORT = re.compile(r"\b87(0\d)\b")
CREDENTIALS = ("badge.json", "other-badge.json", "award.json")
OTHER_INSTITUTIONS = ("b", "c", "d")
COMMAND_TIMEOUT_S = 120


def blocks() -> Iterator[tuple[str, str]]:
    """README's command blocks in order: (language, text)."""
    for match in BLOCK.finditer(README.read_text()):
        yield match.group(1), match.group(2)


def commands(block: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, blank and comment lines left out."""
    out: list[str] = []
    pending = ""
    for line in block.splitlines():
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole and not whole.startswith("#"):
            out.append(whole)
    return out


@dataclass
class Newcomer:
    """A terminal in the checkout: runs README's commands and keeps the long-running ones going."""

    home: Path
    base: int
    env: dict[str, str]
    background: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)
    devnet: subprocess.Popen[bytes] | None = None
    ran: list[str] = field(default_factory=list)

    def ports(self, command: str) -> str:
        return PORT.sub(lambda m: str(self.base + int(m.group(1))), command)

    def shell(self, command: str) -> str:
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, f"`{command}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        self.ran.append(command)
        return done.stdout

    def run(self, readme_command: str) -> None:
        command = self.ports(readme_command)
        words = shlex.split(command, comments=True)
        if words[:2] == ["make", "run"]:
            self.start_devnet()
        elif words[:2] == ["make", "test"] or words[:2] == ["docker", "compose"]:
            return
        elif words[:2] == ["credledger", "run"]:
            self.start_node(words)
        elif words[:2] == ["credledger", "monitor"]:
            self.shell(f"{command} --rounds 2 --interval 0.5")
        else:
            self.shell(command)
            if words[:3] == ["credledger", "init", "--id"] and words[3] == "uni-a.example":
                for x in OTHER_INSTITUTIONS:
                    self.shell(command.replace("uni-a", f"uni-{x}").replace("University A", f"University {x.upper()}"))

    def start_devnet(self) -> None:
        log = self.home / "make-run.out"
        with log.open("wb") as out:
            self.devnet = subprocess.Popen(
                ["credledger", "devnet", "--base-port", str(self.base + 1)],
                cwd=self.home,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

        def started() -> bool:
            assert self.devnet is not None and self.devnet.poll() is None, log.read_text()
            return BANNER_END in log.read_text()

        poll("the devnet to start", started, timeout=90, interval=0.2)
        example = json.loads((self.home / "devnet" / "example-badge.json").read_text())
        for name in CREDENTIALS:
            (self.home / name).write_text(json.dumps({**example, "name": name.removesuffix(".json")}, indent=2))

    def start_node(self, words: list[str]) -> None:
        env = {**self.env, "CREDLEDGER_API_HOST": "127.0.0.1"}
        config = load_config(self.home / words[words.index("--config") + 1], env=env)
        node = subprocess.Popen(words, cwd=self.home, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.background.append((" ".join(words), node))
        url = f"http://127.0.0.1:{config.api.port}"

        def answers() -> bool:
            assert node.poll() is None, f"{' '.join(words)} exited {node.returncode}: {node.stderr}"
            try:
                return status(url) is not None
            except OSError:
                return False

        poll(f"{' '.join(words)} to answer", answers, timeout=60, interval=0.2)
        if config.role == "replica":
            target = status(f"http://127.0.0.1:{self.base + 1}")["height"]
            poll("the replica to catch up", lambda: status(url)["height"] >= target, timeout=60, interval=0.2)

    def stop(self) -> list[tuple[str, int]]:
        """Stop every long-running process (the nodes with SIGTERM, the devnet with Ctrl-C); their exit codes."""
        codes = []
        for name, process in self.background:
            process.send_signal(signal.SIGTERM)
            codes.append((name, wait_or_kill(process)))
        if self.devnet is not None:
            self.devnet.send_signal(signal.SIGINT)
            codes.append(("make run", wait_or_kill(self.devnet)))
        return codes


def wait_or_kill(process: subprocess.Popen[bytes]) -> int:
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -9


def status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/v1/status", timeout=5) as response:
        document: dict[str, Any] = json.loads(response.read())
        return document


@pytest.fixture
def newcomer(tmp_path: Path) -> Iterator[Newcomer]:
    home = tmp_path / "checkout"
    home.mkdir()
    venv = Path(sys.executable).parent
    (home / ".venv").symlink_to(venv.parent, target_is_directory=True)
    env = {
        **os.environ,
        "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # the audit's state directory stays in the test's directory
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CREDLEDGER_NODE", None)
    person = Newcomer(home, free_base_port(10), env)
    try:
        yield person
    finally:
        person.stop()


def test_every_readme_command_block_runs_as_written_against_a_devnet(newcomer: Newcomer) -> None:
    assert (Path(sys.executable).parent / "credledger").exists(), "run the suite with the project's .venv"
    seen = {"sh": 0, "python": 0}
    for language, text in blocks():
        seen[language] += 1
        if language == "python":
            done = subprocess.run(
                [sys.executable, "-c", newcomer.ports(text)],
                cwd=newcomer.home,
                env=newcomer.env,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
                check=False,
            )
            assert (done.returncode, done.stdout) == (0, "valid\n"), done.stderr
            continue
        for command in commands(text):
            newcomer.run(command)
    assert seen["python"] == 1 and seen["sh"] >= 10
    # What the blocks did, checked beyond their exit codes.
    assert (newcomer.home / "badge.receipt.json").exists() and (newcomer.home / "badge.receipt.tlog-proof").exists()
    assert (newcomer.home / "uni-a" / "genesis.json").read_text() == (newcomer.home / "genesis.json").read_text()
    assert newcomer.devnet is not None and newcomer.devnet.poll() is None, "the devnet stopped during the README"
    codes = newcomer.stop()
    assert [code for _, code in codes] == [0] * len(codes), codes
