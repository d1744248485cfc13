"""`credledger tiles export`: a node's data directory written as C2SP tlog-tiles files, read back by a tile reader."""

from __future__ import annotations

import signal
import subprocess
import time
from contextlib import closing
from pathlib import Path

import pytest

from credledger.cli.main import main as run_cli
from credledger.ledger.cosignature import CosignerKey, cosign, verified_cosignatures
from credledger.ledger.events import Issue
from credledger.ledger.merkle import leaf_hash
from credledger.ledger.note import Checkpoint, SignedNote
from credledger.ledger.storage.datadir import COSIGNED_FILE
from credledger.ledger.storage.store import Store
from credledger.ledger.tiles import TileReader
from tests.blocks import commit
from tests.conftest import python_with_default_sigint
from tests.factories import Network, digest, key_for, make_network, signed

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def network() -> Network:
    return make_network(4)


def grow(data: Path, network: Network, count: int, label: str) -> None:
    """Commit `count` more issues to the store in `data` (created if new), in blocks of 100."""
    store = Store(data / "ledger")
    try:
        if store.height() == 0:
            store.initialize(network.genesis)
        m0 = network["m0.test"]
        for start in range(0, count, 100):
            events = (
                signed(Issue(digest(f"{label} {i}"), m0.id, None, ()), m0.issuer, origin=network.genesis.origin)
                for i in range(start, min(count, start + 100))
            )
            commit(store, network, *events)
    finally:
        store.close()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def read_back(out: Path) -> tuple[Checkpoint, TileReader]:
    """The exported checkpoint and a tile reader over the exported files, which checks them against it."""
    checkpoint = Checkpoint.parse(SignedNote.parse((out / "checkpoint").read_bytes()).text)

    def fetch(path: str) -> bytes | None:
        file = out / path
        return file.read_bytes() if file.exists() else None

    return checkpoint, TileReader(checkpoint.size, checkpoint.root, fetch)


def export(tmp_path: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert run_cli(["tiles", "export", "--data-dir", str(tmp_path / "data"), "--out", str(out)]) == 0
    return capsys.readouterr().out


def test_an_export_reads_back_into_every_root_proof_and_entry_of_the_log(
    tmp_path: Path, data: Path, network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    grow(data, network, 530, "a")
    out = tmp_path / "out"
    said = export(tmp_path, out, capsys)
    checkpoint, reader = read_back(out)
    with closing(Store(data / "ledger")) as store, store.snapshot() as snap:
        assert checkpoint.size == snap.log_size and f"checkpoint of size {snap.log_size}" in said
        assert (out / "checkpoint").read_text() == snap.certificate(snap.height)
        for size in (1, 255, 256, 257, 512, checkpoint.size):
            assert reader.root_at(size) == snap.log_root(size)
            assert reader.inclusion_proof(size // 2, size) == snap.inclusion_proof(size // 2, size)
            assert reader.consistency_proof(size // 3 or 1, size) == snap.consistency_proof(size // 3 or 1, size)
        entries = [e for bundle in range(3) for e in reader.entries(bundle)]
        assert entries == [snap.entry(i) for i in range(checkpoint.size)]
        assert [leaf_hash(e) for e in entries] == [reader.leaf_hash(i) for i in range(checkpoint.size)]


def test_a_second_export_writes_only_what_the_log_gained_and_still_reads_back(
    tmp_path: Path, data: Path, network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    grow(data, network, 300, "a")
    out = tmp_path / "out"
    export(tmp_path, out, capsys)
    first_full_tile = (out / "tile/0/000").stat().st_mtime_ns
    grow(data, network, 10, "b")
    said = export(tmp_path, out, capsys)
    checkpoint, reader = read_back(out)
    with closing(Store(data / "ledger")) as store, store.snapshot() as snap:
        size = snap.log_size
        assert checkpoint.size == size and reader.root_at(size) == snap.log_root(size)
    # What 10 more entries add: the new partial level-0 tile and bundle, and the level-1 partial stays width 1.
    assert said.strip() == f"checkpoint of size {size}: 1 tiles, 1 entry bundles"
    assert (out / "tile/0/000").stat().st_mtime_ns == first_full_tile
    assert export(tmp_path, out, capsys) == ""  # nothing new: nothing written


def test_the_exported_checkpoint_carries_the_cosignatures_the_node_keeps_for_its_latest_block(
    tmp_path: Path, data: Path, network: Network, capsys: pytest.CaptureFixture[str]
) -> None:
    grow(data, network, 20, "a")
    with closing(Store(data / "ledger")) as store, store.snapshot() as snap:
        certificate = SignedNote.parse(snap.certificate(snap.height))
    witness = key_for("witness.test/w1", "witness")
    cosigned = certificate.with_signatures([cosign(certificate.text, witness, 1_767_225_600).note_signature()])
    (data / COSIGNED_FILE).write_text(cosigned.format())  # as node.witnessing keeps it, beside the ledger
    out = tmp_path / "out"
    export(tmp_path, out, capsys)
    exported = SignedNote.parse((out / "checkpoint").read_bytes())
    assert exported == cosigned and verified_cosignatures(exported, [CosignerKey.of(witness)])

    grow(data, network, 5, "b")  # a newer block: the kept cosignatures are of an older one, and are left out
    assert "checkpoint of size 25" in export(tmp_path, out, capsys)
    with closing(Store(data / "ledger")) as store, store.snapshot() as snap:
        assert (out / "checkpoint").read_text() == snap.certificate(snap.height)


@pytest.mark.parametrize(
    ("origin", "why"),
    [
        ("credledger.test/other", "holds the log 'credledger.test/unit'"),
        (None, "that this log (size 30) does not have"),
    ],
)
def test_an_out_folder_holding_another_log_is_refused(
    tmp_path: Path, network: Network, capsys: pytest.CaptureFixture[str], origin: str | None, why: str
) -> None:
    grow(tmp_path / "data", network, 20, "a")
    out = tmp_path / "out"
    export(tmp_path, out, capsys)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    # Another network, or a fork of this one: same genesis, other events.
    other_network = network if origin is None else make_network(4, origin=origin)
    grow(tmp_path / "other", other_network, 30, "b")
    code = run_cli(["tiles", "export", "--data-dir", str(tmp_path / "other"), "--out", str(out)])
    assert code == 2
    assert why in capsys.readouterr().err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_an_unreadable_data_directory_exits_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run_cli(["tiles", "export", "--data-dir", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")])
    assert code == 3
    assert "cannot export: " in capsys.readouterr().err


def test_follow_exports_each_new_checkpoint_until_interrupted(tmp_path: Path, data: Path, network: Network) -> None:
    grow(data, network, 5, "a")
    out = tmp_path / "out"
    argv = ["tiles", "export", "--data-dir", str(tmp_path / "data"), "--out", str(out), "--follow", "--interval", "0.1"]
    # With faulthandler, so that a command that does not stop shows where it is (SIGABRT dumps every thread's stack).
    process = subprocess.Popen(
        python_with_default_sigint("-X", "faulthandler", "-m", "credledger.cli.main", *argv),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_size(out, 5)
        grow(data, network, 7, "b")
        wait_for_size(out, 12)
        with closing(Store(data / "ledger")) as store, store.snapshot() as snap:
            _, reader = read_back(out)
            assert reader.entries(0) == [snap.entry(i) for i in range(12)]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            said, errors = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            said, errors = process.communicate(timeout=60)
            raise AssertionError(f"tiles export --follow did not stop on Ctrl-C; where it was:\n{errors}") from None
        assert (process.returncode, errors) == (0, "")
    assert "checkpoint of size 5:" in said and "checkpoint of size 12:" in said


def wait_for_size(out: Path, size: int) -> None:
    """Wait (at most a minute) until the exported checkpoint has `size` entries."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        path = out / "checkpoint"
        if path.exists() and Checkpoint.parse(SignedNote.parse(path.read_bytes()).text).size == size:
            return
        time.sleep(0.05)
    raise AssertionError(f"no exported checkpoint of size {size} within a minute")
