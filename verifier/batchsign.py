"""Signing standard credentials in bulk (`issue --batch --sign`): each unsigned VC 2.0 / Open Badges 3.0
credential is filled in and signed ``eddsa-rdfc-2022`` as `credledger issue --sign` does one (DESIGN §13).

Status entries: each credential takes a random free entry of the member's first list less than half full. The
entries are drawn here, in the issuing process, and the batch's own are remembered, so two credentials of one batch
never draw the same one (with 10,000 in a list of 131,072 entries, independent draws would collide hundreds of
times); an entry the ledger already holds is refused there (`status-entry-used`) and the batch signs that credential
again with another.

Signing costs milliseconds per credential (three RDFC-1.0 canonicalisations), so with `workers` > 1 the documents
are signed in that many worker processes (spawned, so they inherit none of the issuing process's threads).
"""

from __future__ import annotations

import json
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from credledger.ledger.errors import CredledgerError
from credledger.ledger.keys import SigningKey
from credledger.ledger.state import MemberRecord
from credledger.ledger.vc.issuing import choose_status_entry, prepare_credential, sign_issued
from credledger.verifier.batch import Signer

#: Documents a worker signs per task.
TASK_SIZE = 25

_worker_keys: dict[str, SigningKey] = {}


def standard_signer(member: MemberRecord, key: SigningKey, used: Sequence[int], *, workers: int = 1) -> Signer:
    """A `Signer` for `member` with its issuer `key`; `used[L]` is how many entries of list L the ledger holds."""
    counts = list(used)
    taken: set[tuple[int, int]] = set()
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else None
    skey = key.skey()

    def sign(documents: Sequence[dict[str, Any]]) -> list[tuple[str, int, int] | str]:
        tasks = []
        for document in documents:
            list_number, index = choose_status_entry(counts, lambda lst, i: (lst, i) in taken)
            taken.add((list_number, index))
            while len(counts) <= list_number:
                counts.append(0)
            counts[list_number] += 1
            tasks.append((document, member, list_number, index, int(time.time() * 1000), skey))
        if pool is None:
            return [_sign_one(task) for task in tasks]
        return list(pool.map(_sign_one, tasks, chunksize=TASK_SIZE))

    def close() -> None:
        if pool is not None:
            pool.shutdown(cancel_futures=True)

    return Signer(sign, close)


def _sign_one(task: tuple[dict[str, Any], MemberRecord, int, int, int, str]) -> tuple[str, int, int] | str:
    """Sign one document (in a worker process, or in the caller's); a refusal comes back as its reason."""
    document, member, list_number, index, now_ms, skey = task
    key = _worker_keys.get(skey)
    if key is None:
        key = _worker_keys[skey] = SigningKey.from_skey(skey)
    try:
        signed = sign_issued(prepare_credential(document, member, list_number, index, now_ms), member, key, now_ms)
    except (CredledgerError, ValueError) as exc:
        return str(exc)
    return json.dumps(signed, indent=2, ensure_ascii=False) + "\n", list_number, index
