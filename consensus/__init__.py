"""Tendermint BFT as a pure state machine (no asyncio, sockets, lmdb or wall clock)."""
