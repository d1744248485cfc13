"""What every `credledger` call shares: `--version` and `--help` import no command's machinery, the command list
matches each command's own help, and a reader that closes the pipe early, or Ctrl-C, gets no traceback."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from credledger.cli.main import COMMANDS, build_parser
from tests.conftest import PROJECT_ROOT, python_with_default_sigint

#: Modules that take most of a second to import and that neither --version nor --help needs.
HEAVY = ("aiohttp", "lmdb", "nacl", "cryptography", "msgpack", "structlog", "rfc8785", "ledger", "node")


def modules_loaded_by(*argv: str) -> list[str]:
    probe = (
        "import sys, json; from cli.main import main\n"
        "try:\n    main(sys.argv[1:])\nfinally:\n"
        "    sys.stdout.flush(); print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    )
    loaded: list[str] = json.loads(done.stderr.splitlines()[-1])
    return loaded


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_import_no_heavy_module(argv: list[str]) -> None:
    loaded = modules_loaded_by(*argv)
    assert [m for m in loaded if m.split(".")[0] in HEAVY] == []
    assert [
        m
        for m in loaded
        if m.startswith("credledger.cli.") and m not in ("credledger.cli.main", "credledger.cli.exits")
    ] == []


def test_a_command_imports_only_its_own_module() -> None:
    loaded = modules_loaded_by("genesis", "--help")
    assert "credledger.cli.genesis" in loaded
    assert [m for m in loaded if m.split(".")[0] in ("aiohttp", "lmdb")] == []
    assert [
        m
        for m in loaded
        if m in ("credledger.cli.verify", "credledger.cli.audit", "credledger.cli.run", "credledger.node.server")
    ] == []


def test_the_command_list_matches_each_commands_own_help() -> None:
    full = build_parser(None)
    (commands,) = [a for a in full._actions if isinstance(a, argparse._SubParsersAction)]
    own = {action.dest: action.help for action in commands._choices_actions}
    assert own == {name: summary for name, (_, summary) in COMMANDS.items()}


def closing_the_pipe_early(*argv: str) -> tuple[int, str]:
    """Run credledger with its stdout read by nobody (like `| head` having read what it wanted before the command
    writes): its exit code and what it wrote on stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "credledger.cli.main", *argv],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    errors = process.stderr.read().decode()
    return process.wait(timeout=60), errors


def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly(tmp_path: Path) -> None:
    code, errors = closing_the_pipe_early("init", "--id", "uni-a.example", "--name", "A", "--dir", str(tmp_path / "a"))
    assert (code, errors) == (141, "")
    assert (tmp_path / "a" / "member.json").exists()  # the work was done; only the report had no reader
    assert closing_the_pipe_early("verify", "--help") == (0, "")  # argparse's own output ignores the closed pipe


def test_ctrl_c_ends_a_waiting_command_with_one_line_and_130() -> None:
    # A "node" that takes the connection and never answers: the command, past its imports, waits for it.
    with socket.socket() as node:
        node.bind(("127.0.0.1", 0))
        node.listen()
        node.settimeout(60)
        url = f"http://127.0.0.1:{node.getsockname()[1]}"
        process = subprocess.Popen(
            python_with_default_sigint("-m", "credledger.cli.main", "status", "--node", url),
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        connection, _ = node.accept()
        with connection:
            process.send_signal(signal.SIGINT)
            out, errors = process.communicate(timeout=60)
    assert (process.returncode, out, errors) == (130, "", "credledger: interrupted\n")


@pytest.mark.parametrize("after", [0.1, 0.3, 0.6])
def test_ctrl_c_while_starting_shows_no_traceback(tmp_path: Path, after: float) -> None:
    process = subprocess.Popen(
        python_with_default_sigint(
            "-m", "credledger.cli.main", "audit", "--data-dir", str(tmp_path), "--genesis", "none"
        ),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(after)  # somewhere in the command's imports (most of a second), or already refusing its arguments
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=60)
    assert "Traceback" not in errors
    # Stopped by Ctrl-C (130; or by the signal itself, before Python took it over), or done before it came.
    assert process.returncode in (130, -signal.SIGINT, 2, 3), errors
