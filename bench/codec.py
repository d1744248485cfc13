"""Decoder benchmark: CPU time to decode canonical records with the compiled decoders (`ledger.codec`) against the
field-by-field reference decoders they stand for, measured alternately in the same run, so the ratio holds on a
noisy machine.

Records: events as a node gets them (an issue, an issue naming components, a status list entry and an
achievement, a revocation), a consensus prevote, a block header, and a relayed batch and a block of 1,000 issue
events (the block's events stay encoded; the batch's are decoded one by one, as a node admits them). Each is decoded
from its bytes as `codec.decode` does -- unpacking, every check, and the comparison with its re-encoding -- once
through each path (a node's `decode_event` adds about 1 µs to either: the signed part packed again). Times are
`time.process_time` medians over rounds; a round decodes a small record `--repeat` times.

Run ``python -m bench codec`` or ``python -m bench codec --rounds 21 --repeat 5000``.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Sequence
from typing import Any

import msgpack

from credledger.ledger import codec
from credledger.ledger.block import Block, Header
from credledger.ledger.events import Event, Issue, Revoke, UnsignedEvent, sign_event
from credledger.ledger.keys import SigningKey
from credledger.ledger.votes import Envelope, encode_message, sign_prevote
from credledger.node.peers import EventBatch

ORIGIN = "credledger.bench/codec"
T0 = 1_767_225_600_000


def _digest(i: int) -> bytes:
    return hashlib.sha256(f"credential/{i}".encode()).digest()


def _event(key: SigningKey, payload: Any) -> bytes:
    return sign_event(UnsignedEvent(ORIGIN, T0, payload), key).encode()


def _records() -> list[tuple[str, type, bytes]]:
    """(name, record type, canonical bytes)."""
    key = SigningKey("uni.bench", hashlib.sha256(b"bench/codec").digest())
    issue = _event(key, Issue(_digest(0), "uni.bench", None, ()))
    stacked = _event(
        key, Issue(_digest(1), "uni.bench", T0 + 10**10, (_digest(2), _digest(3), _digest(4)), 0, 17, "course-1", 2)
    )
    revoke = _event(key, Revoke(_digest(0), 4))
    prevote = encode_message(sign_prevote(key, ORIGIN, 12, 0, _digest(5)))
    header = Header(
        ORIGIN, 12, 0, T0, _digest(6), "uni.bench", 1000, _digest(7), _digest(8), 1000, _digest(9), _digest(9)
    )
    events = tuple(_event(key, Issue(_digest(10 + i), "uni.bench", None, ())) for i in range(1000))
    return [
        ("issue event", Event, issue),
        ("issue with components, status and achievement", Event, stacked),
        ("revoke event", Event, revoke),
        ("prevote", Envelope, prevote),
        ("block header", Header, codec.encode(header)),
        ("block of 1,000 events (kept encoded)", Block, codec.encode(Block(header, events))),
        ("relayed batch of 1,000 events, each decoded", EventBatch, codec.encode(EventBatch(events))),
    ]


def _decode(cls: type, data: bytes, *, reference: bool) -> object:
    """What `codec.decode` does -- unpack, decode, compare with the re-encoding -- through either path."""
    raw = msgpack.unpackb(data, raw=False, use_list=False)
    value = codec.decode_value(cls, raw, reference=reference)
    if msgpack.packb(raw, use_bin_type=True) != data:
        raise AssertionError("not canonical")
    if cls is EventBatch:
        # As a node admits a relayed batch: every event in it decoded too.
        assert isinstance(value, EventBatch)
        return [_decode(Event, event, reference=reference) for event in value.events]
    return value


def _time_us(cls: type, data: bytes, repeat: int, *, reference: bool) -> float:
    """CPU µs per decode of `data`, over `repeat` decodes."""
    started = time.process_time()
    for _ in range(repeat):
        _decode(cls, data, reference=reference)
    return (time.process_time() - started) / repeat * 1e6


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench codec", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11, help="rounds per path (medians are reported)")
    parser.add_argument("--repeat", type=int, default=2000, help="decodes of a small record per round")
    args = parser.parse_args(argv)
    print(f"{'record':48} {'compiled µs':>12} {'reference µs':>13} {'ratio':>6}")
    for name, cls, data in _records():
        if _decode(cls, data, reference=True) != _decode(cls, data, reference=False):
            raise AssertionError(f"{name}: the two paths decode differently")
        repeat = max(1, args.repeat // (1000 if cls in (Block, EventBatch) else 1))
        compiled_us: list[float] = []
        reference_us: list[float] = []
        for _ in range(args.rounds):
            compiled_us.append(_time_us(cls, data, repeat, reference=False))
            reference_us.append(_time_us(cls, data, repeat, reference=True))
        fast, slow = statistics.median(compiled_us), statistics.median(reference_us)
        print(f"{name:48} {fast:12.2f} {slow:13.2f} {fast / slow:6.2f}")
    return 0
