"""RFC 8785 canonicalisation against the reference test data, and the shared corpus of tricky documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from credledger.ledger.digest import document_digest
from credledger.ledger.errors import DecodeError
from credledger.ledger.jcs import NotJson, canonical_json

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "jcs"
REFERENCE = sorted(p.name for p in (VECTORS / "rfc8785" / "input").iterdir())
EXPECTED: dict[str, dict[str, str]] = json.loads((VECTORS / "expected.json").read_text(encoding="utf-8"))


def test_the_corpus_covers_every_file_and_the_reference_data_is_there() -> None:
    assert sorted(EXPECTED) == sorted(p.name for p in (VECTORS / "tricky").iterdir())
    assert REFERENCE == ["arrays.json", "french.json", "structures.json", "unicode.json", "values.json", "weird.json"]


@pytest.mark.parametrize("name", REFERENCE)
def test_canonical_form_matches_the_rfc_8785_reference_output(name: str) -> None:
    text = (VECTORS / "rfc8785" / "input" / name).read_text(encoding="utf-8")
    assert canonical_json(text) == (VECTORS / "rfc8785" / "output" / name).read_bytes()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_library_gives_each_tricky_document_its_expected_digest_or_refusal(name: str) -> None:
    data = (VECTORS / "tricky" / name).read_bytes()
    expected = EXPECTED[name]
    if "refused" in expected:
        with pytest.raises(DecodeError) as refused:
            document_digest(data)
        assert str(refused.value) == expected["refused"]
    else:
        result = document_digest(data)
        assert (result.method.value, result.digest.hex()) == (expected["method"], expected["sha256"])


@pytest.mark.parametrize(
    ("text", "where"),
    [("[1,]", "expected a value before offset 4"), ('{"a" 1}', "expected ':'"), ("{} x", "text after the JSON")],
)
def test_text_that_breaks_the_json_grammar_is_not_json(text: str, where: str) -> None:
    with pytest.raises(NotJson, match=where):
        canonical_json(text)


def test_canonical_forms_of_numbers_follow_ecmascript() -> None:
    text = (VECTORS / "tricky" / "numbers-es6-forms.json").read_text(encoding="utf-8")
    assert canonical_json(text) == (
        b'{"n":[0,0,1e-7,0.000001,1e+21,100000000000000000000,1,5e-324,1.7976931348623157e+308,333333333.3333333,4.5]}'
    )


def test_member_names_sort_by_utf16_code_units_not_code_points() -> None:
    text = (VECTORS / "tricky" / "utf16-sort-order.json").read_text(encoding="utf-8")
    assert canonical_json(text) == '{"a":3,"\U00010000":2,"\ue000":1}'.encode()
