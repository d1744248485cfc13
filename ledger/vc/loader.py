"""The JSON-LD contexts shipped with credledger, and the only document loader the standards layer uses.

A verifier that fetched contexts from the network would let whoever serves them change what a signed credential
means, and would leak which credentials are checked. So every context lives in ``contexts/`` (sources, licences
and digests in ``contexts/README.md``) and the loader refuses any other URL with `DocumentRefused`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from credledger.ledger.vc.errors import DocumentRefused

CONTEXTS_DIR = Path(__file__).parent / "contexts"

CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"
MULTIKEY_V1 = "https://w3id.org/security/multikey/v1"
DID_V1 = "https://www.w3.org/ns/did/v1"
OB_V3P0 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"

#: Context URL -> file in ``contexts/``. Open Badges 3.0 examples in the wild use 3.0.1 to 3.0.3.
SHIPPED_CONTEXTS: Mapping[str, str] = {
    CREDENTIALS_V2: "credentials-v2.jsonld",
    DATA_INTEGRITY_V2: "data-integrity-v2.jsonld",
    MULTIKEY_V1: "multikey-v1.jsonld",
    DID_V1: "did-v1.jsonld",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.1.json": "ob-context-3.0.1.json",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json": "ob-context-3.0.2.json",
    OB_V3P0: "ob-context-3.0.3.json",
}

#: Largest document the loader will hold for one URL (the largest shipped context is about 20 KiB).
MAX_LOADED_DOCUMENT_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class DocumentLoader:
    """A pyld document loader that serves a fixed set of documents by exact URL and refuses everything else.

    `cache` is the resolved-context cache pyld keeps per loader (never pyld's process-wide one, so two loaders
    serving different documents can never see each other's contexts).
    """

    documents: Mapping[str, Any]
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __call__(self, url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        try:
            document = self.documents[url]
        except (KeyError, TypeError):
            raise DocumentRefused(f"document {url!r} is not shipped with credledger; refusing to load it") from None
        # tag "static": the document never changes, so pyld may keep the processed context across operations.
        return {"contextUrl": None, "documentUrl": url, "document": copy.deepcopy(document), "tag": "static"}

    def with_documents(self, extra: Mapping[str, Any]) -> DocumentLoader:
        """A loader that also serves `extra` (e.g. a DID document already resolved by the caller)."""
        for url, document in extra.items():
            if url in self.documents and self.documents[url] != document:
                raise DocumentRefused(f"document {url!r} would replace a shipped context")
            try:
                size = len(json.dumps(document).encode())
            except (TypeError, ValueError, RecursionError):
                raise DocumentRefused(f"document {url!r} is not JSON") from None
            if size > MAX_LOADED_DOCUMENT_BYTES:
                raise DocumentRefused(f"document {url!r} is larger than {MAX_LOADED_DOCUMENT_BYTES} bytes")
        return DocumentLoader({**self.documents, **extra})


def read_context(url: str) -> bytes:
    """The exact bytes of a shipped context (for digest checks)."""
    try:
        name = SHIPPED_CONTEXTS[url]
    except KeyError:
        raise DocumentRefused(f"context {url!r} is not shipped with credledger") from None
    return (CONTEXTS_DIR / name).read_bytes()


@cache
def shipped_loader() -> DocumentLoader:
    """The loader for every context credledger ships (read once per process)."""
    return DocumentLoader({url: json.loads(read_context(url)) for url in SHIPPED_CONTEXTS})
