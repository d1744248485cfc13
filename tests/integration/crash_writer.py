"""Child process for the crash test: commits deterministic blocks forever, printing each committed height."""

from __future__ import annotations

import sys
from pathlib import Path

from credledger.ledger.storage.store import Store
from tests.blocks import commit
from tests.crash_chain import NETWORK, events_for


def main(path: str) -> None:
    store = Store(Path(path))
    store.initialize(NETWORK.genesis)
    while True:
        height = store.height() + 1
        commit(store, NETWORK, *events_for(height))
        sys.stdout.write(f"{height}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
