"""Every single-bit change to a commit certificate (a signed checkpoint note) is caught."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from credledger.ledger.block import Header, sign_checkpoint, verify_certificate
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.note import SignedNote
from credledger.ledger.validators import Validator, ValidatorSet
from tests.factories import key_for

KEYS = [key_for(f"v{i}.test", "node") for i in range(4)]
VALIDATORS = ValidatorSet.of([Validator(k.name, 1, k.public.raw) for k in KEYS])
HEADER = Header(
    origin="credledger.test/notes",
    height=12,
    round=1,
    time_ms=1_767_225_612_000,
    prev_hash=b"\x11" * 32,
    proposer="v0.test",
    log_size=345,
    log_root=b"\x22" * 32,
    state_root=b"\x33" * 32,
    event_count=7,
    validators_hash=VALIDATORS.hash(),
    next_validators_hash=VALIDATORS.hash(),
)
# Exactly a quorum signs (3 of 4), so dropping or breaking any one signature loses the certificate.
NOTE = SignedNote(HEADER.checkpoint(2).body(), tuple(sign_checkpoint(HEADER, 2, k) for k in KEYS[:3])).format()
NOTE_BYTES = NOTE.encode()


def test_the_untouched_certificate_verifies() -> None:
    checkpoint, power = verify_certificate(SignedNote.parse(NOTE), VALIDATORS)
    assert (checkpoint.height, checkpoint.header_hash, power) == (12, HEADER.hash(), 3)


def test_every_single_bit_flip_is_caught() -> None:
    for bit in range(len(NOTE_BYTES) * 8):
        _expect_caught(bit)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(NOTE_BYTES) * 8 - 1), st.integers(min_value=1, max_value=255))
def test_any_byte_change_is_caught(position: int, mask: int) -> None:
    data = bytearray(NOTE_BYTES)
    data[position // 8] ^= mask
    _expect_rejected(bytes(data))


def _expect_caught(bit: int) -> None:
    data = bytearray(NOTE_BYTES)
    data[bit // 8] ^= 1 << (bit % 8)
    _expect_rejected(bytes(data))


def _expect_rejected(data: bytes) -> None:
    try:
        verify_certificate(SignedNote.parse(data), VALIDATORS)
    except (DecodeError, VerificationError):
        return
    raise AssertionError(f"a changed certificate still verified: {data!r}")
