"""`POST /add-checkpoint`: a node as a C2SP tlog-witness over real HTTP, with its record in a real LMDB file.

Each refusal is checked for the spec's status and a precise message, and for leaving the record where it was.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import ClientResponse

from credledger.ledger.cosignature import CosignerKey, verify_cosignature
from credledger.ledger.errors import ConfigError
from credledger.ledger.keys import SigningKey
from credledger.ledger.merkle import consistency_path, leaf_hash, root_from_leaf_hashes
from credledger.ledger.note import SignedNote, sign_note
from credledger.ledger.storage.witnessstate import WitnessStore
from credledger.ledger.treehead import TreeHead
from credledger.ledger.witness import MAX_REQUEST_BYTES, LogRecord, add_checkpoint_body
from credledger.node.api.witness import load_witness
from credledger.node.config import WitnessConfig, WitnessedLogConfig, parse_config
from tests.apinode import ApiNode, api_node, problem_of
from tests.factories import key_for

ORIGIN = "example.test/log"
LOG_KEYS = [key_for(ORIGIN, "log a"), key_for(ORIGIN, "log b")]
STRANGER = SigningKey(ORIGIN, b"\x07" * 32)  # the log's name, another key
WITNESS = key_for("witness.test/w1", "witness")
LEAVES = [leaf_hash(f"entry {i}".encode()) for i in range(64)]
FORK = [leaf_hash(f"forked {i}".encode()) for i in range(64)]


def checkpoint(size: int, *, leaves: list[bytes] = LEAVES, keys: list[SigningKey] | None = None) -> SignedNote:
    head = TreeHead(ORIGIN, size, root_from_leaf_hashes(leaves[:size]), ())
    return SignedNote(head.body(), tuple(sign_note(head.body(), k) for k in keys or LOG_KEYS[:2]))


def request(old: int, size: int, *, leaves: list[bytes] = LEAVES, keys: list[SigningKey] | None = None) -> bytes:
    proof = consistency_path(leaves[:size], old) if 0 < old < size else []
    return add_checkpoint_body(old, proof, checkpoint(size, leaves=leaves, keys=keys))


def witness_config(tmp_path: Path) -> WitnessConfig:
    key = tmp_path / "witness.key"
    if not key.exists():
        key.write_text(WITNESS.skey())
    vkeys = tuple(k.public.vkey() for k in LOG_KEYS)
    return WitnessConfig(key=key, logs=(WitnessedLogConfig(ORIGIN, vkeys, 2),))


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path, witness=witness_config(tmp_path)) as n:
        yield n


async def post(node: ApiNode, body: bytes) -> ClientResponse:
    return await node.client.post("/add-checkpoint", data=body)


async def cosigned(response: ClientResponse, size: int, leaves: list[bytes] = LEAVES) -> None:
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    note = checkpoint(size, leaves=leaves)
    lines = SignedNote.parse(note.text.encode() + b"\n" + await response.read()).signatures
    assert len(lines) == 1
    assert verify_cosignature(note.text, lines[0], CosignerKey.of(WITNESS)).timestamp > 0


async def record_of(node: ApiNode) -> tuple[int, str]:
    """The size the witness holds, as its 409 answer to an old size it cannot hold says."""
    response = await post(node, request(63, 64))
    if response.status == 200:
        raise AssertionError("the probe must not be cosigned")
    assert response.status == 409, await response.text()
    return int((await response.text()).strip()), response.headers["Content-Type"]


async def test_a_witness_cosigns_a_first_checkpoint_then_only_consistent_extensions(node: ApiNode) -> None:
    await cosigned(await post(node, request(0, 8)), 8)
    await cosigned(await post(node, request(8, 20)), 20)
    await cosigned(await post(node, request(20, 20)), 20)  # the same checkpoint again: cosigned again
    assert await record_of(node) == (20, "text/x.tlog.size")


async def test_a_stale_old_size_gets_409_with_the_size_the_witness_holds(node: ApiNode) -> None:
    await cosigned(await post(node, request(0, 8)), 8)
    response = await post(node, request(0, 12))
    assert response.status == 409
    assert response.headers["Content-Type"] == "text/x.tlog.size"
    assert await response.read() == b"8\n"


async def test_a_fork_of_a_cosigned_size_is_refused_and_never_cosigned(node: ApiNode) -> None:
    await cosigned(await post(node, request(0, 8)), 8)
    same_size = request(8, 8, leaves=FORK)
    await problem_of(await post(node, same_size), 409, "conflicting-checkpoint", "a fork of what the witness holds")
    larger = request(8, 16, leaves=FORK)
    await problem_of(await post(node, larger), 422, "inconsistent-checkpoint", "from 8 to 16: expected new root")
    assert await record_of(node) == (8, "text/x.tlog.size")


BAD_BODIES = [
    (b"", 400, "malformed-checkpoint", "no blank line"),
    (b"old 01\n\n" + checkpoint(1).format().encode(), 400, "malformed-checkpoint", "without leading zeros"),
    (b"old 0\nnot-base64!\n\n" + checkpoint(1).format().encode(), 400, "malformed-checkpoint", "proof line 1"),
    (
        b"old 1\n" + b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + b"\n" + checkpoint(9).format().encode(),
        400,
        "malformed-checkpoint",
        "64 proof lines exceeds the limit of 63",
    ),
    (request(9, 8), 400, "malformed-checkpoint", "old size 9 is larger than the checkpoint size 8"),
]


@pytest.mark.parametrize(("body", "status", "code", "detail"), BAD_BODIES, ids=lambda v: str(v)[:30])
async def test_malformed_bodies_get_400_naming_the_fault(
    node: ApiNode, body: bytes, status: int, code: str, detail: str
) -> None:
    await cosigned(await post(node, request(0, 4)), 4)
    await problem_of(await post(node, body), status, code, detail)
    assert await record_of(node) == (4, "text/x.tlog.size")


async def test_an_unknown_origin_is_404(node: ApiNode) -> None:
    head = TreeHead("other.test/log", 1, LEAVES[0], ())
    note = SignedNote(head.body(), (sign_note(head.body(), key_for("other.test/log", "k")),))
    await problem_of(
        await post(node, add_checkpoint_body(0, [], note)), 404, "unknown-log", "unknown log origin 'other.test/log'"
    )


async def test_a_checkpoint_without_the_logs_quorum_of_signatures_is_403(node: ApiNode) -> None:
    only_one = request(0, 4, keys=[LOG_KEYS[0]])
    await problem_of(
        await post(node, only_one), 403, "checkpoint-not-signed", "1 valid signatures from its keys, needs 2"
    )
    unknown_keys = request(0, 4, keys=[STRANGER, LOG_KEYS[1]])
    await problem_of(await post(node, unknown_keys), 403, "checkpoint-not-signed", "needs 2")
    assert await record_of(node) == (0, "text/x.tlog.size")


async def test_a_bad_signature_of_a_log_key_is_403_even_beside_a_quorum_of_good_ones(node: ApiNode) -> None:
    note = checkpoint(4, keys=LOG_KEYS)
    first = note.signatures[0]
    forged = replace(first, signature=bytes([first.signature[0] ^ 1]) + first.signature[1:])
    body = add_checkpoint_body(0, [], replace(note, signatures=(forged, *note.signatures[1:])))
    key = f"{LOG_KEYS[0].name}+{LOG_KEYS[0].public.key_id.hex()}"
    await problem_of(await post(node, body), 403, "checkpoint-not-signed", f"does not verify under key {key}")
    assert await record_of(node) == (0, "text/x.tlog.size")


async def test_a_smaller_size_than_the_witness_holds_is_refused(node: ApiNode) -> None:
    await cosigned(await post(node, request(0, 30)), 30)
    response = await post(node, request(10, 20))
    assert (response.status, await response.read()) == (409, b"30\n")
    await problem_of(await post(node, request(30, 20)), 400, "malformed-checkpoint", "larger than the checkpoint size")
    assert await record_of(node) == (30, "text/x.tlog.size")


async def test_a_consistency_proof_that_does_not_verify_is_422(node: ApiNode) -> None:
    await cosigned(await post(node, request(0, 10)), 10)
    good = consistency_path(LEAVES[:40], 10)
    bad = [good[0], bytes(32), *good[2:]]
    body = add_checkpoint_body(10, bad, checkpoint(40))
    await problem_of(await post(node, body), 422, "inconsistent-checkpoint", "from 10 to 40: expected new root")
    assert await record_of(node) == (10, "text/x.tlog.size")


async def test_an_oversized_body_is_413_before_it_is_read(node: ApiNode) -> None:
    await problem_of(
        await post(node, b"old 0\n" + b"A" * MAX_REQUEST_BYTES), 413, "body-too-large", f"limit of {MAX_REQUEST_BYTES}"
    )


async def test_the_record_survives_a_restart_of_the_witness(tmp_path: Path) -> None:
    async with api_node(tmp_path, witness=witness_config(tmp_path)) as first:
        await cosigned(await post(first, request(0, 16)), 16)
    async with api_node(tmp_path, witness=witness_config(tmp_path)) as restarted:
        assert await record_of(restarted) == (16, "text/x.tlog.size")
        await problem_of(await post(restarted, request(16, 16, leaves=FORK)), 409, "conflicting-checkpoint", "fork")
        await cosigned(await post(restarted, request(16, 17)), 17)


async def test_a_node_without_witness_config_answers_404(tmp_path: Path) -> None:
    async with api_node(tmp_path) as plain:
        await problem_of(await post(plain, request(0, 1)), 404, "not-a-witness", "witnesses no log")
        response = await plain.client.get("/witnessed-checkpoint", params={"origin": ORIGIN})
        await problem_of(response, 404, "not-a-witness", "witnesses no log")


async def held(node: ApiNode) -> SignedNote:
    """The checkpoint the witness shows it holds for ORIGIN."""
    response = await node.client.get("/witnessed-checkpoint", params={"origin": ORIGIN})
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-cache"
    return SignedNote.parse(await response.read())


async def test_the_witness_shows_the_checkpoint_it_holds_with_the_logs_signatures_and_its_cosignature(
    tmp_path: Path,
) -> None:
    async with api_node(tmp_path, witness=witness_config(tmp_path)) as node:
        response = await node.client.get("/witnessed-checkpoint", params={"origin": ORIGIN})
        await problem_of(response, 404, "no-checkpoint", f"cosigned no checkpoint of {ORIGIN!r} yet")
        stranger_line = sign_note(checkpoint(8).text, key_for("stranger.test", "k"))
        note = checkpoint(8)
        await cosigned(
            await post(node, add_checkpoint_body(0, [], replace(note, signatures=(*note.signatures, stranger_line)))), 8
        )
        shown = await held(node)
        assert shown.text == note.text
        assert shown.signatures[:2] == note.signatures  # the log's lines it verified; not the stranger's
        (line,) = shown.signatures[2:]
        assert verify_cosignature(note.text, line, CosignerKey.of(WITNESS)).timestamp > 0
        await problem_of(await post(node, request(8, 8, leaves=FORK)), 409, "conflicting-checkpoint", "fork")
        assert (await held(node)).text == note.text  # a refused fork changes nothing
    async with api_node(tmp_path, witness=witness_config(tmp_path)) as restarted:
        assert (await held(restarted)).format() == shown.format()


@pytest.mark.parametrize(
    ("params", "status", "code", "detail"),
    [
        ({}, 400, "bad-origin", "give origin=<the log's origin line>"),
        ({"origin": "a\nb"}, 400, "bad-origin", "printable"),
        ({"origin": "other.test/log"}, 404, "unknown-log", "does not witness the log 'other.test/log'"),
    ],
)
async def test_asking_the_witness_for_a_log_it_cannot_show_is_a_problem(
    node: ApiNode, params: dict[str, str], status: int, code: str, detail: str
) -> None:
    await problem_of(await node.client.get("/witnessed-checkpoint", params=params), status, code, detail)


def test_the_store_never_moves_backwards_nor_gives_a_size_two_roots(tmp_path: Path) -> None:
    state = WitnessStore(tmp_path / "w")
    try:
        ten = LogRecord(10, root_from_leaf_hashes(LEAVES[:10]))
        assert state.compare_and_set(ORIGIN, None, ten)
        assert not state.compare_and_set(ORIGIN, None, ten)  # not the expected record any more
        assert not state.compare_and_set(ORIGIN, ten, LogRecord(9, root_from_leaf_hashes(LEAVES[:9])))
        assert not state.compare_and_set(ORIGIN, ten, LogRecord(10, root_from_leaf_hashes(FORK[:10])))
        assert state.get(ORIGIN) == ten
        assert state.compare_and_set(ORIGIN, ten, LogRecord(11, root_from_leaf_hashes(LEAVES[:11])))
        assert state.get(ORIGIN) == LogRecord(11, root_from_leaf_hashes(LEAVES[:11]))
    finally:
        state.close()


def test_the_witness_table_of_node_toml_lists_logs_and_resolves_the_key_file(tmp_path: Path) -> None:
    vkeys = ", ".join(f'"{k.public.vkey()}"' for k in LOG_KEYS)
    text = f"""
member_id = "m0.test"
data_dir = "data"
genesis = "genesis.json"
node_key = "node.key"

[witness]
key = "keys/witness.key"

[[witness.logs]]
origin = "{ORIGIN}"
vkeys = [{vkeys}]
quorum = 2
"""
    config = parse_config(text, tmp_path, {})
    assert config.witness.key == tmp_path / "keys" / "witness.key"
    (tmp_path / "keys").mkdir()
    config.witness.key.write_text(WITNESS.skey())
    witness = load_witness(config.witness, config.data_dir)
    assert witness is not None and witness.signer.name == WITNESS.name
    assert witness.logs[ORIGIN].quorum == 2 and witness.logs[ORIGIN].keys == tuple(k.public for k in LOG_KEYS)


@pytest.mark.parametrize(
    ("log", "why"),
    [
        (WitnessedLogConfig(ORIGIN, (LOG_KEYS[0].public.vkey(),), 2), "witness.logs[0]: log example.test/log: sig"),
        (WitnessedLogConfig(ORIGIN, ("not a vkey",), 1), "witness.logs[0]: "),
        (WitnessedLogConfig("", (LOG_KEYS[0].public.vkey(),), 1), "witness.logs[0].origin: expected one printable"),
    ],
)
def test_a_wrong_witnessed_log_is_a_config_error_naming_it(tmp_path: Path, log: WitnessedLogConfig, why: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(why)):
        load_witness(WitnessConfig(key=tmp_path / "missing.key", logs=(log,)), tmp_path)


def test_a_missing_witness_key_file_is_a_config_error(tmp_path: Path) -> None:
    log = WitnessedLogConfig(ORIGIN, (LOG_KEYS[0].public.vkey(),), 1)
    with pytest.raises(ConfigError, match=r"witness key file .*missing\.key does not exist"):
        load_witness(WitnessConfig(key=tmp_path / "missing.key", logs=(log,)), tmp_path)
