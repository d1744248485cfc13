"""pyld's network loader is never used: JSON-LD contexts come only from the shipped files (DESIGN §13).

That ledger/vc imports no I/O library is pinned, with the rest of ledger/, by test_layering.py."""

from __future__ import annotations

import pytest
from pyld import jsonld

from credledger.ledger.vc.canon import canonicalize
from credledger.ledger.vc.errors import DocumentRefused
from credledger.ledger.vc.loader import CREDENTIALS_V2


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
