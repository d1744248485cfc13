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


_PLANS: dict[Any, tuple[_Encoder, _Decoder]] = {}


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
    _, dec = _plan(cls)
    try:
        value: R = dec(raw)
    except _Refusal as refusal:
        raise DecodeError(f"{cls.__name__}{''.join(refusal.path)}: {refusal.message}") from None
    if msgpack.packb(raw, use_bin_type=True) != data:
        raise DecodeError(f"{cls.__name__}: not the canonical encoding (non-minimal integer or length prefix)")
    return value, raw


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


def _plan(tp: Any) -> tuple[_Encoder, _Decoder]:
    plan = _PLANS.get(tp)
    if plan is None:
        plan = _build(tp)
        _PLANS[tp] = plan
    return plan


def _build(tp: Any) -> tuple[_Encoder, _Decoder]:  # noqa: PLR0911 - one branch per supported type
    bound: Size | Range | None = None
    if get_origin(tp) is Annotated:
        tp, *extras = get_args(tp)
        bound = extras[0]
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
        return _tuple_plan(args[0], bound if isinstance(bound, Size) else None)
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if type(None) in args:
            rest = [a for a in args if a is not type(None)]
            inner = rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007
            return _optional_plan(inner)
        return _tagged_plan(args)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _record_plan(tp)
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


def _tuple_plan(item: Any, bound: Size | None) -> tuple[_Encoder, _Decoder]:
    item_enc, item_dec = _plan(item)

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
    return (_identity if item_enc is _identity else enc), dec


def _optional_plan(inner: Any) -> tuple[_Encoder, _Decoder]:
    inner_enc, inner_dec = _plan(inner)

    def enc(value: Any) -> Any:
        return None if value is None else inner_enc(value)

    def dec(raw: Any) -> Any:
        return None if raw is None else inner_dec(raw)

    return (_identity if inner_enc is _identity else enc), dec


def _record_plan(cls: type) -> tuple[_Encoder, _Decoder]:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    names = [f.name for f in fields]
    plans = [_plan(hints[name]) for name in names]
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

    if required < arity:
        return enc, dec
    # A record of fields that encode as themselves is the tuple of its fields (msgpack packs tuples as arrays).
    return (fields_of if all(e is _identity for e in encoders) else enc), dec


def _tagged_plan(options: tuple[Any, ...]) -> tuple[_Encoder, _Decoder]:
    by_tag: dict[str, tuple[type, _Encoder, _Decoder]] = {}
    by_type: dict[type, tuple[str, _Encoder]] = {}
    for cls in options:
        tag = getattr(cls, "TAG", None)
        if not isinstance(tag, str):
            raise TypeError(f"{cls!r} in a union needs a str TAG class variable")
        cls_enc, cls_dec = _plan(cls)
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
