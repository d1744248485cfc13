"""Hypothesis strategies that turn valid inputs into hostile ones.

Random bytes rarely get past a decoder's first check, so most inputs start from a valid seed (tests/fuzz/corpus)
and change a little: flipped bits, bytes set to boundary values, bytes inserted, deleted, duplicated or cut off,
and -- for JSON formats -- one value anywhere in the document replaced by another JSON value of any type (strings
with non-ASCII characters, huge or negative numbers, fractions, nested lists, missing and extra fields).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

#: Byte values that sit on boundaries of msgpack type markers, UTF-8 and ASCII.
INTERESTING_BYTES = (0x00, 0x01, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC4, 0xD9, 0xDC, 0xFF)
#: Strings that have broken decoders before: non-ASCII where base64 or hex goes, separators, lookalike digits.
INTERESTING_TEXT = (
    "\u0084",
    "\u00e9",
    "\u0660\u0661",
    "\uff10",
    "\u2014 ",
    "\x00",
    "\n",
    "\n\n",
    " ",
    "+",
    "=",
    "AA==",
    "-1",
    "1e400",
    "9" * 30,
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(INTERESTING_TEXT)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@st.composite
def mutated_bytes(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """A seed with a few byte-level mutations."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        operation = draw(st.integers(min_value=0, max_value=6))
        at = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        if operation == 0 and data:
            data[at] ^= 1 << draw(st.integers(min_value=0, max_value=7))
        elif operation == 1 and data:
            data[at] = draw(st.sampled_from(INTERESTING_BYTES))
        elif operation == 2:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif operation == 3:
            del data[at : at + draw(st.integers(min_value=1, max_value=16))]
        elif operation == 4:
            del data[at:]
        elif operation == 5:
            end = min(len(data), at + draw(st.integers(min_value=1, max_value=64)))
            data[at:at] = data[at:end]
        else:
            text = draw(st.sampled_from(INTERESTING_TEXT)).encode()
            data[at : at + len(text)] = text
    return bytes(data)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: _replace(document[head], rest, new)}
    copy = list(document)
    copy[head] = _replace(copy[head], rest, new)
    return copy


def _delete(document: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1:
        if isinstance(document, dict):
            return {k: v for k, v in document.items() if k != path[0]}
        return [v for i, v in enumerate(document) if i != path[0]]
    head = path[0]
    if isinstance(document, dict):
        return {**document, head: _delete(document[head], path[1:])}
    copy = list(document)
    copy[head] = _delete(copy[head], path[1:])
    return copy


@st.composite
def mutated_json(draw: st.DrawFn, seeds: tuple[bytes, ...]) -> bytes:
    """A JSON seed with a few values replaced, removed or added, anywhere in the document."""
    document = json.loads(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(document)
        path = draw(st.sampled_from(paths))
        operation = draw(st.integers(min_value=0, max_value=2))
        if operation == 0 or not path:
            document = _replace(document, path, draw(json_values))
        elif operation == 1:
            document = _delete(document, path)
        else:
            parent = _paths(document)[0] if len(path) == 1 else path[:-1]
            target = document
            for step in parent:
                target = target[step]
            if isinstance(target, dict):
                document = _replace(document, parent, {**target, draw(st.text(max_size=12)): draw(json_values)})
            elif isinstance(target, list):
                document = _replace(document, parent, [*target, draw(json_values)])
    return json.dumps(document).encode()


def hostile(
    seeds: tuple[bytes, ...],
    *,
    json_seeds: bool,
    structured: Callable[[tuple[bytes, ...]], st.SearchStrategy[bytes]] | None = None,
) -> st.SearchStrategy[bytes]:
    """Inputs for a target: mostly mutated seeds, some raw bytes, and the seeds themselves."""
    options = [mutated_bytes(seeds), st.binary(max_size=512), st.sampled_from(seeds)]
    if json_seeds:
        options.insert(0, mutated_json(seeds))
    if structured is not None:
        options[:0] = [structured(seeds), structured(seeds)]
    return st.one_of(*options)
