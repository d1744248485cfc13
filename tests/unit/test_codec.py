from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, ClassVar

import msgpack
import pytest

from credledger.ledger.codec import Bytes32, Range, Size, decode, encode
from credledger.ledger.errors import DecodeError


@dataclass(frozen=True, slots=True)
class Inner:
    TAG: ClassVar[str] = "inner"
    n: int
    label: Annotated[str, Size(0, 8)]


@dataclass(frozen=True, slots=True)
class Other:
    TAG: ClassVar[str] = "other"
    flag: bool


@dataclass(frozen=True, slots=True)
class Outer:
    digest: Bytes32
    small: Annotated[int, Range(-5, 5)]
    items: Annotated[tuple[Inner, ...], Size(0, 3)]
    maybe: bytes | None
    body: Inner | Other


def sample() -> Outer:
    return Outer(b"\x07" * 32, -3, (Inner(1, "a"), Inner(2**40, "bcd")), None, Other(True))


def test_round_trip_preserves_every_field() -> None:
    value = sample()
    assert decode(Outer, encode(value)) == value


def test_encoding_is_a_plain_msgpack_array_in_field_order() -> None:
    raw = msgpack.unpackb(encode(sample()), raw=False)
    assert raw == [b"\x07" * 32, -3, [[1, "a"], [2**40, "bcd"]], None, ["other", True]]


def test_equal_values_encode_to_equal_bytes() -> None:
    assert encode(sample()) == encode(sample())


def _reencode(raw: object) -> bytes:
    data: bytes = msgpack.packb(raw, use_bin_type=True)
    return data


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([b"\x07" * 31, 0, [], None, ["other", True]], "Outer.digest: expected 32 bytes, got 31"),
        ([b"\x07" * 32, 6, [], None, ["other", True]], "Outer.small: 6 outside [-5, 5]"),
        ([b"\x07" * 32, "0", [], None, ["other", True]], "Outer.small: expected int, got str"),
        ([b"\x07" * 32, 0, [[1, "a"]] * 4, None, ["other", True]], "Outer.items: expected 0..3 items, got 4"),
        ([b"\x07" * 32, 0, [[1, "toolongtext"]], None, ["other", True]], "Outer.items[0].label: expected 0..8"),
        ([b"\x07" * 32, 0, [], None, ["nope", True]], "unknown kind 'nope'"),
        ([b"\x07" * 32, 0, [], None, ["other", 1]], "Outer.body<other>.flag: expected bool, got int"),
        ([b"\x07" * 32, 0, [], None], "Outer: expected 5 fields, got 4"),
        ([b"\x07" * 32, 0, [], None, ["other", True], 9], "Outer: expected 5 fields, got 6"),
        ([b"\x07" * 32, 0, [[-1, "a"]], None, ["other", True]], "Outer.items[0].n: -1 outside"),
    ],
)
def test_decoding_rejects_wrong_shapes_with_the_field_path(raw: object, message: str) -> None:
    with pytest.raises(DecodeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode(Outer, _reencode(raw))


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(DecodeError, match="1 trailing bytes"):
        decode(Outer, encode(sample()) + b"\x00")


def test_truncated_input_is_rejected() -> None:
    with pytest.raises(DecodeError, match="not valid msgpack"):
        decode(Outer, encode(sample())[:-1])


def test_non_minimal_integer_encoding_is_rejected() -> None:
    canonical = encode(Inner(1, "a"))
    # 0xcc 0x01 is uint8 1, a legal but non-minimal encoding of the positive fixint 0x01.
    padded = canonical.replace(b"\x01", b"\xcc\x01", 1)
    with pytest.raises(DecodeError, match="not the canonical encoding"):
        decode(Inner, padded)


def test_maps_floats_and_ext_types_are_rejected() -> None:
    for raw in ([{"a": 1}, "x"], [1.5, "x"], [msgpack.ExtType(1, b"x"), "x"]):
        with pytest.raises(DecodeError):
            decode(Inner, _reencode(raw))


def test_nesting_bomb_is_rejected_without_recursion_error() -> None:
    bomb = b"\x91" * 100_000 + b"\xc0"
    with pytest.raises(DecodeError):
        decode(Outer, bomb)


def test_hostile_length_prefix_does_not_allocate() -> None:
    # bin32 claiming 4 GiB followed by nothing.
    with pytest.raises(DecodeError):
        decode(Outer, b"\x95\xc6\xff\xff\xff\xff")


def test_oversize_input_is_rejected_before_parsing() -> None:
    with pytest.raises(DecodeError, match="exceeds the limit of 10"):
        decode(Outer, encode(sample()), max_bytes=10)


def test_invalid_utf8_is_rejected() -> None:
    data = encode(Inner(1, "ab")).replace(b"ab", b"\xff\xfe")
    with pytest.raises(DecodeError):
        decode(Inner, data)
