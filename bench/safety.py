"""Safety-record benchmark: what persisting one vote's double-sign guard costs, with a large valid block.

A validator makes its `SafetyRecord` durable before each statement it signs (2-4 per height); from the vote that
follows a polka on, the record carries the height's valid block. This builds a real block of `--events` signed
issue events on a real LMDB store and persists, `--repeats` times each, one vote's record:

- ``before``: encoded whole under one consensus key, the block inside (as the driver did before the block had its
  own key);
- ``after``: through `SafetyStore.save`, the block under its own key, written only when it changes;

each for the first vote of a height naming the block, a later vote naming it again (every vote of a round after
the polka, while the height lasts), and the next height's first vote (which no longer names it).

Reports, per persist, the bytes of the values written, the bytes LMDB passed to write(2) (``wchar`` of
/proc/self/io, Linux only: the dirty pages and a meta page, synced after), and the median CPU time
(``time.process_time``), which other processes on the machine change little. The wall time includes the fsync and
is printed for reference only: on a shared disk it is mostly the device's sync latency.

Run ``python -m bench safety`` or ``python -m bench safety --events 2000 --repeats 30``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.store import BLOCK_INTERVAL_MS, MEMBERS, T0, _genesis, _key, _sign_block
from credledger.consensus.safety import SafetyRecord
from credledger.ledger import codec, merkle
from credledger.ledger.block import Block
from credledger.ledger.events import decode_event
from credledger.ledger.storage.store import Store
from credledger.ledger.votes import Step, sign_precommit, sign_prevote
from credledger.node.safetystore import SAFETY_KEY, SafetyStore

_IO = Path("/proc/self/io")


def _wchar() -> int | None:
    """Bytes this process has passed to write(2) and its kin so far (None where /proc does not say)."""
    try:
        text = _IO.read_text()
    except OSError:
        return None
    return next(int(line.split()[1]) for line in text.splitlines() if line.startswith("wchar:"))


class _Counted(Store):
    """The real store, adding up the bytes of the consensus values it writes."""

    value_bytes = 0

    def write_consensus(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes] = ()) -> None:
        self.value_bytes += sum(len(value) for value in puts.values())
        super().write_consensus(puts, deletes)


def _record(store: Store, events: int) -> SafetyRecord:
    """A precommit's record at height 1, round 0, locked on and naming a block of `events` events."""
    genesis = _genesis()
    encoded = _sign_block(1, events)
    block: Block
    block, selection = store.build_block(
        [decode_event(raw) for raw in encoded],
        proposer=MEMBERS[0],
        round=0,
        time_ms=T0 + BLOCK_INTERVAL_MS,
        verified=frozenset(merkle.leaf_hash(raw) for raw in encoded),
    )
    assert not selection.refused, selection.refused[:1]
    me = _key(MEMBERS[0], "node")
    prevote = sign_prevote(me, genesis.origin, 1, 0, block.hash())
    precommit = sign_precommit(me, genesis.origin, 1, 0, block.header)
    return SafetyRecord(1, 0, int(Step.PRECOMMIT), (prevote, precommit), 0, block.hash(), 0, block)


def _next_height(record: SafetyRecord) -> SafetyRecord:
    """The first record of the next height: a prevote, no lock, no valid value."""
    prevote = sign_prevote(_key(MEMBERS[0], "node"), _genesis().origin, record.height + 1, 0, None)
    return SafetyRecord(record.height + 1, 0, int(Step.PREVOTE), (prevote,))


@dataclass(frozen=True, slots=True)
class Row:
    """One way of persisting, per persist: bytes of the values written, bytes passed to write(2) (None where
    /proc does not say), and median CPU and wall seconds."""

    value_bytes: float
    written: float | None
    cpu: float
    wall: float


def _measure(
    store: _Counted, persist: Callable[[], None], repeats: int, setup: Callable[[], None] = lambda: None
) -> Row:
    """Run `setup` (untimed, uncounted) then `persist`, `repeats` times."""
    cpu, wall, values, written = [], [], [], []
    for _ in range(repeats):
        setup()
        before, wchar = store.value_bytes, _wchar()
        c, w = time.process_time(), time.perf_counter()
        persist()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
        after = _wchar()
        values.append(store.value_bytes - before)
        if wchar is not None and after is not None:
            written.append(after - wchar)
    return Row(
        statistics.mean(values),
        statistics.mean(written) if written else None,
        statistics.median(cpu),
        statistics.median(wall),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench safety", description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--dir", default=None, help="where to put the LMDB files (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.dir is not None:
        Path(args.dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        store = _Counted(Path(tmp) / "ledger")
        try:
            store.initialize(_genesis())
            record = _record(store, args.events)
            following = _next_height(record)
            guard = SafetyStore(store)

            def whole(saved: SafetyRecord) -> Callable[[], None]:
                return lambda: store.put_consensus(SAFETY_KEY, codec.encode(saved))

            def after(saved: SafetyRecord) -> Callable[[], None]:
                return lambda: guard.save(saved)

            # Each persist follows the record it follows in a height: a vote naming the block follows one that
            # names it too (or, for the first, a record without it); the next height's first follows the last.
            rows = {
                "before: first naming it": _measure(store, whole(record), args.repeats, whole(following)),
                "before: naming it again": _measure(store, whole(record), args.repeats, whole(record)),
                "before: next height": _measure(store, whole(following), args.repeats, whole(record)),
                "after: first naming it": _measure(store, after(record), args.repeats, after(following)),
                "after: naming it again": _measure(store, after(record), args.repeats, after(record)),
                "after: next height": _measure(store, after(following), args.repeats, after(record)),
            }
        finally:
            store.close()
    block_bytes = len(codec.encode(record.valid_block))
    print(f"one vote's safety record, with a valid block of {args.events} events ({block_bytes:,} bytes encoded)")
    print(f"{'persist':<26}{'value bytes':>13}{'write(2) bytes':>16}{'CPU ms (median)':>17}{'wall ms (median)':>18}")
    for name, row in rows.items():
        shown = "n/a" if row.written is None else f"{row.written:,.0f}"
        print(f"{name:<26}{row.value_bytes:>13,.0f}{shown:>16}{row.cpu * 1e3:>17.3f}{row.wall * 1e3:>18.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
