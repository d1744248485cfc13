"""ledger/vc stays pure (DESIGN §1): no I/O libraries of its own, and pyld's network loader is never used."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pyld import jsonld

from credledger.ledger.vc.canon import canonicalize
from credledger.ledger.vc.errors import DocumentRefused
from credledger.ledger.vc.loader import CREDENTIALS_V2
from tests.conftest import PROJECT_ROOT

VC = PROJECT_ROOT / "ledger" / "vc"
FORBIDDEN = {"asyncio", "aiohttp", "lmdb", "socket", "requests", "urllib3", "http", "node", "cli", "consensus"}


@pytest.mark.parametrize("path", sorted(VC.glob("*.py")), ids=lambda p: p.name)
def test_vc_module_imports_nothing_impure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert {name.removeprefix("credledger.").split(".")[0] for name in imported} & FORBIDDEN == set()
    assert "urllib.request" not in imported


def test_pyld_default_network_loader_is_never_consulted(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def network(url: str, options: object = None) -> None:
        asked.append(url)
        raise AssertionError("network loader used")

    monkeypatch.setattr(jsonld, "_default_document_loader", network)
    assert canonicalize({"@context": [CREDENTIALS_V2], "id": "urn:x", "name": "n"})
    with pytest.raises(DocumentRefused):
        canonicalize({"@context": ["https://contexts.example/unknown"], "id": "urn:x"})
    assert asked == []
