"""credledger's ledger: pure data, hashing, verification and storage.

The verification modules (`merkle`, `smt`, `note`, `proof`) are pure functions over bytes so that third-party
verifiers can import them without a server.
"""
