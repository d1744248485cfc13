"""Child process for the crash tests: commits deterministic blocks forever, printing each committed height.

Arguments: the store's path, and optionally a bounded state history (blocks) to commit with.
"""

from __future__ import annotations

import sys
from pathlib import Path

from credledger.ledger.storage.store import Store
from tests.blocks import commit
from tests.crash_chain import NETWORK, events_for


def main(path: str, state_history: int | None = None) -> None:
    store = Store(Path(path), state_history=state_history)
    store.initialize(NETWORK.genesis)
    while True:
        height = store.height() + 1
        commit(store, NETWORK, *events_for(height))
        sys.stdout.write(f"{height}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else None)
