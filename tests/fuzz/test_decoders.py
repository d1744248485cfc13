"""Every decoder of outside bytes, fuzzed with Hypothesis: it decodes or raises the project's own error, never
anything else (tests/fuzz/targets.py holds the targets and the contract).

The budget per target is small so `make test` stays quick; `python -m tests.fuzz decoders` runs the same targets
for as long as asked, with Hypothesis or the coverage-guided atheris.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from credledger.ledger.votes import decode_message
from tests.fuzz.corpus import corpus
from tests.fuzz.mutations import hostile
from tests.fuzz.targets import TARGETS, Target, check

#: Inputs per target in the test suite (derandomized, so every run tries the same ones).
EXAMPLES = 300


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_decoder_decodes_or_refuses_with_a_credledger_error(target: Target) -> None:
    seeds = target.seeds(corpus())

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=hostile(seeds, json_seeds=target.json, structured=target.structured))
    def fuzz(data: bytes) -> None:
        check(target, data)

    fuzz()


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_every_seed_of_a_decoder_is_accepted(target: Target) -> None:
    # The seeds are valid: a target that refused them would fuzz nothing past its first check.
    for seed in target.seeds(corpus()):
        if target.name == "consensus-machine":
            # A stateful target: seeds decide height 1, after which the rest are refused as out of window.
            assert decode_message(seed).height >= 1
            check(target, seed)
        else:
            assert target.run(seed, corpus()) is not None
