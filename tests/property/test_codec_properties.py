"""The compiled decoders accept exactly what the field-by-field reference decoders accept, decode it to the same
record, and refuse everything else with the same path and message (ledger/codec.py, "Every record's and tuple's
decoder is built twice").

Three sources of values, for every record type the ledger, the consensus and the node decode:
- every field of a valid record, in turn, one step past each of its bounds or of another type (where an inline
  check could be off by one), and the record's array cut short or one too long;
- values drawn by Hypothesis from the record's field types: valid, or with one field off, fields left out or one
  added at the end;
- real records of a small chain (events, blocks, consensus messages, evidence, handshakes) with one value
  anywhere inside replaced, or one array item dropped or repeated.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, NamedTuple, get_args, get_origin

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from credledger.consensus.proposer import ProposerSchedule
from credledger.consensus.safety import SafetyRecord
from credledger.ledger import codec
from credledger.ledger.block import Block, CertifiedBlock, Header
from credledger.ledger.catalogue import AchievementRecord
from credledger.ledger.codec import Range, Size
from credledger.ledger.errors import DecodeError
from credledger.ledger.events import Event
from credledger.ledger.genesis import Genesis
from credledger.ledger.state import CredentialRecord, IssuerKeyRecord, MemberRecord
from credledger.ledger.validators import ValidatorSet
from credledger.ledger.votes import Envelope, Evidence
from credledger.node.peers import EventBatch, Hello, Proof
from credledger.node.safetystore import StoredSafety
from tests.fuzz.corpus import corpus

TOP = (
    Event,
    CertifiedBlock,
    Block,
    Header,
    Envelope,
    Evidence,
    CredentialRecord,
    MemberRecord,
    IssuerKeyRecord,
    AchievementRecord,
    ValidatorSet,
    Genesis,
    EventBatch,
    SafetyRecord,
    StoredSafety,
    ProposerSchedule,
    Hello,
    Proof,
)

#: Longest array of plain values (ints, bytes, str) the shaped values build at its upper bound, and longest array
#: of records; an array bound above these is tried only at its lower end.
LONGEST = 256
LONGEST_OF_RECORDS = 4
#: Values of the wrong type for any field.
STRANGERS = (None, True, 0, -1, 2**64 - 1, b"", b"\x00" * 32, "", "m0.test", ())
STRANGE = st.sampled_from(STRANGERS)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Shaped values per record type (the altered real records take `SETTINGS`' count in all).
SHAPED_EXAMPLES = 100


def _records(tp: Any, found: dict[type, None]) -> None:
    """Every record class reachable from the type `tp`, in the order first met."""
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) in (tuple, typing.Union, types.UnionType):
        for arg in get_args(tp):
            if arg is not Ellipsis:
                _records(arg, found)
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp) and tp not in found:
        found[tp] = None
        hints = typing.get_type_hints(tp, include_extras=True)
        for f in dataclasses.fields(tp):
            if f.init:
                _records(hints[f.name], found)


def _all_records() -> list[type]:
    found: dict[type, None] = {}
    for tp in TOP:
        _records(tp, found)
    return list(found)


RECORDS = _all_records()


def _outcome(cls: type, raw: Any, *, reference: bool) -> tuple[str, Any]:
    try:
        return "decoded", codec.decode_value(cls, raw, reference=reference)
    except DecodeError as exc:
        return "refused", str(exc)


def _same_outcome(cls: type, raw: Any) -> None:
    compiled = _outcome(cls, raw, reference=False)
    assert compiled == _outcome(cls, raw, reference=True), raw
    if compiled[0] == "decoded":
        # What is accepted is exactly a canonical record: it encodes back to the values it came from.
        assert msgpack.unpackb(codec.encode(compiled[1]), use_list=False) == raw


class Values(NamedTuple):
    """Values for a field of one type: `valid` ones, within every bound (though a record's own checks may still
    refuse them), and `off` ones, each one step from valid: just past a bound, of another type, or a valid array
    with one item off."""

    valid: st.SearchStrategy[Any]
    off: st.SearchStrategy[Any]


def _lengths(bound: Size | None, longest: int) -> tuple[list[int], list[int]]:
    """Lengths within `bound` (its ends, where no longer than `longest`) and just outside it."""
    if bound is None:
        return [0, 1, 2], []
    inside = sorted({n for n in (bound.min, bound.min + 1, bound.max) if n <= min(bound.max, longest)})
    outside = [bound.min - 1] if bound.min else []
    if bound.max <= longest:
        outside.append(bound.max + 1)
    return inside, outside


def _sized(bound: Size | None, longest: int, make: Callable[[int], st.SearchStrategy[Any]]) -> Values:
    inside, outside = _lengths(bound, longest)
    return Values(st.sampled_from(inside).flatmap(make), st.one_of(STRANGE, *[make(n) for n in outside]))


def _values(tp: Any, depth: int = 0) -> Values:  # noqa: PLR0911 - one branch per field type
    bound = None
    if get_origin(tp) is Annotated:
        tp, bound, *_ = get_args(tp)
    size = bound if isinstance(bound, Size) else None
    origin = get_origin(tp)
    if tp is bool:
        return Values(st.booleans(), st.sampled_from([0, 1, None, b""]))  # msgpack's ints are not its bools
    if tp is int:
        low, high = (bound.min, bound.max) if isinstance(bound, Range) else (0, 2**63 - 1)
        valid = st.one_of(st.sampled_from([low, high]), st.integers(low, high))
        return Values(valid, st.sampled_from([low - 1, high + 1, 0.5, b""]))
    if tp is bytes:
        return _sized(size, 2**16, lambda n: st.binary(min_size=n, max_size=n))
    if tp is str:
        # Lowercase letters make a valid member id, name or purpose of any length. Two-byte letters, as long in
        # UTF-8 bytes, test that bounds count bytes, not characters.
        valid = _sized(size, 2**16, lambda n: st.just("m" * n))
        wide = _sized(size, 2**16, lambda n: st.just("é" * (n // 2) + "m" * (n % 2)))
        return Values(valid.valid, st.one_of(valid.off, wide.valid, wide.off))
    if origin is tuple:
        return _tuple_values(get_args(tp)[0], size, depth)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        options = [_values(a, depth + 1) for a in args]
        if type(None) in get_args(tp):
            return Values(st.one_of(st.none(), *[o.valid for o in options]), st.one_of(*[o.off for o in options]))
        # A tagged union: the tag, then the record's fields.
        tagged = [(a.TAG, o) for a, o in zip(args, options, strict=True)]
        return Values(
            st.one_of(*[o.valid.map(functools.partial(_tagged, tag)) for tag, o in tagged]),
            st.one_of(
                *[o.off.map(functools.partial(_tagged, tag)) for tag, o in tagged],
                st.sampled_from([("no-such-kind",), (), (None,)]),
            ),
        )
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return Values(STRANGE, STRANGE) if depth > 8 else _record_values(tp, depth)
    raise TypeError(f"no values for {tp!r}")


def _tagged(tag: str, raw: Any) -> Any:
    return (tag, *raw) if type(raw) is tuple else (tag, raw)


def _tuple_values(item: Any, size: Size | None, depth: int) -> Values:
    plain = _plain(item)
    if depth > 6:
        return Values(st.just(()), STRANGE)
    items = _values(item, depth + 1)
    # Items of plain values differ, or a record refusing repeats would hide what the tuple's check did.
    lengths = _sized(
        size,
        LONGEST if plain else LONGEST_OF_RECORDS,
        lambda n: st.lists(items.valid, min_size=n, max_size=n, unique=plain).map(tuple),
    )
    one_off = st.tuples(lengths.valid, items.off, st.integers(0, 2**16)).map(
        lambda t: t[0] and (*t[0][: t[2] % len(t[0])], t[1], *t[0][t[2] % len(t[0]) + 1 :])
    )
    return Values(lengths.valid, st.one_of(lengths.off, one_off, one_off))


def _plain(tp: Any) -> bool:
    if get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp in (bool, int, bytes, str)


def _record_values(cls: type, depth: int) -> Values:
    fields = [f for f in dataclasses.fields(cls) if f.init]
    hints = typing.get_type_hints(cls, include_extras=True)
    values = [_values(hints[f.name], depth + 1) for f in fields]
    required = _required(fields)
    full = st.tuples(*[v.valid for v in values])
    valid = full.map(functools.partial(_without_absent_tail, required))

    @st.composite
    def one_off(draw: st.DrawFn) -> Any:
        raw = list(draw(full))
        i = draw(st.integers(0, len(raw) - 1))
        raw[i] = draw(values[i].off)
        return _without_absent_tail(max(required, i + 1), tuple(raw))

    # Most off records have one field off, where a compiled check that is wrong makes a difference.
    off = [one_off()] * 4 if fields else []
    return Values(
        valid,
        st.one_of(
            *off,
            full.flatmap(lambda raw: st.integers(0, len(raw)).map(lambda n: raw[:n])),  # fields left out at the end
            full,  # with the absent optional fields at the end written out as None
            full.map(lambda raw: (*raw, None)),
            full.map(lambda raw: (*raw, 0)),
            STRANGE,
        ),
    )


def _without_absent_tail(required: int, raw: tuple[Any, ...]) -> tuple[Any, ...]:
    """A record's canonical array leaves out the optional fields at its end while they are None."""
    end = len(raw)
    while end > required and raw[end - 1] is None:
        end -= 1
    return raw[:end]


def _valid(tp: Any, *, high: bool = False) -> Any:  # noqa: PLR0911 - one branch per field type
    """One valid value for a field of type `tp`: the smallest its bounds allow, or with `high` the largest (short of
    huge), with optional fields present and the last kind of a union."""
    bound = None
    if get_origin(tp) is Annotated:
        tp, bound, *_ = get_args(tp)
    size = bound if isinstance(bound, Size) else Size(0, 0 if not high else 2)
    length = size.min if not high else (size.max if size.max <= 4096 else size.min + 1)
    if tp is bool:
        return True
    if tp is int:
        low, top = (bound.min, bound.max) if isinstance(bound, Range) else (0, 2**63 - 1)
        return top if high else low
    if tp is bytes:
        return b"\x01" * length
    if tp is str:
        return "m" * length
    if get_origin(tp) is tuple:
        count = size.min if not high else max(size.min, min(size.max, 2))
        return tuple(_distinct(_valid(get_args(tp)[0], high=high), i) for i in range(count))
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if type(None) in get_args(tp):
            return _valid(args[0], high=True) if high else None
        kind = args[-1] if high else args[0]
        return _tagged(kind.TAG, _valid(kind, high=high))
    fields = [f for f in dataclasses.fields(tp) if f.init]
    hints = typing.get_type_hints(tp, include_extras=True)
    return _without_absent_tail(_required(fields), tuple(_valid(hints[f.name], high=high) for f in fields))


def _required(fields: list[dataclasses.Field[Any]]) -> int:
    """How many of a record's fields come before its optional tail (the trailing fields that default to None)."""
    required = len(fields)
    while required and fields[required - 1].default is None:
        required -= 1
    return required


def _distinct(value: Any, i: int) -> Any:
    """The i-th of several items made from `value`, different from the others where it is a plain value."""
    if type(value) is bytes and value:
        return i.to_bytes(len(value), "big")
    if type(value) is int and i:
        return value + i
    return value


def _just_off(tp: Any) -> list[Any]:  # noqa: PLR0911 - one branch per field type
    """Values one step from valid for a field of type `tp`: past each bound by one, or of another type."""
    bound = None
    if get_origin(tp) is Annotated:
        tp, bound, *_ = get_args(tp)
    size = bound if isinstance(bound, Size) else None
    strangers = [None, b"", ()]
    if tp is bool:
        return [0, 1, None]
    if tp is int:
        low, high = (bound.min, bound.max) if isinstance(bound, Range) else (0, 2**63 - 1)
        return [low - 1, high + 1, True, b"", None]
    lengths = [] if size is None else [n for n in (size.min - 1, size.max + 1) if 0 <= n <= 2**16]
    if tp is bytes:
        return [b"\x01" * n for n in lengths] + ["m" * (size.min if size else 0), None]  # str: text is not bytes
    if tp is str:
        # Two-byte letters: as many characters as the bound allows, but twice the UTF-8 bytes.
        wide = [] if size is None or not size.max else ["é" * size.max]
        return ["m" * n for n in lengths] + wide + [b"", None]
    if get_origin(tp) is tuple:
        item = get_args(tp)[0]
        good = _valid(item)
        arrays = [tuple(_distinct(good, i) for i in range(n)) for n in lengths if n <= LONGEST]
        return arrays + [(off,) for off in _just_off(item)] + [None, b""]
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if type(None) in get_args(tp):
            return [off for a in args for off in _just_off(a) if off is not None]
        return [("no-such-kind",), (), (args[0].TAG,), *strangers]
    return [*strangers, 0, (*_valid(tp), None)]


def test_compiled_and_reference_decoders_agree_on_every_field_just_off() -> None:
    # Deterministic: every field of every record at each bound and one past it, the rest of the record valid (at
    # the low ends of its bounds, then at the high ends: records whose own checks refuse one often take the other).
    for cls, high in itertools.product(RECORDS, (False, True)):
        fields = [f for f in dataclasses.fields(cls) if f.init]
        hints = typing.get_type_hints(cls, include_extras=True)
        valid = tuple(_valid(hints[f.name], high=high) for f in fields)
        required = _required(fields)
        _same_outcome(cls, _valid(cls, high=high))
        for i, f in enumerate(fields):
            for off in _just_off(hints[f.name]):
                # Absent optional fields after the one off are left out, so its own check is what refuses it.
                _same_outcome(cls, _without_absent_tail(max(required, i + 1), (*valid[:i], off, *valid[i + 1 :])))
        for n in range(len(fields) + 2):
            _same_outcome(cls, (*valid, None)[:n])


def _seeds() -> list[tuple[type, Any]]:
    c = corpus()
    seeds: list[tuple[type, Any]] = [(Event, e) for e in c.events]
    seeds += [(CertifiedBlock, b) for b in c.blocks]
    seeds += [(Envelope, m) for m in c.messages]
    seeds += [(Evidence, e) for e in c.evidence]
    seeds += [(Hello, h) for h in c.handshakes[:1]] + [(Proof, h) for h in c.handshakes[1:2]]
    return [(cls, msgpack.unpackb(data, use_list=False)) for cls, data in seeds]


def _paths(raw: Any, prefix: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    paths = [prefix]
    if type(raw) is tuple:
        for i, item in enumerate(raw):
            paths += _paths(item, (*prefix, i))
    return paths


def _altered(raw: Any, path: tuple[int, ...], change: str, value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    items = list(raw)
    if not rest and change == "drop":
        del items[head]
    elif not rest and change == "repeat":
        items.insert(head, items[head])
    else:
        items[head] = _altered(items[head], tuple(rest), change, value)
    return tuple(items)


@st.composite
def _altered_seed(draw: st.DrawFn) -> tuple[type, Any]:
    cls, raw = draw(st.sampled_from(_seeds()))
    path = draw(st.sampled_from(_paths(raw)))
    change = draw(st.sampled_from(["replace", "drop", "repeat"] if path else ["replace"]))
    value = draw(st.sampled_from((*STRANGERS, 2**63 - 1, 2**63, b"\x01" * 31, b"\x01" * 64, "m" * 65)))
    return cls, _altered(raw, path, change, value)


def test_every_record_type_is_covered() -> None:
    # The walk finds the records inside the top ones (payload kinds, signatures, votes, ...), not just those.
    names = {cls.__name__ for cls in RECORDS}
    assert {"Issue", "Revoke", "MemberAdd", "Signature", "Params"} <= names
    assert len(RECORDS) > len(TOP)


def test_every_seed_decodes_alike() -> None:
    for cls, raw in _seeds():
        assert _outcome(cls, raw, reference=False)[0] == "decoded"
        _same_outcome(cls, raw)


@pytest.mark.parametrize("cls", RECORDS, ids=[cls.__name__ for cls in RECORDS])
def test_compiled_and_reference_decoders_agree_on_shaped_values(cls: type) -> None:
    values = _record_values(cls, 0)

    @settings(SETTINGS, max_examples=SHAPED_EXAMPLES)
    @given(raw=st.one_of(values.valid, values.off))
    def agree(raw: Any) -> None:
        _same_outcome(cls, raw)

    agree()


@SETTINGS
@given(case=_altered_seed())
def test_compiled_and_reference_decoders_agree_on_altered_records(case: tuple[type, Any]) -> None:
    _same_outcome(*case)
