"""A credledger node: HTTP API, peer transport, consensus driver, mempool and configuration."""
