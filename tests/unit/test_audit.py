"""Audit replay: a clean chain passes with the right summary; a data directory altered in any one event, header,
log node or state node is caught at the block the altered data belongs to; `--resume` extends a finished audit."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import shutil
from pathlib import Path
from unittest import mock

import pytest

from credledger.cli.main import main as run_cli
from credledger.cli.progress import Progress
from credledger.ledger import merkle
from credledger.ledger.block import decode_header
from credledger.ledger.events import Event, KeyAdd, MemberAdd, Reinstate, Revoke, Suspend, decode_event
from credledger.ledger.genesis import write_genesis
from credledger.ledger.note import SignedNote
from credledger.ledger.storage import schema
from credledger.ledger.storage.datadir import DataDir
from credledger.ledger.storage.smtupdate import group_prefix
from credledger.ledger.storage.store import Store
from credledger.verifier.audit import Auditor, AuditResult, read_checkpoint
from credledger.verifier.auditbatches import Keys, event_parts, verify_batch
from credledger.verifier.auditsource import NodeSource
from tests.apinode import api_node
from tests.blocks import commit
from tests.factories import T0, Network, by_governance, digest, issue, key_for, make_member, make_network, signed
from tests.forge import with_bad_signature

#: Heights of the chain `chain_dir` builds, by what happens in them.
ISSUES, NEW_MEMBER, NEWCOMER_ISSUES, STATUS_CHANGES, LAST = 1, 2, 4, 5, 6


@pytest.fixture(scope="module")
def network() -> Network:
    return make_network(4)


#: The state history of the pruned copy of the chain: the state as of heights LAST - 1 and LAST only.
PRUNED_HISTORY = 2


@pytest.fixture(scope="module")
def chain_dir(tmp_path_factory: pytest.TempPathFactory, network: Network) -> Path:
    """A closed data directory: issues, a new member that issues with its own and a freshly added key, statuses."""
    return build_chain(tmp_path_factory.mktemp("chain") / "ledger", network)


@pytest.fixture(scope="module")
def pruned_dir(tmp_path_factory: pytest.TempPathFactory, network: Network) -> Path:
    """The same chain committed by a node keeping the state of its last PRUNED_HISTORY blocks only."""
    return build_chain(tmp_path_factory.mktemp("pruned") / "ledger", network, state_history=PRUNED_HISTORY)


def build_chain(path: Path, network: Network, *, state_history: int | None = None) -> Path:
    store = Store(path, state_history=state_history)
    store.initialize(network.genesis)
    m0, m1 = network["m0.test"], network["m1.test"]
    commit(store, network, *(issue(m0 if i % 2 else m1, digest(f"c{i}")) for i in range(40)))
    newcomer = make_member("m9.test", 0)
    commit(store, network, by_governance(network, MemberAdd(**dataclasses.asdict(newcomer.add_payload()))))
    extra = key_for("m9.test", "issuer/extra")
    commit(store, network, signed(KeyAdd("m9.test", extra.public.raw), newcomer.issuer))
    commit(
        store,
        network,
        issue(newcomer, digest("n1")),
        issue(newcomer, digest("n2"), key=extra),
        issue(m0, digest("exp"), expires_ms=T0 + 2_000),
    )
    commit(
        store,
        network,
        signed(Revoke(digest("c1"), 4), m0.issuer),
        signed(Suspend(digest("c3"), 6), m0.issuer),
        signed(Suspend(digest("c5"), 6), m0.issuer),
    )
    commit(store, network, signed(Reinstate(digest("c5")), m0.issuer))
    assert store.height() == LAST
    store.close()
    return path


@pytest.fixture
def copy(tmp_path: Path, chain_dir: Path) -> Path:
    """A copy of the chain's data directory that a test may alter."""
    target = tmp_path / "copy"
    shutil.copytree(chain_dir, target)
    return target


def run_audit(
    path: Path, network: Network, state: Path, *, workers: int = 0, resume: bool = False, to: int | None = None
) -> AuditResult:
    source = DataDir(path)
    try:
        return Auditor(source, network.genesis, state, workers=workers).run(resume=resume, to_height=to)
    finally:
        source.close()


def alter(path: Path, db_name: bytes, key: bytes, change: object) -> None:
    """Overwrite one value in a closed data directory: `change(old bytes) -> new bytes`."""
    env = schema.open_env(path)
    db = env.open_db(db_name)
    with env.begin(write=True) as txn:
        old = txn.get(key, db=db)
        assert old is not None, f"no {key!r} in {db_name!r}"
        txn.put(key, change(bytes(old)), db=db)  # type: ignore[operator]
    env.close()


def flip(data: bytes, position: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 0x01
    return bytes(out)


def test_a_clean_chain_passes_with_the_summary(chain_dir: Path, network: Network, tmp_path: Path) -> None:
    # Tiny batches: the 20-event block is split over several worker tasks, and every block goes to the pool.
    with mock.patch("verifier.auditbatches.BATCH_EVENTS", 4):
        result = run_audit(chain_dir, network, tmp_path / "state", workers=2)
    assert result.clean, result.discrepancy
    assert (result.from_height, result.height, result.events) == (0, LAST, 49)
    assert result.event_kinds == {"issue": 43, "member.add": 1, "key.add": 1, "revoke": 1, "suspend": 2, "reinstate": 1}
    assert (result.members, result.validators) == (5, 4)
    assert result.credentials == {"valid": 40, "suspended": 1, "revoked": 1, "expired": 1}
    checkpoint = read_checkpoint(tmp_path / "state")
    assert checkpoint is not None and checkpoint["height"] == LAST and checkpoint["log_size"] == 49


def test_the_worker_check_agrees_with_the_rules(network: Network) -> None:
    good = issue(network["m0.test"], digest("a"))
    bad = with_bad_signature(issue(network["m0.test"], digest("b")))
    unknown = issue(make_member("zz.test"), digest("c"))
    result = verify_batch([good.encode(), bad.encode(), unknown.encode()], Keys(network.genesis).directory)
    assert result.verified == (merkle.leaf_hash(good.encode()),)
    assert [position for position, _ in result.bad] == [1]
    assert result.kinds == {"issue": 3}


def test_a_key_id_two_keys_claim_is_never_trusted(network: Network) -> None:
    keys = Keys(network.genesis)
    m0 = network["m0.test"]
    slot = ("m0.test", m0.issuer.key_id)
    assert keys.directory[slot] == m0.issuer.public.raw
    keys.learn([("m0.test", m0.issuer.public.raw)])  # the same key again changes nothing
    assert slot in keys.directory
    with mock.patch("credledger.verifier.auditbatches.key_id", return_value=m0.issuer.key_id):
        keys.learn([("m0.test", b"\x01" * 32)])
        keys.learn([("m0.test", m0.issuer.public.raw)])
    assert slot not in keys.directory


@pytest.mark.parametrize(("height", "index"), [(ISSUES, 7), (NEWCOMER_ISSUES, 43)])
def test_an_altered_event_is_caught_at_its_block(
    copy: Path, network: Network, tmp_path: Path, height: int, index: int
) -> None:
    alter(copy, schema.CHAIN_ENTRIES, schema.u64(index), lambda raw: flip(raw, len(raw) - 10))
    result = run_audit(copy, network, tmp_path / "state")
    with mock.patch("verifier.auditbatches.BATCH_EVENTS", 4):
        pooled = run_audit(copy, network, tmp_path / "pooled", workers=2)
    # The pool may not know a key added a few blocks before: the replay's rules name the bad signature then.
    assert pooled.discrepancy is not None
    assert (pooled.discrepancy.height, pooled.discrepancy.kind) == (height, "event-signature")
    assert "does not verify" in pooled.discrepancy.detail
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (height, "event-signature")
    assert f"event {index}" in result.discrepancy.detail
    assert result.height == height - 1  # everything before it was replayed and is summarised


def test_an_event_altered_beyond_decoding_is_caught_at_its_block(copy: Path, network: Network, tmp_path: Path) -> None:
    alter(copy, schema.CHAIN_ENTRIES, schema.u64(45), lambda raw: raw[:-1])
    result = run_audit(copy, network, tmp_path / "state", workers=2)
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (STATUS_CHANGES, "replay")


def test_an_altered_header_is_caught_at_its_block(copy: Path, network: Network, tmp_path: Path) -> None:
    def later(raw: bytes) -> bytes:
        header = decode_header(raw)
        return dataclasses.replace(header, time_ms=header.time_ms + 1).encode()

    alter(copy, schema.CHAIN_HEADERS, schema.u64(NEW_MEMBER), later)
    result = run_audit(copy, network, tmp_path / "state")
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (NEW_MEMBER, "header")
    alter(copy, schema.CHAIN_HEADERS, schema.u64(NEW_MEMBER), lambda raw: raw[:-2])
    undecodable = run_audit(copy, network, tmp_path / "state2")
    assert undecodable.discrepancy is not None
    assert (undecodable.discrepancy.height, undecodable.discrepancy.kind) == (NEW_MEMBER, "header")


def test_a_certificate_signed_by_too_few_is_caught(copy: Path, network: Network, tmp_path: Path) -> None:
    def weaker(raw: bytes) -> bytes:
        note = SignedNote.parse(raw.decode())
        return SignedNote(note.text, note.signatures[:2]).format().encode()

    alter(copy, schema.CHAIN_CERTS, schema.u64(STATUS_CHANGES), weaker)
    result = run_audit(copy, network, tmp_path / "state")
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (STATUS_CHANGES, "certificate")
    assert "need more than 2/3" in result.discrepancy.detail


@pytest.mark.parametrize(("leaf", "height"), [(3, ISSUES), (41, 3), (46, STATUS_CHANGES)])
def test_an_altered_log_node_is_caught_at_the_block_that_wrote_it(
    copy: Path, network: Network, tmp_path: Path, leaf: int, height: int
) -> None:
    # Tile (0, j) has key 32j + 1; its first row holds the leaf hashes 32j..32j+31 (see ledger.storage.log). Tile (0, 0)
    # is complete after block 1 and compared then; tile (0, 1) is the partly filled one at the right edge.
    tile = leaf // 32
    alter(copy, schema.LOG_NODES, schema.u64(32 * tile + 1), lambda data: flip(data, leaf % 32 * 32 + 5))
    result = run_audit(copy, network, tmp_path / "state")
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (height, "log-node")
    assert f"(level 0, index {leaf})" in result.discrepancy.detail


def test_an_altered_interior_log_node_is_caught(copy: Path, network: Network, tmp_path: Path) -> None:
    # Row 1 of tile (0, 0) starts after the 32 leaf slots: node (level 1, index 2) covers leaves 4 and 5.
    alter(copy, schema.LOG_NODES, schema.u64(1), lambda tile: flip(tile, (32 + 2) * 32))
    result = run_audit(copy, network, tmp_path / "state")
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (ISSUES, "log-node")
    assert "(level 1, index 2)" in result.discrepancy.detail


def first_node(path: Path, db_name: bytes, prefix: bytes) -> bytes:
    """The ref of the first state node in `db_name` whose ref starts with `prefix`."""
    env = schema.open_env(path)
    with env.begin() as txn, txn.cursor(db=env.open_db(db_name, txn=txn)) as cursor:
        assert cursor.set_range(prefix)
        victim = bytes(cursor.key())
    env.close()
    assert victim[:8] == prefix
    return victim


def leaf_prefix(height: int) -> bytes:
    """The prefix of the refs of the leaves a block wrote: their group (0x80) and the block's height."""
    return group_prefix(0x80, height)


@pytest.mark.parametrize("height", [ISSUES, NEW_MEMBER, STATUS_CHANGES])
@pytest.mark.parametrize("leaf", [False, True], ids=["internal", "leaf"])
def test_an_altered_state_node_is_caught_at_its_block(
    copy: Path, network: Network, tmp_path: Path, height: int, leaf: bool
) -> None:
    # The block's root: the internal node at depth 0 (group 0x81) it wrote.
    db_name, prefix = (
        (schema.SMT_LEAVES, leaf_prefix(height)) if leaf else (schema.SMT_DEPTHS[0], group_prefix(0x81, height))
    )
    victim = first_node(copy, db_name, prefix)
    alter(copy, db_name, victim, lambda record: flip(record, len(record) - 1))
    result = run_audit(copy, network, tmp_path / "state")
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (height, "state-node")


def test_an_altered_state_root_is_caught(copy: Path, network: Network, tmp_path: Path) -> None:
    alter(copy, schema.SMT_ROOTS, schema.u64(NEW_MEMBER), lambda ref: flip(ref, 20))
    result = run_audit(copy, network, tmp_path / "state")
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (NEW_MEMBER, "state-root")


def test_an_altered_event_index_is_caught(copy: Path, network: Network, tmp_path: Path) -> None:
    event_id = decode_event_at(copy, 42).id
    alter(copy, schema.CHAIN_EVENT_IDS, event_id, lambda _index: schema.u64(3))
    result = run_audit(copy, network, tmp_path / "state")
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (NEWCOMER_ISSUES, "event-index")


def decode_event_at(path: Path, index: int) -> Event:
    env = schema.open_env(path)
    with env.begin() as txn:
        raw = txn.get(schema.u64(index), db=env.open_db(schema.CHAIN_ENTRIES, txn=txn))
    env.close()
    assert raw is not None
    return decode_event(bytes(raw))


def test_resume_replays_only_new_blocks_after_a_consistency_proof(copy: Path, network: Network, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = run_audit(copy, network, state, to=3)
    assert first.clean and first.height == 3
    resumed = run_audit(copy, network, state, resume=True)
    assert resumed.clean and resumed.resumed
    assert (resumed.from_height, resumed.height, resumed.events) == (3, LAST, 49 - 42)
    # The counts carry over from the audit before: they cover the whole chain.
    assert resumed.counted_from == 0
    assert resumed.credentials == {"valid": 40, "suspended": 1, "revoked": 1, "expired": 1}
    # A source whose history differs from the audited one cannot be resumed against.
    other = tmp_path / "other"
    store = Store(other)
    store.initialize(network.genesis)
    for i in range(LAST + 1):
        commit(store, network, issue(network["m2.test"], digest(f"fork{i}")))
    store.close()
    forked = run_audit(other, network, state, resume=True)
    assert forked.discrepancy is not None and forked.discrepancy.kind == "fork"


def test_comparisons_in_the_pool_catch_an_altered_state_node(copy: Path, network: Network, tmp_path: Path) -> None:
    victim = first_node(copy, schema.SMT_DEPTHS[1], group_prefix(0x82, NEW_MEMBER))
    alter(copy, schema.SMT_DEPTHS[1], victim, lambda record: flip(record, len(record) - 1))
    with mock.patch("verifier.auditbatches.BATCH_EVENTS", 4):  # enough work for the pool to be used
        result = run_audit(copy, network, tmp_path / "state", workers=2)
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (NEW_MEMBER, "state-node")


def test_a_resumed_audit_names_the_discrepancy_it_stopped_at(copy: Path, network: Network, tmp_path: Path) -> None:
    state = tmp_path / "state"
    alter(copy, schema.SMT_ROOTS, schema.u64(NEWCOMER_ISSUES), lambda ref: flip(ref, 20))
    first = run_audit(copy, network, state)
    assert first.discrepancy is not None
    assert (first.discrepancy.height, first.discrepancy.kind) == (NEWCOMER_ISSUES, "state-root")
    # The replay committed that block before the comparison failed; resuming must not pass over it.
    checkpoint = read_checkpoint(state)
    assert checkpoint is not None and checkpoint["discrepancy"]["kind"] == "state-root"
    again = run_audit(copy, network, state, resume=True)
    assert again.discrepancy is not None
    assert (again.discrepancy.height, again.discrepancy.kind) == (NEWCOMER_ISSUES, "state-root")
    assert "without --resume" in again.discrepancy.detail
    assert run_audit(copy, network, state).discrepancy == first.discrepancy


def test_resume_checks_the_log_extends_the_audited_one(copy: Path, network: Network, tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run_audit(copy, network, state, to=NEWCOMER_ISSUES).clean

    class Rewritten(DataDir):
        def consistency(self, size1: int, size2: int) -> list[bytes]:
            return [bytes(32)] * len(super().consistency(size1, size2))

    source = Rewritten(copy)
    try:
        result = Auditor(source, network.genesis, state, workers=0).run(resume=True)
    finally:
        source.close()
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (LAST, "consistency")


async def test_a_node_is_audited_over_http(tmp_path: Path) -> None:
    async with api_node(tmp_path) as node:
        m0 = node.network["m0.test"]
        node.decide([issue(m0, digest(f"a{i}"), time_ms=node.application.now_ms()) for i in range(5)])
        node.decide([signed(Revoke(digest("a1"), 0), m0.issuer, time_ms=node.application.now_ms())])
        source = NodeSource(node.url)
        auditor = Auditor(source, node.network.genesis, tmp_path / "state", workers=0)
        result = await asyncio.to_thread(auditor.run)
    assert result.clean, result.discrepancy
    assert (result.height, result.events, result.credentials["revoked"]) == (2, 6, 1)


async def test_cli_audit_exit_codes_progress_and_json(
    copy: Path, network: Network, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    genesis = tmp_path / "genesis.json"
    write_genesis(network.genesis, genesis)
    base = ["audit", "--data-dir", str(copy), "--genesis", str(genesis), "--state", str(tmp_path / "s")]
    assert await asyncio.to_thread(run_cli, [*base, "--workers", "0"]) == 0
    captured = capsys.readouterr()
    assert "CLEAN" in captured.out and "credentials  40 valid, 1 suspended, 1 revoked, 1 expired" in captured.out
    assert "49/49 events" in captured.err  # the progress bar's last line
    alter(copy, schema.CHAIN_ENTRIES, schema.u64(7), lambda raw: flip(raw, len(raw) - 10))
    assert await asyncio.to_thread(run_cli, [*base, "--json", "--no-progress"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["discrepancy"]["height"] == ISSUES and not report["clean"]
    missing = ["audit", "--data-dir", str(tmp_path / "nothing"), "--genesis", str(genesis)]
    assert await asyncio.to_thread(run_cli, missing) == 3
    assert "nothing: no such directory" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "ledger").mkdir(parents=True)
    assert await asyncio.to_thread(run_cli, ["audit", "--data-dir", str(empty), "--genesis", str(genesis)]) == 3
    assert f"{empty} holds no ledger: expected a node's data directory" in capsys.readouterr().err


async def test_cli_audit_takes_the_data_directory_node_toml_names(
    chain_dir: Path, network: Network, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = tmp_path / "data"  # as a node lays it out: its lock file, and the LMDB environment in ledger/
    shutil.copytree(chain_dir, data_dir / "ledger")
    (data_dir / "node.lock").touch()
    genesis = tmp_path / "genesis.json"
    write_genesis(network.genesis, genesis)
    argv = ["audit", "--data-dir", str(data_dir), "--genesis", str(genesis), "--state", str(tmp_path / "s")]
    assert await asyncio.to_thread(run_cli, [*argv, "--workers", "0", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"audit of {data_dir}" in out and "CLEAN" in out


def test_progress_bar_shows_rate_and_time_left() -> None:
    now = [0.0]
    stream = io.StringIO()
    bar = Progress(1000, stream=stream, enabled=True, interval=0.0, clock=lambda: now[0])
    now[0] = 2.0
    bar.advance(250, "block 3/10")
    line = stream.getvalue()
    assert "25.0%" in line and "250/1,000 events" in line and "125 events/s" in line and "ETA 0:00:06" in line
    assert line.startswith("\r[#######.")


def test_the_worker_reads_the_signed_bytes_the_codec_would_write(network: Network) -> None:
    m0 = network["m0.test"]
    newcomer = make_member("m9.test", 0)
    events = [
        issue(m0, digest("a"), expires_ms=T0 + 5, components=(digest("b"),)),
        signed(Revoke(digest("a"), 17), m0.issuer),
        signed(Reinstate(digest("a")), m0.issuer),
        by_governance(network, MemberAdd(**dataclasses.asdict(newcomer.add_payload()))),
    ]
    for event in events:
        parsed = event_parts(event.encode())
        assert parsed is not None
        assert parsed[0] == event.signed_bytes()
        assert [s[0] for s in parsed[2]] == [s.member for s in event.signatures]
    result = verify_batch([e.encode() for e in events], Keys(network.genesis).directory)
    assert len(result.verified) == 4 and not result.bad
    assert ("m9.test", newcomer.issuer.public.raw) in result.keys
    assert result.credentials == (
        ("issue", digest("a"), T0 + 5),
        ("revoke", digest("a"), None),
        ("reinstate", digest("a"), None),
    )
    assert event_parts(b"\x93\x01\x02\x03") is None and event_parts(events[0].encode()[:-3]) is None


# --- a data directory with a bounded state history --------------------------------------------------------------


def test_a_data_dir_with_a_bounded_state_history_audits_clean_from_genesis(
    pruned_dir: Path, network: Network, tmp_path: Path
) -> None:
    for workers in (0, 2):
        result = run_audit(pruned_dir, network, tmp_path / f"state-{workers}", workers=workers)
        assert result.clean, result.discrepancy
        assert (result.from_height, result.height, result.events) == (0, LAST, 49)
        assert result.credentials == {"valid": 40, "suspended": 1, "revoked": 1, "expired": 1}


def test_an_altered_state_node_kept_from_a_pruned_height_is_caught_at_its_block(
    pruned_dir: Path, network: Network, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(pruned_dir, copy)
    env = schema.open_env(copy)
    with env.begin() as txn:
        assert txn.get(schema.u64(ISSUES), db=env.open_db(schema.SMT_ROOTS)) is None  # its state root is pruned
    env.close()
    victim = first_node(copy, schema.SMT_LEAVES, leaf_prefix(ISSUES))  # a credential of block 1: later heights hold it
    alter(copy, schema.SMT_LEAVES, victim, lambda record: flip(record, len(record) - 1))
    result = run_audit(copy, network, tmp_path / "state")
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (ISSUES, "state-node")


def test_an_altered_state_root_within_the_history_is_caught(pruned_dir: Path, network: Network, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(pruned_dir, copy)
    alter(copy, schema.SMT_ROOTS, schema.u64(LAST), lambda ref: flip(ref, 20))
    result = run_audit(copy, network, tmp_path / "state")
    assert result.discrepancy is not None
    assert (result.discrepancy.height, result.discrepancy.kind) == (LAST, "state-root")
