"""The `credledger` command line."""
