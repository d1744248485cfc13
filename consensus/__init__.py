"""Tendermint BFT as a pure state machine (no asyncio, sockets, lmdb or wall clock).

- `consensus.machine.Machine`: `start(height, now_ms)`, `handle(message, now_ms)`, `on_timeout(timeout, now_ms)`,
  `wake(now_ms)`, `commit_certified(certified, now_ms)`; each returns the actions to execute, in order.
- `consensus.actions`: `Broadcast`, `ScheduleTimeout`, `PersistSafety` (durable before anything after it),
  `RecordEvidence`, `Decide`.
- `consensus.app.Application`: what the machine asks of the ledger.
- `consensus.proposer.ProposerSchedule`: weighted round-robin proposers, stored beside each block.
- `consensus.safety.SafetyRecord`: the double-sign guard a restarted validator is built from.
- The signed message formats and evidence live in `ledger.votes`, so anyone can verify them.
"""
