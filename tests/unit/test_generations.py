"""The two-generation bounded map behind the state map's node cache and the kept bundle texts."""

from __future__ import annotations

from credledger.ledger.storage.generations import TwoGenerations


def test_at_most_the_bound_is_held_and_the_oldest_generation_goes_whole() -> None:
    cache = TwoGenerations[int, str](4)
    for n in range(5):
        cache.add(n, str(n))  # 0 and 1 filled the first young generation; 2 and 3 the next, which dropped them
    assert cache.get(0) is None and cache.get(1) is None
    assert cache.get(4) == "4" and cache.get(3) == "3"


def test_an_entry_in_steady_use_survives_every_turn_over() -> None:
    cache = TwoGenerations[int, str](4)
    cache.add(0, "upper node")
    for n in range(1, 50):
        assert cache.get(0) == "upper node"
        cache.add(n, str(n))
    assert cache.get(0) == "upper node"
    assert cache.get(1) is None


def test_a_bound_below_two_keeps_nothing() -> None:
    cache = TwoGenerations[bytes, bytes](1)
    cache.add(b"ref", b"record")
    assert cache.get(b"ref") is None
