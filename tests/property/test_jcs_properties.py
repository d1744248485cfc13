"""The standard-library fast path of RFC 8785 canonicalisation gives byte for byte what the full canonicaliser
gives, or steps aside: random JSON documents (any text, numbers, nesting), serialised in random styles."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from credledger.ledger.jcs import _plain_canonical, _serialise, parse

_text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(["\ud800", "\ue000", "😀", "\x7f\x1f"])
_number = st.integers(-(2**60), 2**60) | st.floats(allow_nan=False, allow_infinity=False)
_scalar = st.none() | st.booleans() | _number | _text
_json: st.SearchStrategy[Any] = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_text, inner, max_size=5),
    max_leaves=25,
)


@settings(max_examples=500, deadline=None)
@given(_json, st.booleans(), st.sampled_from([None, 1, 3]))
def test_the_fast_path_agrees_with_the_full_canonicaliser_or_steps_aside(
    value: Any, ascii_only: bool, indent: int | None
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent)
    fast = _plain_canonical(text)
    if fast is not None:
        assert fast == _serialise(parse(text))


@given(st.dictionaries(_text, st.integers(-(2**53), 2**53) | st.booleans() | st.none(), max_size=6))
def test_plain_documents_take_the_fast_path(value: dict[str, Any]) -> None:
    text = json.dumps(value)
    plain_names = all(name.isascii() or max(name) < "\ud800" for name in value)
    if plain_names and not any("\ud800" <= c <= "\udfff" for name in value for c in name):
        assert _plain_canonical(text) == _serialise(parse(text))


def test_repeated_names_and_fractions_step_aside() -> None:
    assert _plain_canonical('{"a": 1, "a": 2}') is None
    assert _plain_canonical('{"a": 1.5}') is None
    assert _plain_canonical('{"a": 9007199254740993}') is None
    assert _plain_canonical('{"a": "\\ud800"}') is None
    assert _plain_canonical('{"\\ue000": 1, "\\ud83d\\ude00": 2}') is None
    assert _plain_canonical('{"b": [1, true, null], "a": "x\\n\\u0001"}') == b'{"a":"x\\n\\u0001","b":[1,true,null]}'
