from __future__ import annotations

import pytest

from credledger.ledger import codec
from credledger.ledger.limits import MAX_POWER
from credledger.ledger.validators import Validator, ValidatorSet


def v(name: str, power: int = 1) -> Validator:
    return Validator(name, power, bytes([len(name)]) * 32)


def test_quorum_is_strictly_more_than_two_thirds() -> None:
    assert ValidatorSet.of([v("a"), v("b"), v("c")]).quorum == 3
    assert ValidatorSet.of([v("a"), v("b"), v("c"), v("d")]).quorum == 3
    assert ValidatorSet.of([v("a", 3), v("b", 3)]).quorum == 5
    assert ValidatorSet.of([v("a"), v("b"), v("c"), v("d")]).weak_quorum == 2


def test_hash_does_not_depend_on_input_order_and_round_trips() -> None:
    one = ValidatorSet.of([v("a"), v("bb", 2)])
    two = ValidatorSet.of([v("bb", 2), v("a")])
    assert one.hash() == two.hash()
    assert codec.decode(ValidatorSet, codec.encode(one)) == one


def test_power_is_range_checked() -> None:
    with pytest.raises(ValueError, match="power 0"):
        v("a", 0)
    with pytest.raises(ValueError, match="outside"):
        v("a", MAX_POWER + 1)


def test_duplicates_unsorted_and_bad_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="sorted"):
        ValidatorSet((v("b"), v("a")))
    with pytest.raises(ValueError, match="sorted"):
        ValidatorSet((v("a"), v("a")))
    with pytest.raises(ValueError, match="member id"):
        v("Bad Id")
