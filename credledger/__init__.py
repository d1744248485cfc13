"""credledger: a permissioned, append-only, hash-chained ledger for credentials.

The product's packages are the repository's top-level folders; this package links them under one namespace
(`credledger.ledger`, `credledger.consensus`, `credledger.node`, `credledger.verifier`, `credledger.cli`), which is
all that `pip install` puts at the top level.
"""
