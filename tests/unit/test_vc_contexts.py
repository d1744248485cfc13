from __future__ import annotations

import hashlib

import pytest
from pyld import jsonld

from credledger.ledger.vc.errors import DocumentRefused
from credledger.ledger.vc.loader import (
    CREDENTIALS_V2,
    DATA_INTEGRITY_V2,
    DID_V1,
    MULTIKEY_V1,
    SHIPPED_CONTEXTS,
    read_context,
    shipped_loader,
)

#: Digests the specifications publish (VC Data Model 2.0 §B.1; VC Data Integrity 1.0 §A.1).
PUBLISHED_DIGESTS = {
    CREDENTIALS_V2: "59955ced6697d61e03f2b2556febe5308ab16842846f5b586d7f1f7adec92734",
    DATA_INTEGRITY_V2: "67f21e6e33a6c14e5ccfd2fc7865f7474fb71a04af7e94136cb399dfac8ae8f4",
    MULTIKEY_V1: "ba2c182de2d92f7e47184bcca8fcf0beaee6d3986c527bf664c195bbc7c58597",
}
#: Digests of the copies recorded in ledger/vc/contexts/README.md, where no specification publishes one.
RECORDED_DIGESTS = {
    DID_V1: "62c1054bf404d6dd3a4b26b64f830fd72095f6a26edc4469908c94351352ce5f",
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.1.json": (
        "d582f3564282fb3b709136d28412e78e70b678b4dbc2f0221f67d84932748355"
    ),
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.2.json": (
        "00666ad080ba407687ed1846b7f5e7495f5019042b202a727de47c48a1755c53"
    ),
    "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json": (
        "ef2fa9c7846dce233cc166b43639027278be4ee44f00bb1d45c75de2dd0cd761"
    ),
}


@pytest.mark.parametrize("url", sorted(SHIPPED_CONTEXTS))
def test_shipped_context_bytes_match_the_published_or_recorded_digest(url: str) -> None:
    expected = PUBLISHED_DIGESTS.get(url) or RECORDED_DIGESTS[url]
    assert hashlib.sha256(read_context(url)).hexdigest() == expected


def test_every_shipped_context_has_a_digest_pinned() -> None:
    assert set(SHIPPED_CONTEXTS) == set(PUBLISHED_DIGESTS) | set(RECORDED_DIGESTS)


@pytest.mark.parametrize("url", sorted(SHIPPED_CONTEXTS))
def test_loader_serves_each_shipped_context_as_a_json_ld_context(url: str) -> None:
    loaded = shipped_loader()(url)
    assert loaded["documentUrl"] == url
    assert "@context" in loaded["document"]


def test_loader_refuses_a_url_it_does_not_ship_naming_it() -> None:
    with pytest.raises(DocumentRefused, match=r"https://evil\.example/ctx"):
        shipped_loader()("https://evil.example/ctx")


def test_loader_refuses_a_near_miss_of_a_shipped_url() -> None:
    with pytest.raises(DocumentRefused):
        shipped_loader()(CREDENTIALS_V2 + "/")


def test_loader_hands_out_copies_so_a_caller_cannot_change_a_shipped_context() -> None:
    first = shipped_loader()(CREDENTIALS_V2)["document"]
    first["@context"]["@protected"] = False
    assert shipped_loader()(CREDENTIALS_V2)["document"]["@context"]["@protected"] is True


def test_loader_with_documents_serves_extras_but_never_replaces_a_shipped_context() -> None:
    extra = shipped_loader().with_documents({"did:web:uni.example": {"id": "did:web:uni.example"}})
    assert extra("did:web:uni.example")["document"] == {"id": "did:web:uni.example"}
    with pytest.raises(DocumentRefused, match="replace a shipped context"):
        shipped_loader().with_documents({CREDENTIALS_V2: {"@context": {}}})


def test_expanding_a_credential_with_the_shipped_loader_needs_no_network() -> None:
    def no_network(url: str, options: object = None) -> None:
        raise AssertionError(f"pyld's default loader was asked for {url}")

    saved = jsonld.get_document_loader()
    jsonld.set_document_loader(no_network)
    try:
        expanded = jsonld.expand(
            {"@context": [CREDENTIALS_V2], "type": "VerifiableCredential"}, {"documentLoader": shipped_loader()}
        )
    finally:
        jsonld.set_document_loader(saved)
    assert expanded[0]["@type"] == ["https://www.w3.org/2018/credentials#VerifiableCredential"]


def test_loader_with_documents_refuses_a_document_that_is_not_json() -> None:
    with pytest.raises(DocumentRefused, match="is not JSON"):
        shipped_loader().with_documents({"did:web:uni.example": {"id": {1, 2}}})
