"""Canonical msgpack for every record.

Theory of operation
-------------------
A record is a frozen dataclass. Its encoding is the msgpack array of its fields in declaration order; a field
whose declared type is a union of records (a *tagged* field) is encoded as ``[tag, field...]`` using the
record's ``TAG``. Only these msgpack types appear: nil, bool, int, str, bin and array. No maps, floats or
extension types, so there is exactly one encoding of every value.

Each field's type says what it may hold, with bounds attached through ``typing.Annotated``::

    digest: Annotated[bytes, Size(32, 32)]
    components: Annotated[tuple[Bytes32, ...], Size(0, MAX_COMPONENTS)]

Decoding is strict: the bytes are unpacked with msgpack's own length limits (so a hostile length prefix never
allocates), every field is type- and range-checked, arrays must have exactly the declared arity (no unknown or
missing fields), trailing bytes are refused, and finally the value is re-encoded and compared with the input so
a non-minimal encoding of the same value is refused too.

One exception to the arity: a record's trailing fields that default to None (added after its first release) are
left out while they are None, and a None written out at the end is refused, so a value still has one encoding and
records that predate the field keep their bytes, ids and signatures.

Every refusal is a `DecodeError` naming the field path.

Decoders build no path strings while they succeed: a refusal is raised as `_Refusal` with an empty path, and each
enclosing record, array or tagged union prepends its own step as the exception passes through, so the path costs
nothing on the way to a valid record.

Every record's and tuple's decoder is built twice. The *reference* decoder is a closure per field, each checking
its one value. The decoder in use is compiled from it: Python source generated once per type, which unpacks the
array and checks every int, bytes, str and bool field inline in one expression, so a valid record costs one call
rather than one per field (a record decodes in 0.6 to 0.75 of the time: `python -m bench codec`). Whenever that
expression is false, or a nested decoder or the record's own checks refuse, the compiled decoder hands the value to
the reference one, which refuses it with its path and message. So the two accept the same values and refuse with
the same words; the property tests compare them on valid and altered records of every kind
(`decode_value(..., reference=True)`).
"""

from __future__ import annotations

import dataclasses
import operator
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Protocol, TypeVar, get_args, get_origin

import msgpack

from credledger.ledger.errors import DecodeError
from credledger.ledger.limits import MAX_RECORD_BYTES


@dataclass(frozen=True, slots=True)
class Size:
    """Inclusive length bounds for bytes, str (in UTF-8 bytes) and tuples."""

    min: int
    max: int


@dataclass(frozen=True, slots=True)
class Range:
    """Inclusive bounds for an int."""

    min: int
    max: int


#: Non-negative 63-bit integer, the default for int fields (heights, sizes, times, powers).
U63 = Range(0, 2**63 - 1)

Bytes32 = Annotated[bytes, Size(32, 32)]
Bytes64 = Annotated[bytes, Size(64, 64)]
KeyId = Annotated[bytes, Size(4, 4)]


class Record(Protocol):
    """What the codec needs of a record class: a dataclass (and a TAG if it is used in a union)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]


R = TypeVar("R")

_Encoder = Callable[[Any], Any]
_Decoder = Callable[[Any], Any]


class _Refusal(Exception):
    """A field refused during decoding; `path` collects the steps to it (".name", "[i]", "<tag>") outermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def within(self, step: str) -> _Refusal:
        self.path.insert(0, step)
        return self


_Plan = tuple[_Encoder, _Decoder]
_PLANS: dict[Any, _Plan] = {}
_REFERENCE_PLANS: dict[Any, _Plan] = {}


def encode(record: object) -> bytes:
    """The canonical bytes of a record."""
    enc, _ = _plan(type(record))
    packed: bytes = msgpack.packb(enc(record), use_bin_type=True)
    return packed


def decode(cls: type[R], data: bytes, *, max_bytes: int = MAX_RECORD_BYTES) -> R:
    """Parse canonical bytes into `cls`, refusing anything that is not exactly a canonical encoding."""
    return decode_fields(cls, data, max_bytes=max_bytes)[0]


def decode_fields(cls: type[R], data: bytes, *, max_bytes: int = MAX_RECORD_BYTES) -> tuple[R, tuple[Any, ...]]:
    """`decode`, with the msgpack values of the record's fields as they were unpacked: packing a run of them gives
    exactly the bytes that encode those fields within `data` (the whole is canonical, so each part is)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"{cls.__name__}: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(f"{cls.__name__}: {len(data)} bytes exceeds the limit of {max_bytes}")
    raw = _unpack(data, cls.__name__)
    value = decode_value(cls, raw)
    if msgpack.packb(raw, use_bin_type=True) != data:
        raise DecodeError(f"{cls.__name__}: not the canonical encoding (non-minimal integer or length prefix)")
    return value, raw


def decode_value(cls: type[R], raw: Any, *, reference: bool = False) -> R:
    """Decode msgpack values as `msgpack.unpackb(..., use_list=False)` gives them into `cls`, with the compiled
    decoders, or with the field-by-field ones they stand for when `reference` is true (the tests compare the two).
    Only the values are checked: to check bytes, use `decode`."""
    _, dec = (_reference_plan if reference else _plan)(cls)
    try:
        value: R = dec(raw)
    except _Refusal as refusal:
        raise DecodeError(f"{cls.__name__}{''.join(refusal.path)}: {refusal.message}") from None
    return value


def _unpack(data: bytes, where: str) -> Any:
    limit = len(data)
    try:
        return msgpack.unpackb(
            data,
            raw=False,
            use_list=False,
            strict_map_key=True,
            max_bin_len=limit,
            max_str_len=limit,
            max_array_len=limit,
            max_map_len=0,
            max_ext_len=0,
        )
    except msgpack.ExtraData as exc:
        extra: bytes = exc.extra  # type: ignore[attr-defined]  # msgpack-types omits this attribute
        raise DecodeError(f"{where}: {len(extra)} trailing bytes after the record") from None
    except msgpack.StackError:
        raise DecodeError(f"{where}: nesting too deep") from None
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        # msgpack reports truncation, bad UTF-8, maps and ext types all as ValueError subclasses.
        raise DecodeError(f"{where}: not valid msgpack ({exc})") from None


def _plan(tp: Any) -> _Plan:
    """The encoder and the decoder of `tp`; a record's or tuple's decoder is compiled (`_compile_record`)."""
    plan = _PLANS.get(tp)
    return plan if plan is not None else _PLANS.setdefault(tp, _build(tp, _plan))


def _reference_plan(tp: Any) -> _Plan:
    """`_plan` with every decoder built field by field from closures, which the compiled decoders must agree with."""
    plan = _REFERENCE_PLANS.get(tp)
    return plan if plan is not None else _REFERENCE_PLANS.setdefault(tp, _build(tp, _reference_plan))


def _unwrap(hint: Any) -> tuple[Any, Size | Range | None]:
    """The type a field hint names, and the bound its `Annotated` gives (None without one)."""
    if get_origin(hint) is Annotated:
        tp, bound, *_ = get_args(hint)
        return tp, bound
    return hint, None


def _build(tp: Any, plan: Callable[[Any], _Plan]) -> _Plan:  # noqa: PLR0911 - one branch per supported type
    tp, bound = _unwrap(tp)
    origin = get_origin(tp)
    if tp is bool:
        return _identity, _check_bool
    if tp is int:
        return _identity, _int_checker(bound if isinstance(bound, Range) else U63)
    if tp is bytes:
        return _identity, _bytes_checker(bound if isinstance(bound, Size) else None)
    if tp is str:
        return _identity, _str_checker(bound if isinstance(bound, Size) else None)
    if origin is tuple:
        args = get_args(tp)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"codec supports only homogeneous tuples, got {tp}")
        return _tuple_plan(args[0], bound if isinstance(bound, Size) else None, plan)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if type(None) in args:
            rest = [a for a in args if a is not type(None)]
            inner = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007
            return _optional_plan(inner, plan)
        return _tagged_plan(args, plan)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _record_plan(tp, plan)
    raise TypeError(f"codec cannot encode type {tp!r}")


def _identity(value: Any) -> Any:
    return value


def _check_bool(raw: Any) -> bool:
    if type(raw) is not bool:
        raise _Refusal(f"expected bool, got {_kind(raw)}")
    return raw


def _int_checker(bound: Range) -> _Decoder:
    low, high = bound.min, bound.max

    def check(raw: Any) -> int:
        if type(raw) is not int:
            raise _Refusal(f"expected int, got {_kind(raw)}")
        if not low <= raw <= high:
            raise _Refusal(f"{raw} outside [{low}, {high}]")
        return raw

    return check


def _bytes_checker(bound: Size | None) -> _Decoder:
    def check(raw: Any) -> bytes:
        if type(raw) is not bytes:
            raise _Refusal(f"expected bytes, got {_kind(raw)}")
        if bound is not None and not bound.min <= len(raw) <= bound.max:
            raise _Refusal(f"expected {_size_text(bound)} bytes, got {len(raw)}")
        return raw

    return check


def _str_checker(bound: Size | None) -> _Decoder:
    def check(raw: Any) -> str:
        if type(raw) is not str:
            raise _Refusal(f"expected str, got {_kind(raw)}")
        if bound is not None:
            n = len(raw.encode())
            if not bound.min <= n <= bound.max:
                raise _Refusal(f"expected {_size_text(bound)} UTF-8 bytes, got {n}")
        return raw

    return check


def _tuple_plan(item: Any, bound: Size | None, plan: Callable[[Any], _Plan]) -> _Plan:
    item_enc, item_dec = plan(item)

    def enc(value: tuple[Any, ...]) -> list[Any]:
        return [item_enc(v) for v in value]

    def dec(raw: Any) -> tuple[Any, ...]:
        if type(raw) is not tuple:
            raise _Refusal(f"expected array, got {_kind(raw)}")
        if bound is not None and not bound.min <= len(raw) <= bound.max:
            raise _Refusal(f"expected {_size_text(bound)} items, got {len(raw)}")
        try:
            return tuple([item_dec(v) for v in raw])
        except _Refusal as refusal:
            raise refusal.within(f"[{_refusing([item_dec] * len(raw), raw)}]") from None

    # msgpack packs a tuple as an array, so items that encode as themselves need no copy.
    return (_identity if item_enc is _identity else enc), (_compile_tuple(item, bound, dec) if plan is _plan else dec)


def _optional_plan(inner: Any, plan: Callable[[Any], _Plan]) -> _Plan:
    inner_enc, inner_dec = plan(inner)

    def enc(value: Any) -> Any:
        return None if value is None else inner_enc(value)

    def dec(raw: Any) -> Any:
        return None if raw is None else inner_dec(raw)

    return (_identity if inner_enc is _identity else enc), dec


def _record_plan(cls: type, plan: Callable[[Any], _Plan]) -> _Plan:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    plans = [plan(hints[name]) for name in names]
    encoders = [p[0] for p in plans]
    decoders = [p[1] for p in plans]
    arity = len(names)
    # The optional tail: trailing fields that default to None. Their canonical encoding omits every trailing None,
    # so records from before such a field was added keep their bytes (and their ids and signatures).
    required = arity
    while required and fields[required - 1].default is None:
        required -= 1
    fields_of: Callable[[Any], tuple[Any, ...]] = (
        operator.attrgetter(*names) if arity > 1 else lambda value: tuple(getattr(value, n) for n in names)
    )

    def enc(value: Any) -> list[Any]:
        out = [e(v) for e, v in zip(encoders, fields_of(value), strict=True)]
        while len(out) > required and out[-1] is None:
            out.pop()
        return out

    def dec(raw: Any) -> Any:
        if type(raw) is not tuple:
            raise _Refusal(f"expected array of {arity} fields, got {_kind(raw)}")
        if not required <= len(raw) <= arity:
            expected = str(arity) if required == arity else f"{required}..{arity}"
            raise _Refusal(f"expected {expected} fields, got {len(raw)}")
        if len(raw) > required and raw[-1] is None:
            raise _Refusal(f"field {names[len(raw) - 1]} is null: an absent optional field is left out")
        try:
            values = [d(v) for d, v in zip(decoders, raw, strict=False)]
        except _Refusal as refusal:
            raise refusal.within(f".{names[_refusing(decoders[: len(raw)], raw)]}") from None
        try:
            return cls(*values)
        except (ValueError, TypeError) as exc:
            # Records validate cross-field invariants in __post_init__.
            raise _Refusal(str(exc)) from None

    decoder = _compile_record(cls, [hints[name] for name in names], required, dec) if plan is _plan else dec
    if required < arity:
        return enc, decoder
    # A record of fields that encode as themselves is the tuple of its fields (msgpack packs tuples as arrays).
    return (fields_of if all(e is _identity for e in encoders) else enc), decoder


def _compile_record(cls: type, hints: list[Any], required: int, checked: _Decoder) -> _Decoder:
    """A decoder for `cls` generated as one function, with the checks of its int, bytes, str and bool fields written
    out inline, so a valid record costs one call instead of one per field.

    It accepts only what every check of `checked` (the decoder built from one closure per field) accepts. When any
    check fails it hands the value to `checked`, which refuses it with the field path and message, so refusals are
    exactly those of the field-by-field decoder. The tests compare the two on valid and altered records.
    """
    arity = len(hints)
    env: dict[str, Any] = {"cls": cls, "checked": checked, "_Refusal": _Refusal}
    checks: list[str] = []
    args: list[str] = []
    for i, hint in enumerate(hints):
        value = f"v{i}"
        inline = _inline_check(hint, value)
        if inline is None:
            env[f"d{i}"] = _plan(hint)[1]
            args.append(f"d{i}({value})")
        else:
            checks.append(f"({inline})")
            args.append(value)
    names = ", ".join(f"v{i}" for i in range(arity))
    if required == arity:
        shape = f"type(raw) is tuple and len(raw) == {arity}"
        unpack = f"{names}, = raw"
    else:
        # Absent optional fields are None; a None written out at the end is not canonical (`checked` says so).
        shape = (
            f"type(raw) is tuple and {required} <= len(raw) <= {arity}"
            f" and (len(raw) == {required} or raw[-1] is not None)"
        )
        env["nones"] = (None,) * arity
        unpack = f"{names}, = raw + nones[len(raw):]"
    source = "\n".join(
        [
            "def decode(raw):",
            f"    if {shape}:",
            f"        {unpack}",
            f"        if {' and '.join(checks) or 'True'}:",
            "            try:",
            f"                return cls({', '.join(args)})",
            "            except (_Refusal, ValueError, TypeError):",
            "                pass",
            "    return checked(raw)",
        ]
    )
    exec(compile(source, f"<codec decoder for {cls.__name__}>", "exec"), env)  # noqa: S102 - source built above
    decoder: _Decoder = env["decode"]
    return decoder


def _compile_tuple(item: Any, bound: Size | None, checked: _Decoder) -> _Decoder:
    """A decoder for a tuple of `item` with its length and item checks inline, as `_compile_record` (whose docstring
    says why and how refusals stay those of `checked`). A tuple of plain values is returned as unpacked, uncopied."""
    length = "" if bound is None else f" and {bound.min} <= len(raw) <= {bound.max}"
    env: dict[str, Any] = {"checked": checked, "_Refusal": _Refusal}
    inline = _inline_check(item, "v")
    if inline is None:
        env["item"] = _plan(item)[1]
        body = [
            "        try:",
            "            return tuple([item(v) for v in raw])",
            "        except _Refusal:",
            "            pass",
        ]
    else:
        body = [
            "        for v in raw:",
            f"            if not ({inline}):",
            "                break",
            "        else:",
            "            return raw",
        ]
    source = "\n".join(["def decode(raw):", f"    if type(raw) is tuple{length}:", *body, "    return checked(raw)"])
    exec(compile(source, f"<codec decoder for tuple[{item!r}, ...]>", "exec"), env)  # noqa: S102 - source built above
    decoder: _Decoder = env["decode"]
    return decoder


def _inline_check(hint: Any, value: str) -> str | None:  # noqa: PLR0911 - one branch per field type
    """A Python expression true exactly when the field decoder for `hint` accepts `value` unchanged, or None where
    the field needs its own decoder (records, unions, tuples)."""
    tp, bound = _unwrap(hint)
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = get_args(tp)
        rest = [a for a in args if a is not type(None)]
        if len(args) != 2 or len(rest) != 1:
            return None
        inner = _inline_check(rest[0], value)
        return None if inner is None else f"{value} is None or ({inner})"
    if tp is bool:
        return f"type({value}) is bool"
    if tp is int:
        low, high = (bound.min, bound.max) if isinstance(bound, Range) else (U63.min, U63.max)
        return f"type({value}) is int and {low} <= {value} <= {high}"
    if tp is bytes:
        if not isinstance(bound, Size):
            return f"type({value}) is bytes"
        return f"type({value}) is bytes and {bound.min} <= len({value}) <= {bound.max}"
    if tp is str:
        if not isinstance(bound, Size):
            return f"type({value}) is str"
        return f"type({value}) is str and {bound.min} <= len({value}.encode()) <= {bound.max}"
    return None


def _tagged_plan(options: tuple[Any, ...], plan: Callable[[Any], _Plan]) -> _Plan:
    by_tag: dict[str, tuple[type, _Encoder, _Decoder]] = {}
    by_type: dict[type, tuple[str, _Encoder]] = {}
    for cls in options:
        tag = getattr(cls, "TAG", None)
        if not isinstance(tag, str):
            raise TypeError(f"{cls!r} in a union needs a str TAG class variable")
        cls_enc, cls_dec = plan(cls)
        by_tag[tag] = (cls, cls_enc, cls_dec)
        by_type[cls] = (tag, cls_enc)

    def enc(value: Any) -> list[Any]:
        tag, inner = by_type[type(value)]
        return [tag, *inner(value)]

    def dec(raw: Any) -> Any:
        if type(raw) is not tuple or not raw:
            raise _Refusal(f"expected tagged array, got {_kind(raw)}")
        tag = raw[0]
        entry = by_tag.get(tag) if isinstance(tag, str) else None
        if entry is None:
            known = ", ".join(sorted(by_tag))
            raise _Refusal(f"unknown kind {tag!r} (expected one of {known})")
        try:
            return entry[2](raw[1:])
        except _Refusal as refusal:
            raise refusal.within(f"<{tag}>") from None

    return enc, dec


def _refusing(decoders: Sequence[_Decoder], raw: Sequence[Any]) -> int:
    """The position of the first item its decoder refuses. Decoding is deterministic, so after a refusal this finds
    where it came from without the happy path keeping count."""
    for position, (decoder, item) in enumerate(zip(decoders, raw, strict=True)):
        try:
            decoder(item)
        except _Refusal:
            return position
    raise AssertionError("a refusal that does not recur")


def _size_text(bound: Size) -> str:
    return str(bound.min) if bound.min == bound.max else f"{bound.min}..{bound.max}"


def _kind(raw: Any) -> str:
    return {tuple: "array", bytes: "bytes", str: "str", int: "int", bool: "bool", type(None): "nil"}.get(
        type(raw), type(raw).__name__
    )
