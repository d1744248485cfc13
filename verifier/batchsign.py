"""Signing standard credentials in bulk (`issue --batch --sign`): each unsigned VC 2.0 / Open Badges 3.0
credential is filled in and signed ``eddsa-rdfc-2022`` as `credledger issue --sign` does one (DESIGN §13).

Status entries: each credential takes a random free entry of the member's first list less than half full. The
entries this batch took are remembered, so two credentials of one batch never draw the same one (with 10,000 in
a list of 131,072 entries, random draws would collide hundreds of times); an entry the ledger already holds is
refused there (`status-entry-used`) and the batch signs that credential again with another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from credledger.ledger.keys import SigningKey
from credledger.ledger.state import MemberRecord
from credledger.ledger.vc.issuing import choose_status_entry, prepare_credential, sign_issued
from credledger.verifier.batch import Signer


def standard_signer(member: MemberRecord, key: SigningKey, used: Sequence[int]) -> Signer:
    """A `Signer` for `member` with its issuer `key`; `used[L]` is how many entries of list L the ledger holds."""
    counts = list(used)
    taken: set[tuple[int, int]] = set()

    def sign(document: dict[str, Any]) -> tuple[str, int, int]:
        list_number, index = choose_status_entry(counts, lambda lst, i: (lst, i) in taken)
        taken.add((list_number, index))
        while len(counts) <= list_number:
            counts.append(0)
        counts[list_number] += 1
        now_ms = int(time.time() * 1000)
        signed = sign_issued(prepare_credential(document, member, list_number, index, now_ms), member, key, now_ms)
        return json.dumps(signed, indent=2, ensure_ascii=False) + "\n", list_number, index

    return Signer(sign)
