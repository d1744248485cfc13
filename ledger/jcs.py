"""RFC 8785 (JSON Canonicalization Scheme) for credential digests, parsed and written without recursion.

Theory of operation: `canonical_json` reads JSON text (RFC 8259) token by token with one regular expression and
an explicit stack of open containers, builds a tree of dicts, lists, strings, floats, booleans and None, and
writes it back with a second explicit stack -- so a document nested 5,000 deep canonicalises like a shallow one
(as the reference implementations and the browser's JSON do), bounded only by the file size the caller allows.

Text that breaks the JSON grammar raises `NotJson` (the caller hashes such a file as bytes). JSON that RFC 8785
cannot canonicalise -- it requires I-JSON (RFC 7493) -- raises `NotCanonicalJson` with a message the
verification page (node/api/static/ledger.js, `canonicalJson`) words identically: a repeated member name, a number
beyond the range of an IEEE 754 double (JCS reads every number as a double; a long integer within the range is
rounded exactly as JavaScript rounds it), or a string or member name holding a lone surrogate.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import rfc8785

from credledger.ledger.errors import DecodeError

#: What every refusal message starts with (the page's words are the same).
REFUSAL = "the JSON cannot be canonicalised (RFC 8785)"

_TOKEN = re.compile(
    r'[ \t\n\r]*(?:(?P<string>"[^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*")'
    r"|(?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<literal>true|false|null)|(?P<punct>[\[\]{},:]))"
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}
#: Longest number text quoted whole in a message.
_QUOTE_LIMIT = 24

# Parser states: what the next token may be.
_VALUE, _FIRST_VALUE, _FIRST_NAME, _NAME, _COLON, _AFTER, _END = range(7)


class NotJson(ValueError):
    """The text does not follow the JSON grammar (RFC 8259)."""


class NotCanonicalJson(DecodeError):
    """JSON that RFC 8785 refuses to canonicalise; the message names what and where."""


def canonical_json(text: str) -> bytes:
    """The RFC 8785 canonical form (UTF-8) of the JSON `text`."""
    fast = _plain_canonical(text)
    return fast if fast is not None else _serialise(parse(text))


class _NotPlain(Exception):
    """The document needs the full canonicalisation (or its precise refusal)."""


#: Integers a double holds exactly: within it, JCS writes an integer as Python's json does.
_EXACT_INT = 2**53


def _plain_int(token: str) -> int:
    value = int(token)
    if -_EXACT_INT <= value <= _EXACT_INT:
        return value
    raise _NotPlain


def _plain_float(_token: str) -> float:
    raise _NotPlain  # JCS writes numbers as ECMAScript does; the full path formats them


def _plain_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _NotPlain  # a repeated name: refused, with its place, by the full path
    for name in result:
        if not name.isascii() and max(name) >= "\ud800":
            raise _NotPlain  # sorting by code point would differ from UTF-16 order
    return result


def _plain_canonical(text: str) -> bytes | None:
    """The canonical form by the standard library's (C) JSON codec, for the common document it gets exactly right:
    no fractions or exponents, integers a double holds exactly, no repeated names, no lone surrogates, and member
    names whose code-point order is their UTF-16 order. Then RFC 8785's output is Python's sorted, compact JSON
    without ASCII escaping (the same string escapes: \\b \\t \\n \\f \\r, other controls as lowercase \\u00xx).
    None for any other document, which the full parser takes (and refuses precisely when it must)."""
    try:
        value = json.loads(
            text,
            object_pairs_hook=_plain_object,
            parse_int=_plain_int,
            parse_float=_plain_float,
            parse_constant=_plain_float,
        )
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except (_NotPlain, ValueError, RecursionError):  # UnicodeEncodeError (a lone surrogate) is a ValueError
        return None


def parse(text: str) -> Any:
    """Parse JSON `text` into dicts, lists, str, float, bool and None, refusing what I-JSON forbids."""
    return _Parser(text).parse()


_Frame = tuple[dict[str, Any] | list[Any], list[str]]  # an open container and its pending member name
_PENDING = object()  # a handler's answer when no value was completed


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0
        self.stack: list[_Frame] = []
        self.root: Any = None

    def parse(self) -> Any:
        state = _VALUE
        while state != _END:
            match = _TOKEN.match(self.text, self.position)
            if match is None:
                raise NotJson(f"unexpected character at offset {self.position}")
            self.position = match.end()
            kind = match.lastgroup or ""
            lexeme = match.group(kind)
            if state == _COLON:
                if lexeme != ":":
                    raise NotJson(f"expected ':' before offset {self.position}")
                state = _VALUE
                continue
            if state == _AFTER:
                value, state = self._after_value(lexeme)
            elif state in (_FIRST_NAME, _NAME):
                value, state = self._member_name(state, kind, lexeme)
            else:
                value, state = self._value(state, kind, lexeme)
            if value is not _PENDING:
                state = self._complete(value)
        if self.text[self.position :].strip(" \t\n\r"):
            raise NotJson(f"text after the JSON value at offset {self.position}")
        return self.root

    def _after_value(self, lexeme: str) -> tuple[Any, int]:
        container = self.stack[-1][0]
        closer = "}" if isinstance(container, dict) else "]"
        if lexeme == ",":
            return _PENDING, _NAME if isinstance(container, dict) else _VALUE
        if lexeme != closer:
            raise NotJson(f"expected ',' or {closer!r} before offset {self.position}")
        return self.stack.pop()[0], _AFTER

    def _member_name(self, state: int, kind: str, lexeme: str) -> tuple[Any, int]:
        if state == _FIRST_NAME and lexeme == "}":
            return self.stack.pop()[0], _AFTER
        if kind != "string":
            raise NotJson(f"expected a member name before offset {self.position}")
        name = _string(lexeme)
        lone = _SURROGATE.search(name)
        if lone:
            raise NotCanonicalJson(
                f"{REFUSAL}: a member name in {_object_at(self.stack)} holds a lone surrogate "
                f"({_escape_unit(lone.group())}), which is not Unicode text"
            )
        if name in self.stack[-1][0]:
            raise NotCanonicalJson(f"{REFUSAL}: member name {_quote(name)} appears twice in {_object_at(self.stack)}")
        self.stack[-1][1].append(name)
        return _PENDING, _COLON

    def _value(self, state: int, kind: str, lexeme: str) -> tuple[Any, int]:
        if lexeme == "{":
            self.stack.append(({}, []))
            return _PENDING, _FIRST_NAME
        if lexeme == "[":
            self.stack.append(([], []))
            return _PENDING, _FIRST_VALUE
        if state == _FIRST_VALUE and lexeme == "]":
            return self.stack.pop()[0], _AFTER
        if kind == "string":
            value = _string(lexeme)
            lone = _SURROGATE.search(value)
            if lone:
                raise NotCanonicalJson(
                    f"{REFUSAL}: the string {_value_at(self.stack)} holds a lone surrogate "
                    f"({_escape_unit(lone.group())}), which is not Unicode text"
                )
            return value, _AFTER
        if kind == "number":
            number = float(lexeme)  # correctly rounded, as JavaScript's Number() rounds
            if not math.isfinite(number):
                raise NotCanonicalJson(
                    f"{REFUSAL}: the number {_abbreviate(lexeme)} {_value_at(self.stack)} is beyond the range of "
                    "an IEEE 754 double"
                )
            return number, _AFTER
        if kind == "literal":
            return _LITERALS[lexeme], _AFTER
        raise NotJson(f"expected a value before offset {self.position}")

    def _complete(self, value: Any) -> int:
        """Put a finished value in its container (or make it the root); the state that follows."""
        if not self.stack:
            self.root = value
            return _END
        parent, names = self.stack[-1]
        if isinstance(parent, dict):
            parent[names.pop()] = value
        else:
            parent.append(value)
        return _AFTER


def _string(token: str) -> str:
    value = json.loads(token)  # the token matched the JSON string grammar, so this cannot fail
    assert isinstance(value, str)
    return value


def _serialise(root: Any) -> bytes:
    out: list[bytes] = []
    work: list[Any] = [root]
    while work:
        item = work.pop()
        if isinstance(item, _Emit):
            out.append(item.text)
        elif isinstance(item, dict):
            names = sorted(item, key=_utf16_order)
            work.append(_CLOSE_OBJECT)
            for i in range(len(names) - 1, -1, -1):
                work.append(item[names[i]])
                work.append(_Emit(rfc8785.dumps(names[i]) + b":"))
                if i:
                    work.append(_COMMA)
            out.append(b"{")
        elif isinstance(item, list):
            work.append(_CLOSE_ARRAY)
            for i in range(len(item) - 1, -1, -1):
                work.append(item[i])
                if i:
                    work.append(_COMMA)
            out.append(b"[")
        else:
            out.append(rfc8785.dumps(item))
    return b"".join(out)


class _Emit:
    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


_COMMA = _Emit(b",")
_CLOSE_OBJECT = _Emit(b"}")
_CLOSE_ARRAY = _Emit(b"]")


def _utf16_order(name: str) -> bytes:
    # RFC 8785 §3.2.3 sorts member names by their UTF-16 code units; big-endian bytes compare the same way.
    return name.encode("utf-16-be")


# --- where, in the page's words ------------------------------------------------------------------------------


def _pointer(stack: list[_Frame]) -> str:
    """The RFC 6901 JSON Pointer of the innermost open container."""
    parts = []
    for depth in range(len(stack) - 1):
        container, names = stack[depth]
        key = names[-1] if isinstance(container, dict) else str(len(container))
        parts.append("/" + key.replace("~", "~0").replace("/", "~1"))
    return "".join(parts)


def _object_at(stack: list[_Frame]) -> str:
    pointer = _pointer(stack)
    return f"the object at {pointer}" if pointer else "the top-level object"


def _value_at(stack: list[_Frame]) -> str:
    if not stack:
        return "at the top level"
    container, names = stack[-1]
    key = names[-1] if isinstance(container, dict) else str(len(container))
    return "at " + _pointer(stack) + "/" + key.replace("~", "~0").replace("/", "~1")


def _quote(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _escape_unit(unit: str) -> str:
    return f"\\u{ord(unit):04x}"


def _abbreviate(token: str) -> str:
    return token if len(token) <= _QUOTE_LIMIT else f"{token[:20]}\u2026 ({len(token)} characters)"
