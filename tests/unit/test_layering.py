"""The rooms and the arrows between them (docs/design.md §1): each package imports only what it may.

    cli ──► node ──► consensus ──► ledger      (and cli ──► verifier ──► ledger)

`ledger/` outside `ledger/storage/` is pure (no I/O libraries, no upper layer); `ledger/storage/` alone opens LMDB;
`consensus/` is a pure state machine; the verifier, auditor and monitor tools never load the server; the node
process never imports the command line. A test fails as soon as one arrow points the wrong way.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ledger", "consensus", "node", "verifier", "cli")
IO_LIBRARIES = {
    "asyncio",
    "aiohttp",
    "socket",
    "threading",
    "lmdb",
    "http.client",
    "http.server",
    "urllib.request",
    "requests",
    "urllib3",
}

#: What each room may not import (modules and their submodules; credledger's own packages without the prefix).
FORBIDDEN: dict[str, set[str]] = {
    "ledger": IO_LIBRARIES | {"consensus", "node", "verifier", "cli"},
    "ledger/storage": (IO_LIBRARIES - {"lmdb"}) | {"consensus", "node", "verifier", "cli"},
    "consensus": IO_LIBRARIES | {"node", "verifier", "cli", "time", "random", "os"},
    "node": {"cli", "verifier"},
    "verifier": {"node", "cli", "aiohttp", "asyncio"},
    "cli": set(),
}


def _room(path: Path) -> str:
    relative = path.relative_to(ROOT)
    if relative.parts[:2] == ("ledger", "storage"):
        return "ledger/storage"
    return relative.parts[0]


def _imports(path: Path) -> set[str]:
    """The modules `path` imports, with credledger's own packages named without their `credledger.` prefix."""
    tree = ast.parse(path.read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return {name.removeprefix("credledger.") for name in names}


def _forbidden(imported: set[str], forbidden: set[str]) -> set[str]:
    return {name for name in imported for f in forbidden if name == f or name.startswith(f + ".")}


SOURCES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_imports_only_what_its_room_may(path: Path) -> None:
    wrong = _forbidden(_imports(path), FORBIDDEN[_room(path)])
    assert wrong == set(), f"{path.relative_to(ROOT)} ({_room(path)}) imports {sorted(wrong)}"


def test_storage_is_the_only_importer_of_lmdb() -> None:
    importers = {str(p.relative_to(ROOT)) for p in SOURCES if _forbidden(_imports(p), {"lmdb"})}
    assert importers and all(name.startswith("ledger/storage/") for name in importers), sorted(importers)


@pytest.mark.parametrize(
    ("module", "absent"),
    [
        ("credledger.verifier.credential", ("aiohttp", "lmdb", "credledger.node")),
        ("credledger.ledger.bundle", ("aiohttp", "lmdb", "asyncio")),
        ("credledger.consensus.machine", ("aiohttp", "lmdb", "asyncio")),
    ],
)
def test_importing_a_room_loads_nothing_from_the_rooms_above(module: str, absent: tuple[str, ...]) -> None:
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.startswith({absent!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
