"""RDF Dataset Canonicalization (RDFC-1.0) of a JSON-LD document, with bounds.

The work is done by pyld (Digital Bazaar's JSON-LD processor for Python): JSON-LD 1.1 toRdf, then its
``URDNA2015`` algorithm, whose output RDFC-1.0 defines to be identical (RDFC-1.0 §1: "URDNA2015 ... is the
algorithm specified here"; SHA-256 is its hash). We add what a ledger facing the public needs:

- the only documents pyld may load are ours (`ledger.vc.loader`), never the network;
- "safe mode" as Data Integrity verifiers use it: a property or type that the contexts do not define, or an
  ``@id`` that is not an absolute IRI, would be dropped silently by JSON-LD, so it could be changed without
  breaking a signature; here it is an error;
- pyld escapes only ``\\ \t \n \r "`` in literals, while RDFC-1.0 (RDF 1.2 canonical N-Quads) also escapes
  ``\b``, ``\f`` and every other control character (``\u000b``...). A literal holding such a character would
  canonicalize differently here than in other verifiers, so it is refused (`UNESCAPED_CONTROL`);
- bounded input: document size, number of quads and blank nodes, and the Hash N-Degree Quads work limit that
  RDFC-1.0 §4.4 asks implementations to set against poison graphs: each blank node at most n² deep iterations
  for n blank nodes (work factor 2, enough for the W3C suite's "computable" poison graphs, which need 43 for
  n = 12) and at most `MAX_DEEP_ITERATIONS` in all, so the work stays bounded however large n is.

Speed: most of pyld's time went to processing contexts again for every document -- it remembers processed
contexts only when they propagate, and Open Badges 3.0 scopes one to each type -- and to expanding the document
twice (``to_rdf`` expands its input). `_ContextMemo` remembers processed contexts per loader, the document is
expanded once, and the loader remembers recent canonical forms (issuing canonicalizes a credential to check it,
then to sign it). Outputs are unchanged: the W3C and 1EdTech vectors and the JavaScript verifiers pin them.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from cachetools import LRUCache
from pyld import jsonld
from pyld.canon import URDNA2015
from pyld.context_resolver import ContextResolver

from credledger.ledger.vc.errors import CanonicalizationError, DocumentRefused
from credledger.ledger.vc.loader import DocumentLoader, shipped_loader

#: Largest JSON-LD document (UTF-8 JSON) we canonicalize. A badge with images inlined stays well below this.
MAX_DOCUMENT_BYTES = 256 * 1024
#: Largest number of quads a document may expand to.
MAX_QUADS = 10_000
#: Largest number of blank nodes in one document.
MAX_BLANK_NODES = 1_000
#: Most Hash N-Degree Quads calls in one canonicalization (the W3C suite's hardest computable graph needs 468).
MAX_DEEP_ITERATIONS = 10_000
#: Resolved contexts pyld may cache per loader.
MAX_CACHED_CONTEXTS = 64
#: Canonical forms remembered per loader: issuing canonicalizes a credential to check it, then again to sign it,
#: and every credential signed within one second by one key has the same proof configuration.
MAX_CANONICAL_FORMS = 256
#: Longest canonical form remembered (a badge's is about 5,000 characters): the memory stays below 16 MiB.
MAX_REMEMBERED_FORM_CHARS = 64 * 1024
#: Processed active contexts remembered per loader (`_ContextMemo`): a few per context a credential may use.
MAX_PROCESSED_CONTEXTS = 512

NQUADS = "application/n-quads"
#: Control characters that RDFC-1.0 escapes and pyld's serializer does not (it handles only \t, \n and \r).
#: RFC 3987 scheme followed by ':' (what makes an IRI absolute).
ABSOLUTE_IRI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
UCHAR = re.compile(r"\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8}")
UNESCAPED_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _WorkLimitExceeded(Exception):
    """Raised inside pyld's canonicalization; turned into `CanonicalizationError` outside it."""


class _BoundedURDNA2015(URDNA2015):  # type: ignore[misc]  # pyld is untyped
    """URDNA2015 with RDFC-1.0's limit on deep iterations of Hash N-Degree Quads (per blank node and in all)."""

    def __init__(self) -> None:
        super().__init__()
        self._deep_iterations: dict[str, int] = {}
        self._total = 0

    def hash_n_degree_quads(self, id_: str, issuer: Any) -> Any:
        done = self._deep_iterations.get(id_, 0)
        if done >= len(self.blank_node_info) ** 2:
            raise _WorkLimitExceeded(f"blank node {id_} needs more than {done} deep iterations")
        if self._total >= MAX_DEEP_ITERATIONS:
            raise _WorkLimitExceeded(f"more than {MAX_DEEP_ITERATIONS} deep iterations in all")
        self._deep_iterations[id_] = done + 1
        self._total += 1
        return super().hash_n_degree_quads(id_, issuer)


class _ContextMemo:
    """Processed active contexts, keyed by the active context they were processed against and the local context.

    Processing a context is a pure function of those two (and the loader, which owns the memo), but pyld only
    remembers results for contexts that propagate: a type-scoped context (Open Badges 3.0 defines one per type) is
    processed again, term by term, every time a node of that type is expanded -- most of a canonicalization's time.
    Active contexts are frozen once processed and named by their ``_uuid``; a local context is named by its URL(s),
    or by its JSON text when it is an object (a document's own context may be changed between two calls, so never
    by identity). Least recently used entries go first, so a stream of documents with contexts of their own cannot
    push out the shipped contexts' entries, and the memo's size stays bounded.
    """

    def __init__(self, limit: int = MAX_PROCESSED_CONTEXTS) -> None:
        self._entries: LRUCache[tuple[Any, ...], Any] = LRUCache(maxsize=limit)

    @staticmethod
    def local_key(local_ctx: Any) -> Any:
        if isinstance(local_ctx, str):
            return local_ctx
        if isinstance(local_ctx, list) and all(isinstance(c, str) for c in local_ctx):
            return tuple(local_ctx)
        return json.dumps(local_ctx, sort_keys=True, separators=(",", ":"), default=dict)

    def get(self, key: tuple[Any, ...]) -> Any:
        return self._entries.get(key)

    def put(self, key: tuple[Any, ...], processed: Any) -> None:
        self._entries[key] = processed


class _Processor(jsonld.JsonLdProcessor):  # type: ignore[misc]  # pyld is untyped
    """pyld's processor with `_ContextMemo` in front of context processing."""

    def __init__(self, memo: _ContextMemo) -> None:
        super().__init__(on_property_dropped=_refuse_dropped)
        self._memo = memo

    def _process_context(  # noqa: PLR0917  # pyld's signature
        self,
        active_ctx: Any,
        local_ctx: Any,
        options: Any,
        override_protected: bool = False,
        propagate: bool = True,
        validate_scoped: bool = True,
        cycles: Any = None,
    ) -> Any:
        uuid = active_ctx.get("_uuid")
        if cycles is not None or uuid is None:
            # Checking scoped contexts while a context is being built: the active context is still changing.
            return super()._process_context(
                active_ctx, local_ctx, options, override_protected, propagate, validate_scoped, cycles
            )
        key = (uuid, _ContextMemo.local_key(local_ctx), override_protected, propagate, validate_scoped)
        processed = self._memo.get(key)
        if processed is None:
            processed = super()._process_context(
                active_ctx, local_ctx, options, override_protected, propagate, validate_scoped
            )
            self._memo.put(key, processed)
        return processed

    def expanded_to_rdf(self, expanded: Any, options: dict[str, Any]) -> Any:
        """pyld's ``to_rdf`` from its node map on, for a document expanded already (``to_rdf`` would expand the
        expanded form once more: the same output, a third of the time)."""
        rdf_options = {**options, "produceGeneralizedRdf": False, "processingMode": "json-ld-1.1"}
        issuer = jsonld.IdentifierIssuer("_:b")
        node_map: dict[str, Any] = {"@default": {}}
        self._create_node_map(expanded, node_map, "@default", issuer)
        return {
            name: self._graph_to_rdf(graph, issuer, rdf_options)
            for name, graph in sorted(node_map.items())
            if name == "@default" or jsonld._is_absolute_iri(name)
        }


def _refuse_dropped(term: str | None) -> None:
    raise CanonicalizationError(f"term {term!r} is not defined by the document's contexts (it would be ignored)")


def _is_absolute_or_blank(iri: Any) -> bool:
    return isinstance(iri, str) and (iri.startswith("_:") or ABSOLUTE_IRI.match(iri) is not None)


def _refuse_relative(node: Any) -> None:
    """Safe mode: an ``@id`` or ``@type`` that is not an absolute IRI would be dropped from the RDF silently."""
    if isinstance(node, list):
        for item in node:
            _refuse_relative(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "@id" and not _is_absolute_or_blank(value):
                raise CanonicalizationError(f"{value!r} is not an absolute IRI (it would be ignored)")
            if key == "@type":
                for kind in value if isinstance(value, list) else [value]:
                    if not _is_absolute_or_blank(kind):
                        raise CanonicalizationError(f"type {kind!r} is not defined by the document's contexts")
            elif key != "@value":
                _refuse_relative(value)


def _refuse_free_floating_list(document: dict[str, Any]) -> None:
    """Safe mode: JSON-LD drops a list that is not a property's value, and pyld drops the whole node holding it,
    so a document could canonicalize to nothing at all (and a proof cover none of what it says)."""
    graph = document.get("@graph")
    nodes = [document, *(graph if isinstance(graph, list) else [graph] if isinstance(graph, dict) else [])]
    if any(isinstance(node, dict) and "@list" in node for node in nodes):
        raise CanonicalizationError("@list outside a property would be ignored")


def _memo(loader: DocumentLoader) -> _ContextMemo:
    memo: _ContextMemo = loader.cache.setdefault("processed_contexts", _ContextMemo())
    return memo


def _resolver(loader: DocumentLoader) -> ContextResolver:
    if "resolver_cache" not in loader.cache:
        loader.cache["resolver_cache"] = LRUCache(maxsize=MAX_CACHED_CONTEXTS)
    return ContextResolver(loader.cache["resolver_cache"], loader)


def _own_error(exc: BaseException) -> DocumentRefused | CanonicalizationError | None:
    """Our own error somewhere in pyld's chain of causes, if it raised one of ours."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DocumentRefused | CanonicalizationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _innermost_message(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _document_json(document: Any) -> str:
    if not isinstance(document, dict):
        raise CanonicalizationError(f"expected a JSON object, got {type(document).__name__}")
    try:
        # Default separators: the size limit counts the bytes as the page counts them (sorting changes no length).
        text = json.dumps(document, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError) as exc:
        raise CanonicalizationError(f"document is not JSON: {exc}") from None
    size = len(text.encode())
    if size > MAX_DOCUMENT_BYTES:
        raise CanonicalizationError(f"document is {size} bytes, more than the {MAX_DOCUMENT_BYTES} allowed")
    _refuse_free_floating_list(document)
    return text


def to_dataset(document: dict[str, Any], loader: DocumentLoader | None = None) -> Any:
    """The RDF dataset of a JSON-LD document, in pyld's form, after checking size and safe-mode rules."""
    _document_json(document)
    return _to_dataset(document, loader or shipped_loader())


def _to_dataset(document: dict[str, Any], loader: DocumentLoader) -> Any:
    options = {"documentLoader": loader, "contextResolver": _resolver(loader), "base": None}
    processor = _Processor(_memo(loader))
    try:
        expanded = processor.expand(document, options)
        _refuse_relative(expanded)
        dataset = processor.expanded_to_rdf(expanded, options)
    except (jsonld.JsonLdError, TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        own = _own_error(exc)
        if own is not None:
            raise own from None
        raise CanonicalizationError(f"not valid JSON-LD: {_innermost_message(exc)}") from None
    _check_dataset(dataset)
    return dataset


def _check_dataset(dataset: Any) -> None:
    quads = sum(len(triples) for triples in dataset.values())
    if quads > MAX_QUADS:
        raise CanonicalizationError(f"document expands to {quads} quads, more than the {MAX_QUADS} allowed")
    blank_nodes = {
        term["value"]
        for triples in dataset.values()
        for triple in triples
        for term in (triple["subject"], triple["object"])
        if term["type"] == "blank node"
    }
    blank_nodes.update(name for name in dataset if name.startswith("_:"))
    for triples in dataset.values():
        for triple in triples:
            obj = triple["object"]
            found = UNESCAPED_CONTROL.search(obj["value"]) if obj["type"] == "literal" else None
            if found:
                raise CanonicalizationError(
                    f"a value holds control character U+{ord(found.group()):04X}, which credledger does not sign"
                )
    if len(blank_nodes) > MAX_BLANK_NODES:
        raise CanonicalizationError(
            f"document has {len(blank_nodes)} blank nodes, more than the {MAX_BLANK_NODES} allowed"
        )


def canonicalize(document: dict[str, Any], loader: DocumentLoader | None = None) -> str:
    """RDFC-1.0 canonical N-Quads of a JSON-LD document, loading contexts only through `loader`.

    The result is a function of the document's JSON value and the loader, so the loader remembers the last
    `MAX_CANONICAL_FORMS` (by SHA-256 of the document's sorted JSON text); refusals are not remembered."""
    loader = loader or shipped_loader()
    key = hashlib.sha256(_document_json(document).encode()).digest()
    forms = loader.cache.setdefault("canonical_forms", {})
    found: str | None = forms.get(key)
    if found is None:
        found = _canonicalize_dataset(_to_dataset(document, loader))
        if len(found) <= MAX_REMEMBERED_FORM_CHARS:
            if len(forms) >= MAX_CANONICAL_FORMS:
                forms.clear()
            forms[key] = found
    return found


def _canonicalize_dataset(dataset: Any) -> str:
    try:
        return str(_BoundedURDNA2015().main(dataset, {"format": NQUADS}))
    except _WorkLimitExceeded as exc:
        raise CanonicalizationError(f"canonicalization work limit reached: {exc}") from None


def canonicalize_nquads(nquads: str) -> str:
    """RDFC-1.0 canonical form of an N-Quads dataset (used to run the W3C rdf-canon test suite).

    pyld's N-Quads parser does not decode ``\\u``/``\\U`` escapes (UCHAR), so input holding one is refused.
    """
    found = UCHAR.search(nquads)
    if found:
        raise CanonicalizationError(f"N-Quads escape {found.group()!r} is not supported")
    try:
        dataset = jsonld.JsonLdProcessor.parse_nquads(nquads)
    except (jsonld.JsonLdError, ValueError, KeyError) as exc:
        raise CanonicalizationError(f"not valid N-Quads: {_innermost_message(exc)}") from None
    _check_dataset(dataset)
    return _canonicalize_dataset(dataset)
