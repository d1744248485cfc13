"""Regression tests for what the fuzzers found: each input that once escaped as a stray exception (an internal
error with a traceback) is now refused as a `DecodeError` naming where it was, or as a 400 problem."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from credledger.ledger import encoding
from credledger.ledger.block import decode_header
from credledger.ledger.bundle import Bundle
from credledger.ledger.errors import ConfigError, DecodeError
from credledger.ledger.eventjson import event_from_json, event_to_json
from credledger.ledger.genesis import parse_genesis
from credledger.ledger.keys import PublicKey, SigningKey
from credledger.ledger.note import Checkpoint, SignedNote, sign_note
from credledger.ledger.tlogproof import MAX_TLOG_PROOF_BYTES, TlogProof
from credledger.ledger.treehead import TreeHead
from credledger.node.config import (
    MAX_CONFIG_BYTES,
    WitnessConfig,
    WitnessedLogConfig,
    load_config,
    parse_config,
)
from credledger.node.sync import read_peer_height
from credledger.verifier.client import NodeClient, NodeUnreachable
from tests.apinode import ApiNode, api_node, problem_of
from tests.factories import T0, digest, issue, make_member
from tests.fuzz.corpus import corpus

#: A non-ASCII character where base64 is expected: `base64.b64decode` raises a bare ValueError for it.
NON_ASCII = "\u0084"


@pytest.mark.parametrize("text", [NON_ASCII, "QUJD\u00e9", "\uff21\uff21==", "AA==\n", " AAA", "AAB=", "A"])
def test_base64_text_that_is_not_canonical_standard_base64_is_a_decode_error(text: str) -> None:
    with pytest.raises(DecodeError, match=r"^field: expected (canonical )?standard base64"):
        encoding.from_base64(text, "field")


@pytest.mark.parametrize("text", ["\u0660\u0661", "AB", "a b", "abc", "0x12", "\u00e9\u00e9"])
def test_hex_text_that_is_not_lowercase_hex_is_a_decode_error(text: str) -> None:
    with pytest.raises(DecodeError, match=r"^field: expected lowercase hex"):
        encoding.from_hex(text, "field")


def test_canonical_base64_and_hex_decode_to_their_bytes() -> None:
    assert encoding.from_base64("AAE=", "field") == b"\x00\x01"
    assert encoding.from_base64("AAF=", "field", canonical=False) == b"\x00\x01"
    assert encoding.from_hex("00ff", "field") == b"\x00\xff"


def _event_json() -> dict[str, Any]:
    return event_to_json(issue(make_member("m0.test"), digest("a"), time_ms=T0))


def _set_sig(doc: dict[str, Any]) -> None:
    doc["signatures"][0]["sig"] = NON_ASCII


def _set_digest(doc: dict[str, Any]) -> None:
    doc["payload"]["digest"] = "\u0660" * 64


def _set_key_id(doc: dict[str, Any]) -> None:
    doc["signatures"][0]["key_id"] = "ab cd ef"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (_set_sig, "event.signatures[0].sig"),
        (_set_digest, "event.payload.digest"),
        (_set_key_id, "event.signatures[0].key_id"),
    ],
)
def test_non_ascii_text_in_a_json_events_bytes_fields_is_a_decode_error_naming_the_field(
    mutate: Callable[[dict[str, Any]], None], where: str
) -> None:
    doc = _event_json()
    mutate(doc)
    with pytest.raises(DecodeError) as refused:
        event_from_json(doc)
    assert str(refused.value).startswith(f"{where}: expected")


def test_non_ascii_base64_in_a_notes_signature_line_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="signature of a: expected standard base64"):
        SignedNote.parse(f"text\n\n\u2014 a {NON_ASCII}\n")


def test_non_ascii_base64_in_a_checkpoint_root_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="checkpoint: root hash: expected standard base64"):
        Checkpoint.parse(f"origin\n1\n{NON_ASCII}\ncredledger 1 0 {'A' * 43}=\n")


def test_non_ascii_in_a_verifier_key_is_a_decode_error() -> None:
    key = SigningKey("m0.test", bytes(32)).public
    name, key_id, blob = key.vkey().split("+")
    with pytest.raises(DecodeError, match="key: expected standard base64"):
        PublicKey.from_vkey(f"{name}+{key_id}+{blob[:-1]}{NON_ASCII}")
    with pytest.raises(DecodeError, match="key id: expected lowercase hex"):
        PublicKey.from_vkey(f"{name}+\u0660\u0661\u0662\u0663+{blob}")
    with pytest.raises(DecodeError, match="key: expected standard base64"):
        SigningKey.from_skey(f"PRIVATE+KEY+{name}+{key_id}+{NON_ASCII}")


def test_non_ascii_base64_in_a_proof_bundle_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="bundle: header: expected standard base64"):
        Bundle.from_json(
            json.dumps(
                {
                    "format": "credledger-proof/v1",
                    "origin": "o",
                    "genesis": "00" * 32,
                    "digest": "00" * 32,
                    "checkpoint": "",
                    "header": NON_ASCII,
                    "validators": [],
                    "events": [],
                    "credential": None,
                    "issuer": None,
                }
            )
        )


def test_non_ascii_base64_in_a_tlog_proof_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="tlog-proof: extra data: expected standard base64"):
        TlogProof.parse(f"c2sp.org/tlog-proof@v1\nextra {NON_ASCII}\nindex 0\n\nnote\n")
    with pytest.raises(DecodeError, match="tlog-proof: inclusion proof hash: expected standard base64"):
        TlogProof.parse(f"c2sp.org/tlog-proof@v1\nindex 0\n{NON_ASCII}\n\nnote\n")


def test_a_tlog_proof_over_its_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(DecodeError, match="exceeds the limit"):
        TlogProof.parse("c2sp.org/tlog-proof@v1\n" + "A" * MAX_TLOG_PROOF_BYTES)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[ApiNode]:
    async with api_node(tmp_path) as n:
        yield n


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"event": {"encoded": NON_ASCII}}, "event.encoded: expected standard base64"),
        ({"events": [{"encoded": NON_ASCII}]}, "events[0].encoded: expected standard base64"),
    ],
)
async def test_non_ascii_where_an_encoded_event_is_expected_is_a_400_problem(
    node: ApiNode, body: dict[str, Any], detail: str
) -> None:
    response = await node.client.post("/v1/events", json=body)
    await problem_of(response, 400, "malformed", detail)
    assert len(node.application.mempool) == 0 and node.log_size() == 0


async def test_non_ascii_in_a_json_events_signature_is_a_400_problem(node: ApiNode) -> None:
    doc = _event_json()
    _set_sig(doc)
    response = await node.client.post("/v1/events", json={"event": doc})
    await problem_of(response, 400, "malformed", "event.signatures[0].sig: expected standard base64")
    assert len(node.application.mempool) == 0 and node.log_size() == 0


def test_non_ascii_where_an_evidence_payload_carries_its_record_is_a_decode_error() -> None:
    # The evidence payload carries a record as base64 of its canonical encoding.
    doc = _event_json()
    doc["payload"] = {"kind": "evidence", "evidence": NON_ASCII}
    with pytest.raises(DecodeError, match=r"^event\.payload\.evidence: expected base64 of a canonical Evidence"):
        event_from_json(doc)


# --- found by the decoder fuzzers -----------------------------------------------------------------------------


def test_a_header_whose_origin_is_not_one_printable_line_does_not_decode() -> None:
    # A peer serving such a block during catch-up once reached the checkpoint check as a ValueError, which the
    # consensus driver treats as its own failure and halts on.
    header = decode_header(corpus().headers[0])
    for origin in ("\x00redledger.test/unit", "two\nlines", "tab\there"):
        forged = replace_origin(header.encode(), header.origin, origin)
        with pytest.raises(DecodeError, match=r"header origin .* must be one printable line"):
            decode_header(forged)


def replace_origin(encoded: bytes, old: str, new: str) -> bytes:
    """The header bytes with its origin string (msgpack fixstr) replaced by another of the same length."""
    assert len(new.encode()) < 32
    start = encoded.index(old.encode()) - 1
    return encoded[:start] + msgpack.packb(new) + encoded[start + 1 + len(old.encode()) :]


def test_genesis_json_nested_too_deeply_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nested too deeply"):
        parse_genesis("[" * 100_000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"a = " + b"[" * 100_000, "nested too deeply"),
        (b'member_id = "\xff"', "not UTF-8"),
        (b'member_id = "a"\ndata_dir = "\\u0000"\ngenesis = "g"\nnode_key = "k"\n', "data_dir: expected a path string"),
        (b"#" * (MAX_CONFIG_BYTES + 1), "exceeds the limit"),
    ],
)
def test_config_text_that_cannot_be_a_config_is_a_config_error(text: bytes, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(text, tmp_path, {})
    path = tmp_path / "node.toml"
    path.write_bytes(text)
    with pytest.raises(ConfigError, match=f"config file {path}: .*{message}"):
        load_config(path, env={})


def test_a_config_path_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(tmp_path, env={})


def test_a_node_answering_json_nested_too_deeply_is_unreachable_not_a_traceback() -> None:
    deep = b"[" * 100_000

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(deep)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = NodeClient(f"http://127.0.0.1:{server.server_address[1]}", timeout=5)
        with pytest.raises(NodeUnreachable, match="malformed JSON"):
            client.status()
    finally:
        server.shutdown()
        server.server_close()


async def test_a_peer_status_nested_too_deeply_counts_as_no_height() -> None:
    async def status(_request: web.Request) -> web.Response:
        return web.Response(body=b"[" * 60_000, content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/status", status)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            assert await read_peer_height(session, str(server.make_url("")).rstrip("/")) is None
    finally:
        await server.close()


def test_a_tree_head_whose_root_line_is_not_ascii_is_a_decode_error() -> None:
    # Found by the add-checkpoint target: TreeHead.parse handed the root line to b64decode, whose ValueError for
    # non-ASCII text escaped `add_checkpoint`, so a witness answered such a body with a 500.
    with pytest.raises(DecodeError, match=r"^checkpoint: root hash: expected standard base64"):
        TreeHead.parse(f"example.test/log\n1\n{NON_ASCII}\n")


async def test_add_checkpoint_with_a_non_ascii_root_is_a_400_problem(tmp_path: Path) -> None:
    log = SigningKey("example.test/log", bytes(32))
    (tmp_path / "witness.key").write_text(SigningKey("witness.test/w", b"\x01" * 32).skey())
    config = WitnessConfig(tmp_path / "witness.key", (WitnessedLogConfig(log.name, (log.public.vkey(),)),))
    text = f"{log.name}\n1\n{NON_ASCII * 44}\n"
    body = f"old 0\n\n{text}\n{sign_note(text, log).line()}".encode()
    async with api_node(tmp_path, witness=config) as node:
        response = await node.client.post("/add-checkpoint", data=body)
        await problem_of(response, 400, "malformed-checkpoint", "checkpoint: root hash: expected standard base64")
