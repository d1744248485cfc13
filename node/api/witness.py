"""`POST /add-checkpoint`: this node as a C2SP tlog-witness of the logs its `[witness]` config lists.

The decision is `ledger.witness.add_checkpoint` (pure); this module reads the bounded body, runs the decision in a
worker thread (Ed25519 checks and an fsynced LMDB write must not hold up the event loop), and writes the answer:
200 with the cosignature lines, 409 as `text/x.tlog.size` with the size the witness holds (the spec's body, so a
log can resubmit from there), and every other refusal as an RFC 9457 problem with the spec's status -- among them
the 409 of a fork (the size the witness holds with another root), for which the spec defines no body. The record
of each log lives in `ledger.storage.witnessstate` under the node's data directory, so it survives restarts.

`GET /witnessed-checkpoint?origin=` shows what the witness holds for a log: the checkpoint it last cosigned, with the
log's signatures and its own cosignature, so a monitor can hold it against what the log's nodes serve.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from credledger.ledger.errors import ConfigError, DecodeError
from credledger.ledger.keys import PublicKey, SigningKey
from credledger.ledger.limits import MAX_ORIGIN
from credledger.ledger.storage.witnessstate import WitnessStore
from credledger.ledger.witness import (
    COSIGNATURE_CONTENT_TYPE,
    MAX_REQUEST_BYTES,
    SIZE_CONTENT_TYPE,
    Cosigned,
    WitnessedLog,
    add_checkpoint,
)
from credledger.node.api.problems import Problem
from credledger.node.config import WitnessConfig
from credledger.node.witnessing import Witnessing

#: The folder of the node's data directory that holds the witness's records.
STATE_DIR = "witness"
#: How long a client may take to send its (small) request body.
READ_TIMEOUT_S = 10.0
#: How long the checkpoint submitter may take to stop when the node does.
STOP_TIMEOUT_S = 3.0
#: The problem code of each refusal status (tlog-witness §add-checkpoint).
_CODES = {
    400: "malformed-checkpoint",
    403: "checkpoint-not-signed",
    404: "unknown-log",
    409: "conflicting-checkpoint",
    422: "inconsistent-checkpoint",
}


@dataclass
class Witness:
    """What the endpoint needs: the witnessed logs, the witness key, and (while the app runs) the state."""

    logs: Mapping[str, WitnessedLog]
    signer: SigningKey
    state_dir: Path
    state: WitnessStore | None = field(default=None)


WITNESS = web.AppKey("witness", Witness)
#: Present when the node submits its checkpoints to outside witnesses (`[witnesses]`).
WITNESSING = web.AppKey("witnessing", Witnessing)


def with_cosignatures(app: web.Application, height: int, certificate: str) -> str:
    """The certificate of `height` with the outside witnesses' cosignatures, if they cosigned it."""
    witnessing = app.get(WITNESSING)
    return certificate if witnessing is None else witnessing.note_for(height, certificate)


async def witnessing_task(app: web.Application) -> AsyncIterator[None]:
    """Submit checkpoints to the outside witnesses while the app runs (a `cleanup_ctx`)."""
    task = asyncio.create_task(app[WITNESSING].run())
    try:
        yield
    finally:
        task.cancel()
        # Bounded, and not by suppressing CancelledError: that also swallowed a cancellation aimed at this clean-up.
        await asyncio.wait([task], timeout=STOP_TIMEOUT_S)
        if task.done() and not task.cancelled():
            task.result()  # it ends only by cancellation; anything else is a bug, raised here


def load_witness(config: WitnessConfig, data_dir: Path) -> Witness | None:
    """The witness `[witness]` configures (None if it lists no log); `ConfigError` names a wrong setting."""
    if not config.logs:
        return None
    logs: dict[str, WitnessedLog] = {}
    for number, entry in enumerate(config.logs):
        where = f"witness.logs[{number}]"
        if not entry.origin or len(entry.origin) > MAX_ORIGIN or not entry.origin.isprintable():
            raise ConfigError(f"{where}.origin: expected one printable line of 1 to {MAX_ORIGIN} characters")
        if entry.origin in logs:
            raise ConfigError(f"{where}.origin: {entry.origin!r} is listed twice")
        try:
            keys = tuple(PublicKey.from_vkey(v) for v in entry.vkeys)
            logs[entry.origin] = WitnessedLog(entry.origin, keys, entry.quorum)
        except (DecodeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
    try:
        signer = SigningKey.from_skey(config.key.read_text())
    except FileNotFoundError:
        raise ConfigError(f"witness key file {config.key} does not exist") from None
    except (OSError, DecodeError) as exc:
        raise ConfigError(f"witness key file {config.key}: {exc}") from None
    return Witness(logs, signer, data_dir / STATE_DIR)


async def witness_state(app: web.Application) -> AsyncIterator[None]:
    """Open the witness's records while the app runs (a `cleanup_ctx`)."""
    witness = app[WITNESS]
    witness.state = WitnessStore(witness.state_dir)
    try:
        yield
    finally:
        witness.state.close()
        witness.state = None


async def post_add_checkpoint(request: web.Request) -> web.Response:
    """Cosign a checkpoint consistent with the last one this witness cosigned for its log, or refuse it."""
    witness = request.app.get(WITNESS)
    if witness is None or witness.state is None:
        raise Problem(404, "not-a-witness", "this node witnesses no log: its [witness] config lists none")
    body = await _read_body(request)
    answer = await asyncio.to_thread(
        add_checkpoint, body, witness.logs, witness.state, [witness.signer], int(time.time())
    )
    if isinstance(answer, Cosigned):
        return web.Response(body=answer.body(), headers={"Content-Type": COSIGNATURE_CONTENT_TYPE})
    if answer.known_size is not None:
        return web.Response(status=409, body=answer.body(), headers={"Content-Type": SIZE_CONTENT_TYPE})
    raise Problem(answer.status, _CODES.get(answer.status, "witness-refused"), answer.detail)


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        raise _too_large(request.content_length)
    chunks: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(READ_TIMEOUT_S):
            while chunk := await request.content.readany():
                total += len(chunk)
                if total > MAX_REQUEST_BYTES:
                    raise _too_large(total)
                chunks.append(chunk)
    except TimeoutError:
        raise Problem(408, "body-timeout", f"the request body did not arrive within {READ_TIMEOUT_S:g} s") from None
    return b"".join(chunks)


def _too_large(size: int) -> Problem:
    return Problem(413, "body-too-large", f"{size} bytes exceeds the add-checkpoint limit of {MAX_REQUEST_BYTES}")


async def get_witnessed_checkpoint(request: web.Request) -> web.Response:
    """The checkpoint this witness last cosigned for the log `origin`, with the log's signatures and its own."""
    witness = request.app.get(WITNESS)
    if witness is None or witness.state is None:
        raise Problem(404, "not-a-witness", "this node witnesses no log: its [witness] config lists none")
    origin = request.query.get("origin")
    if origin is None or not origin or len(origin) > MAX_ORIGIN or not origin.isprintable():
        raise Problem(400, "bad-origin", f"give origin=<the log's origin line>, 1 to {MAX_ORIGIN} printable characters")
    if origin not in witness.logs:
        raise Problem(404, "unknown-log", f"this node does not witness the log {origin!r}")
    record = await asyncio.to_thread(witness.state.get, origin)
    if record is None or not record.note:
        raise Problem(404, "no-checkpoint", f"this witness has cosigned no checkpoint of {origin!r} yet")
    headers = {"Cache-Control": "no-cache"}
    return web.Response(text=record.note, content_type="text/plain", charset="utf-8", headers=headers)
