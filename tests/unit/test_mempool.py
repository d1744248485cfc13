from __future__ import annotations

import pytest

from credledger.node.mempool import DuplicateEvent, Mempool, MempoolFull


def test_events_leave_in_arrival_order_within_limits() -> None:
    pool: Mempool[str] = Mempool(max_events=10, max_bytes=1000)
    for i in range(5):
        pool.add(bytes([i]), b"x" * 10, f"e{i}", now=0.0)
    assert [p.event for p in pool.take(3, 1000)] == ["e0", "e1", "e2"]
    assert [p.event for p in pool.take(10, 25)] == ["e0", "e1"]
    assert len(pool) == 5


def test_duplicates_are_refused_without_change() -> None:
    pool: Mempool[str] = Mempool(max_events=10, max_bytes=1000)
    pool.add(b"a", b"xx", "a", now=0.0)
    with pytest.raises(DuplicateEvent, match="already pending"):
        pool.add(b"a", b"xx", "a", now=0.0)
    assert len(pool) == 1
    assert pool.size_bytes == 2


def test_count_and_byte_limits_hold() -> None:
    pool: Mempool[str] = Mempool(max_events=2, max_bytes=10)
    pool.add(b"a", b"x" * 6, "a", now=0.0)
    with pytest.raises(MempoolFull, match="10 bytes"):
        pool.add(b"b", b"x" * 5, "b", now=0.0)
    pool.add(b"b", b"x" * 4, "b", now=0.0)
    with pytest.raises(MempoolFull, match="2 events"):
        pool.add(b"c", b"", "c", now=0.0)
    assert (len(pool), pool.size_bytes) == (2, 10)


def test_remove_and_retain_keep_accounting_exact() -> None:
    pool: Mempool[int] = Mempool(max_events=10, max_bytes=1000)
    for i in range(6):
        pool.add(bytes([i]), b"x" * (i + 1), i, now=0.0)
    pool.remove([b"\x00", b"\x09"])
    dropped = pool.retain(lambda p: p.event % 2 == 0)
    assert [p.event for p in dropped] == [1, 3, 5]
    assert [p.event for p in pool.take(10, 1000)] == [2, 4]
    assert pool.size_bytes == 3 + 5
