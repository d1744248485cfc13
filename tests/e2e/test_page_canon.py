"""The page's own JSON-LD and RDFC-1.0 (jsonld.js, rdfc.js) agree byte for byte with the published vectors and with
ledger/vc/canon.py (pyld), refuse what canon.py refuses in the same words, and verify eddsa-rdfc-2022 proofs
(dataintegrity.js) -- run in headless Chromium, on the scripts a node serves.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from credledger.ledger.genesis import genesis_json
from credledger.ledger.state import MemberRecord
from credledger.ledger.vc.canon import canonicalize, canonicalize_nquads
from credledger.ledger.vc.did import verification_method_id
from credledger.ledger.vc.errors import CanonicalizationError, DocumentRefused
from credledger.ledger.vc.issuing import prepare_credential, sign_issued
from credledger.ledger.vc.loader import CREDENTIALS_V2, OB_V3P0, shipped_loader
from credledger.ledger.vc.members import member_status_list
from credledger.ledger.vc.multikey import decode_public_key
from credledger.ledger.vc.proof import sign_credential
from credledger.node.api.page import CONTEXTS_PATH, page_routes
from tests.conftest import VECTORS
from tests.e2e.cdp import Tab, chromium
from tests.factories import make_network
from tests.unit.test_vc_canon import EVAL_TESTS, EXAMPLES_V2, NEGATIVE_TESTS, RDF_CANON, examples_loader

EDDSA = VECTORS / "vc-di-eddsa"
OB = VECTORS / "ob-v3p0"


def js(value: Any) -> str:
    """A JavaScript expression for a JSON value, carried as base64 so no quoting can go wrong."""
    encoded = base64.b64encode(json.dumps(value).encode()).decode()
    return f'JSON.parse(new TextDecoder().decode(Uint8Array.from(atob("{encoded}"), (c) => c.charCodeAt(0))))'


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Tab]:
    app = web.Application()
    app.add_routes(page_routes(genesis_json(make_network(1).genesis)))
    async with TestServer(app, host="127.0.0.1", port=0) as server, chromium(tmp_path / "profile") as browser:
        tab = await browser.new_tab()
        await tab.navigate(str(server.make_url("/")))
        await tab.evaluate(
            "DATA_INTEGRITY.shippedContexts().then((c) => { window.CONTEXTS = c;"
            f" window.WITH_EXAMPLES = {{...c, [{json.dumps(EXAMPLES_V2)}]: {js(_examples_context())}}}; }})"
        )
        yield tab


def _examples_context() -> Any:
    return json.loads((EDDSA / "credentials-examples-v2.jsonld").read_text())


async def page_canonical(tab: Tab, document: Any, *, examples: bool = False) -> dict[str, str]:
    """{"ok": canonical N-Quads} or {"error": message} from the page."""
    documents = "WITH_EXAMPLES" if examples else "CONTEXTS"
    return await tab.evaluate(
        f"(() => {{ try {{ return {{ok: JSONLD.canonicalize({js(document)}, {documents})}}; }}"
        " catch (e) { return {error: e.message, kind: e.constructor.name}; } })()"
    )


def library_canonical(document: Any, *, examples: bool = False) -> dict[str, str]:
    try:
        return {"ok": canonicalize(document, examples_loader() if examples else shipped_loader())}
    except (CanonicalizationError, DocumentRefused) as exc:
        return {"error": str(exc)}


async def page_refusal(tab: Tab, nquads: str) -> str | None:
    """Why the page refuses to canonicalize `nquads` (None if it does not refuse)."""
    answer: str | None = await tab.evaluate(
        f"(() => {{ try {{ RDFC.canonicalizeNQuads({js(nquads)}); return null; }}"
        " catch (e) { return e.message; } })()"
    )
    return answer


async def test_the_page_produces_every_w3c_rdf_canon_result_byte_for_byte(page: Tab) -> None:
    results = {}
    for entry in EVAL_TESTS:
        given = (RDF_CANON / entry["action"]).read_text()
        results[entry["id"]] = await page.evaluate(f"RDFC.canonicalizeNQuads({js(given)})")
    wrong = [
        name
        for name, entry in zip(results, EVAL_TESTS, strict=True)
        if results[name] != (RDF_CANON / entry["result"]).read_text()
    ]
    assert wrong == [] and len(results) == len(EVAL_TESTS) > 60
    assert page.errors() == []


async def test_the_page_stops_poison_graphs_at_canon_py_s_work_limit(page: Tab) -> None:
    assert NEGATIVE_TESTS
    for entry in NEGATIVE_TESTS:
        message = await page_refusal(page, (RDF_CANON / entry["action"]).read_text())
        assert message is not None and message.startswith("canonicalization work limit reached: "), entry["id"]


async def test_the_page_refuses_n_quads_escapes_as_canon_py_does(page: Tab) -> None:
    given = (RDF_CANON / "rdfc10" / "test060-in.nq").read_text()
    with pytest.raises(CanonicalizationError) as refused:
        canonicalize_nquads(given)
    assert await page_refusal(page, given) == str(refused.value)


def signed_badge(name: str = "Marine Biology, BSc") -> dict[str, Any]:
    """An Open Badges 3.0 credential signed in-test exactly as `credledger issue --sign` signs it."""
    network = make_network(1)
    member = MemberRecord("m0.test", "M0", 1, b"\x01" * 32, True, 0, (), "did:web:m0.test")
    unsigned = {
        "@context": [CREDENTIALS_V2, OB_V3P0],
        "type": ["VerifiableCredential", "OpenBadgeCredential"],
        "name": name,
        "issuer": {"type": ["Profile"], "name": "M0 University", "url": "https://m0.test"},
        "credentialSubject": {
            "type": ["AchievementSubject"],
            "achievement": {
                "id": "urn:uuid:4f1c2b9e-1d1e-4d2b-9a51-2b3c4d5e6f70",
                "type": ["Achievement"],
                "name": name,
                "description": 'Ünïcödé, "quotes", tabs\tand\nnew lines',
                "criteria": {"narrative": "Passed every module."},
                "creditsAvailable": 180,
            },
        },
    }
    now = int(time.time() * 1000)
    return sign_issued(prepare_credential(unsigned, member, 0, 4242, now), member, network["m0.test"].issuer, now)


def signed_status_list() -> dict[str, Any]:
    """A member's revocation list as its node signs and publishes it (`status.publish`)."""
    network = make_network(1)
    member = MemberRecord("m0.test", "M0", 1, b"\x01" * 32, True, 0, (), "did:web:m0.test")
    bits = bytearray(16_384)
    bits[530] = 0x20
    now = int(time.time() * 1000)
    unsigned = member_status_list(member, 0, "revocation", bytes(bits), valid_from_ms=now, validity_ms=86_400_000)
    key = network["m0.test"].issuer
    return sign_credential(unsigned, key, verification_method_id(member.did, key.key_id), now)


def example_documents() -> dict[str, tuple[Any, bool]]:
    """Every credential the project ships as an example or signs, as a document and as its proof configuration."""
    ob = json.loads((OB / "signed.json").read_text())
    alumni = json.loads((EDDSA / "eddsa-rdfc-2022" / "signedDataInt.json").read_text())
    badge = signed_badge()
    status_list = signed_status_list()
    documents: dict[str, tuple[Any, bool]] = {
        "status list": (json.loads((VECTORS / "bitstring-status-list" / "example-credential.json").read_text()), False),
        "alumni (vc-di-eddsa)": (json.loads((EDDSA / "unsigned.json").read_text()), True),
    }
    for name, signed, examples in (
        ("1EdTech badge", ob, False),
        ("alumni signed", alumni, True),
        ("our badge", badge, False),
        ("our status list", status_list, False),
    ):
        proof = signed["proof"]
        documents[name] = ({k: v for k, v in signed.items() if k != "proof"}, examples)
        config = {k: v for k, v in proof.items() if k != "proofValue"}
        documents[f"{name} proof configuration"] = ({**config, "@context": signed["@context"]}, examples)
    return documents


async def test_the_page_canonicalizes_every_example_credential_as_pyld_does(page: Tab) -> None:
    for name, (document, examples) in example_documents().items():
        expected = library_canonical(document, examples=examples)
        assert "ok" in expected, (name, expected)
        assert await page_canonical(page, document, examples=examples) == expected, name


async def test_the_page_matches_the_published_canonical_forms(page: Tab) -> None:
    ob = json.loads((OB / "signed.json").read_text())
    proof = {k: v for k, v in ob.pop("proof").items() if k != "proofValue"}
    assert (await page_canonical(page, ob))["ok"] == (OB / "document-canon.txt").read_text()
    config = {**proof, "@context": ob["@context"]}
    assert (await page_canonical(page, config))["ok"] == (OB / "proof-canon.txt").read_text()
    alumni = json.loads((EDDSA / "unsigned.json").read_text())
    expected = (EDDSA / "eddsa-rdfc-2022" / "canonDocDataInt.txt").read_text()
    assert (await page_canonical(page, alumni, examples=True))["ok"] == expected
    alumni_config = json.loads((EDDSA / "eddsa-rdfc-2022" / "proofConfigDataInt.json").read_text())
    expected = (EDDSA / "eddsa-rdfc-2022" / "proofCanonDataInt.txt").read_text()
    assert (await page_canonical(page, alumni_config, examples=True))["ok"] == expected


UNSAFE = {
    "undefined term": {"@context": [CREDENTIALS_V2], "type": "VerifiableCredential", "notInAnyContext": "changed"},
    "undefined type": {"@context": [CREDENTIALS_V2], "id": "urn:x", "type": ["VerifiableCredential", "MadeUpType"]},
    "relative id": {"@context": [CREDENTIALS_V2], "id": "a/relative/path", "type": "VerifiableCredential"},
    "relative issuer": {"@context": [CREDENTIALS_V2], "id": "urn:x", "issuer": "a/relative/path"},
    "context not shipped": {
        "@context": [CREDENTIALS_V2, "https://contexts.example/evil"],
        "type": "VerifiableCredential",
    },
    "JSON literal": {
        "@context": [CREDENTIALS_V2],
        "id": "urn:x",
        "type": ["VerifiableCredential", "JsonSchemaCredential"],
        "credentialSubject": {"type": "JsonSchema", "jsonSchema": {"a": 1}},
    },
    "control character": {"@context": [CREDENTIALS_V2], "type": "VerifiableCredential", "name": "a\x0bb"},
    "too many blank nodes": {"@context": {"p": "https://p.example/p"}, "p": [{"p": str(i)} for i in range(1_001)]},
    "too large": {"@context": [CREDENTIALS_V2], "name": "x" * 262_144},
    "undefined term in a badge": {**signed_badge(), "notInAnyContext": 1},
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
async def test_the_page_refuses_what_canon_py_refuses_in_the_same_words(page: Tab, case: str) -> None:
    document = UNSAFE[case]
    expected = library_canonical(document)
    assert "error" in expected, expected
    answer = await page_canonical(page, document)
    assert answer.get("error") == expected["error"], answer
    assert answer["kind"] in ("JsonLdError", "RdfError")


async def test_the_page_and_pyld_agree_on_numbers_lists_graphs_and_languages(page: Tab) -> None:
    document = {
        "@context": {
            "p": "https://e.example/p",
            "l": {"@id": "https://e.example/l", "@container": "@list"},
            "g": {"@id": "https://e.example/g", "@container": "@graph"},
            "lang": {"@id": "https://e.example/lang", "@container": "@language"},
            "t": {"@id": "https://e.example/t", "@type": "https://e.example/T"},
            "@language": "EN-gb",
        },
        "@id": "urn:x",
        "p": [1.5, 0.1, 1e30, True, 5, 1.0, 2**53, -3, 1e-7, 1e21, 123456.789, "s", {"@value": "x", "@language": "fr"}],
        "l": [1, 2, {"p": "a"}],
        "g": {"p": "in a graph"},
        "lang": {"en": "hi", "FR": ["salut", "coucou"]},
        "t": ["typed", 7, 2.5],
    }
    assert await page_canonical(page, document) == library_canonical(document)


async def test_the_page_s_sha_256_is_fips_180_4_s(page: Tab) -> None:
    for size in (0, 1, 55, 56, 63, 64, 65, 119, 1000):
        data = os.urandom(size)
        encoded = base64.b64encode(data).decode()
        answer = await page.evaluate(
            f'RDFC.hex(RDFC.sha256Bytes(Uint8Array.from(atob("{encoded}"), (c) => c.charCodeAt(0))))'
        )
        assert answer == hashlib.sha256(data).hexdigest(), size


async def verify_in_page(
    tab: Tab, document: Any, public_key: bytes, *, issuer_check: bool, examples: bool = False
) -> Any:
    function = "verifyCredential" if issuer_check else "verifyProof"
    key = base64.b64encode(public_key).decode()
    return await tab.evaluate(
        f"DATA_INTEGRITY.{function}({js(document)}, () => Uint8Array.from(atob('{key}'), (c) => c.charCodeAt(0)),"
        f" {'WITH_EXAMPLES' if examples else 'CONTEXTS'})"
        ".then((r) => ({ok: r.verificationMethod}), (e) => ({failed: e.check, detail: e.detail}))"
    )


async def test_the_page_verifies_the_published_eddsa_rdfc_2022_proofs_and_catches_a_changed_byte(page: Tab) -> None:
    ob = json.loads((OB / "signed.json").read_text())
    ob_key = bytes.fromhex(json.loads((OB / "vector.json").read_text())["publicKeyHex"])
    assert (await verify_in_page(page, ob, ob_key, issuer_check=True))["ok"] == ob["proof"]["verificationMethod"]
    alumni = json.loads((EDDSA / "eddsa-rdfc-2022" / "signedDataInt.json").read_text())
    alumni_key = decode_public_key(json.loads((EDDSA / "keyPair.json").read_text())["publicKeyMultibase"])
    assert "ok" in await verify_in_page(page, alumni, alumni_key, issuer_check=False, examples=True)

    ob["name"] = ob["name"] + "!"
    answer = await verify_in_page(page, ob, ob_key, issuer_check=True)
    assert answer["failed"] == "signature" and "does not verify" in answer["detail"]
    assert page.errors() == []


async def test_the_node_serves_exactly_the_shipped_contexts_to_the_page(page: Tab) -> None:
    served = await page.evaluate(f"fetch({json.dumps(CONTEXTS_PATH)}).then((r) => r.json())")
    assert served == dict(shipped_loader().documents)


async def test_the_page_reads_long_integers_exactly_as_python_does(page: Tab) -> None:
    text = (
        '{"@context": {"p": "https://e.example/p"}, "@id": "urn:x",'
        ' "p": [12345678901234567890, -98765432109876543210987, 9007199254740993]}'
    )
    answer = await page.evaluate(f"JSONLD.canonicalize(JSONLD.parseJson({json.dumps(text)}), CONTEXTS)")
    assert answer == canonicalize(json.loads(text))
    assert '"12345678901234567890"^^' in answer and '"9007199254740993"^^' in answer


ODD_BUT_VALID = {
    "a proof that is a bare value": {
        "@context": [CREDENTIALS_V2],
        "id": "urn:x",
        "type": "VerifiableCredential",
        "proof": True,
    },
    "an @index on a node": {"@context": [CREDENTIALS_V2], "id": "urn:x", "type": "VerifiableCredential", "@index": "i"},
    "a truthy @protected": {
        "@context": [CREDENTIALS_V2, {"@protected": {"x": 1}, "t": "urn:t"}],
        "id": "urn:x",
        "t": 1,
    },
    "a language-tagged default": {
        "@context": [{"@language": "EN-gb"}, CREDENTIALS_V2],
        "id": "urn:x",
        "type": "VerifiableCredential",
        "name": "n",
    },
}


@pytest.mark.parametrize("case", sorted(ODD_BUT_VALID))
async def test_the_page_agrees_with_pyld_on_odd_documents_found_by_differential_fuzzing(page: Tab, case: str) -> None:
    document = ODD_BUT_VALID[case]
    assert await page_canonical(page, document) == library_canonical(document)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"@context": [CREDENTIALS_V2], "id": "urn:x", "@graph": True}, "invalid @graph value"),
        (
            {
                "@context": [CREDENTIALS_V2],
                "type": "VerifiableCredential",
                "credentialSubject": {"@included": {"@list": [1]}},
            },
            "@included must expand to node",
        ),
        # JSON-LD ignores a list outside a property (pyld drops its whole node, and signs nothing): refused.
        ({"@context": [CREDENTIALS_V2], "id": "urn:x", "type": "VerifiableCredential", "@list": []}, "@list outside"),
    ],
)
async def test_the_page_refuses_malformed_keywords_with_a_message_not_a_stack(
    page: Tab, document: dict[str, Any], message: str
) -> None:
    answer = await page_canonical(page, document)
    assert answer["kind"] == "JsonLdError" and message in answer["error"], answer


#: What the mutator writes into credentials: values, keys and contexts of the kinds that trip JSON-LD processors.
FUZZ_VALUES: list[Any] = [
    None, True, 1, 1.5, -2, 0.1, 1e20, "x", "urn:a", "did:web:x", "relative", "_:b1", [], {}, ["a"],
    {"id": "urn:z"}, {"@value": "v"}, {"@value": "v", "@language": "EN"}, {"@id": "urn:q"}, {"@list": [1, 2]},
    {"@set": ["a"]}, {"@type": "Profile"}, {"type": "Achievement", "name": "n"}, "@id",
    {"@value": 1, "@type": "urn:t"}, {"@context": {"foo": "urn:foo#"}, "foo": 1}, {"@graph": [{"id": "urn:g"}]},
    "OpenBadgeCredential", ["VerifiableCredential", "Achievement"],
]  # fmt: skip
FUZZ_KEYS = [
    "name", "description", "id", "type", "@type", "@id", "@value", "@language", "@context", "@graph", "@set",
    "@included", "@index", "image", "achievement", "credentialSubject", "issuer", "validFrom", "foo",
    "schema:name", "urn:x:prop", "alignment", "result", "evidence",
]  # fmt: skip
FUZZ_CONTEXTS: list[Any] = [
    CREDENTIALS_V2, OB_V3P0, "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.1.json",
    "https://w3id.org/security/data-integrity/v2", "https://www.w3.org/ns/did/v1", {"@vocab": "urn:vocab#"},
    {"name": "urn:evil"}, {"@protected": True, "x": "urn:x"}, {"schema": "https://schema.org/"},
    {"@language": "fr"}, {"l": {"@id": "urn:l", "@container": "@list"}}, None,
]  # fmt: skip


def mutated(document: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """`document` with one to three random edits: an entry added, removed or replaced, or other contexts."""
    document = copy.deepcopy(document)
    for _ in range(rng.randint(1, 3)):
        found: list[tuple[tuple[Any, ...], Any]] = []
        work: list[tuple[tuple[Any, ...], Any]] = [((), document)]
        while work:
            path, node = work.pop()
            found.append((path, node))
            if isinstance(node, dict):
                work.extend(((*path, k), v) for k, v in node.items())
            elif isinstance(node, list):
                work.extend(((*path, i), v) for i, v in enumerate(node))
        path, node = rng.choice(found)
        roll = rng.random()
        if isinstance(node, dict) and roll < 0.4:
            node[rng.choice(FUZZ_KEYS)] = copy.deepcopy(rng.choice(FUZZ_VALUES))
        elif isinstance(node, dict) and node and roll < 0.6:
            del node[rng.choice(list(node))]
        elif isinstance(node, list) and roll < 0.6:
            node.append(copy.deepcopy(rng.choice(FUZZ_VALUES)))
        elif path and roll < 0.8:
            parent: Any = document
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = copy.deepcopy(rng.choice(FUZZ_VALUES))
        else:
            document["@context"] = copy.deepcopy(rng.sample(FUZZ_CONTEXTS, rng.randint(1, 3)))
    return document


async def test_the_page_and_pyld_agree_on_hundreds_of_mutated_credentials(page: Tab) -> None:
    """Differential testing: where pyld accepts a document the page gives the same bytes or refuses it by name
    (it is stricter where JSON-LD would drop an entry silently); it never accepts what pyld refuses, never throws
    anything but its own errors."""
    rng = random.Random(20261126)
    seeds = [
        {k: v for k, v in signed_badge().items() if k != "proof"},
        {k: v for k, v in json.loads((OB / "signed.json").read_text()).items() if k != "proof"},
        json.loads((VECTORS / "bitstring-status-list" / "example-credential.json").read_text()),
    ]
    agreed = refused_by_both = 0
    for _ in range(300):
        document = mutated(rng.choice(seeds), rng)
        library = library_canonical(document)
        answer = await page_canonical(page, document)
        assert answer.get("kind") in (None, "JsonLdError", "RdfError"), (answer, document)
        if "ok" in answer:
            assert answer == library, document
            agreed += 1
        elif "error" in library:
            refused_by_both += 1
    assert agreed > 30 and refused_by_both > 100
    assert page.errors() == []
