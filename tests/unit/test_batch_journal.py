"""The bulk issuance journal and input reading: records survive a reopen, a torn last line is dropped, a journal
of other parameters is refused; folders and JSON Lines files become credentials or named bad inputs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from credledger.verifier.batch import BadInput, Credential
from credledger.verifier.batchinput import count_inputs, read_batch
from credledger.verifier.batchjournal import FILE_NAME, Journal, JournalError

HEADER = {"origin": "credledger.test/x", "issuer": "m0.test", "mode": "jcs", "expires_ms": None, "achievement": None}
KEY = "aa" * 32


def _signed(event: bytes = b"\x01\x02") -> dict[str, object]:
    return {"t": "signed", "key": KEY, "source": "in:1", "digest": KEY, "event": base64.b64encode(event).decode()}


def test_journal_records_are_read_back_on_reopen(tmp_path: Path) -> None:
    journal = Journal(tmp_path / FILE_NAME, HEADER)
    journal.append([_signed(), {"t": "committed", "key": KEY, "id": "bb" * 32, "index": 7}])
    journal.append([{"t": "receipt", "key": KEY, "path": "x.receipt.json", "bytes": 10}])
    journal.close()
    entry = Journal(tmp_path / FILE_NAME, HEADER).entries[bytes.fromhex(KEY)]
    assert (entry.source, entry.events, entry.committed_index) == ("in:1", [b"\x01\x02"], 7)
    assert (entry.committed_id, entry.receipt, entry.receipt_bytes) == (bytes.fromhex("bb" * 32), "x.receipt.json", 10)


def test_a_torn_last_line_is_dropped_and_cut_off(tmp_path: Path) -> None:
    journal = Journal(tmp_path / FILE_NAME, HEADER)
    journal.append([_signed()])
    journal.close()
    with (tmp_path / FILE_NAME).open("ab") as file:
        file.write(b'{"t":"committed","key":"' + KEY.encode()[:10])
    reopened = Journal(tmp_path / FILE_NAME, HEADER)
    assert reopened.torn
    assert reopened.entries[bytes.fromhex(KEY)].committed_index is None
    reopened.append([{"t": "committed", "key": KEY, "id": "bb" * 32, "index": 3}])
    reopened.close()
    assert Journal(tmp_path / FILE_NAME, HEADER).entries[bytes.fromhex(KEY)].committed_index == 3


def test_a_journal_of_other_parameters_is_refused(tmp_path: Path) -> None:
    Journal(tmp_path / FILE_NAME, HEADER).close()
    with pytest.raises(JournalError, match="other parameters \\(issuer\\)"):
        Journal(tmp_path / FILE_NAME, {**HEADER, "issuer": "m1.test"})


def test_an_altered_journal_is_refused_naming_the_line(tmp_path: Path) -> None:
    Journal(tmp_path / FILE_NAME, HEADER).close()
    with (tmp_path / FILE_NAME).open("a") as file:
        file.write("garbage\n")
    with pytest.raises(JournalError, match=f"{FILE_NAME}:2: not a JSON record"):
        Journal(tmp_path / FILE_NAME, HEADER)


def test_a_jsonl_batch_names_each_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "grads.jsonl"
    path.write_bytes(b'{"id": 1}\n\n[1, 2]\n{"id": \n\xff\n{"id": 2}\r\n')
    items = list(read_batch(path))
    assert [type(i).__name__ for i in items] == ["Credential", "BadInput", "BadInput", "BadInput", "Credential"]
    assert [i.source for i in items] == [f"{path}:{n}" for n in (1, 3, 4, 5, 6)]
    assert isinstance(items[1], BadInput) and "each line holds one JSON object" in items[1].detail
    assert isinstance(items[3], BadInput) and items[3].detail == "not UTF-8 text"
    assert isinstance(items[4], Credential) and items[4].data == b'{"id": 2}'
    assert all(isinstance(i, Credential) for i in read_batch(path, raw=True))
    assert count_inputs(path) == len(items)


def test_a_folder_batch_names_receipts_after_the_files(tmp_path: Path) -> None:
    for name in ("bob.json", "alice.json", "alice.txt", ".hidden.json"):
        (tmp_path / name).write_text(json.dumps({"name": name}))
    (tmp_path / "sub").mkdir()
    items = list(read_batch(tmp_path))
    assert count_inputs(tmp_path) == len(items) == 3
    assert [(i.source, i.name) for i in items if isinstance(i, Credential)] == [
        (str(tmp_path / "alice.json"), "alice.json"),
        (str(tmp_path / "alice.txt"), "alice.txt"),
        (str(tmp_path / "bob.json"), "bob"),
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["badge.json"], "give CREDENTIAL or --batch, not both"),
        (["--component", "x.json"], "--component is not taken with --batch"),
        (["--out", "{input}"], "--out must not be the input folder"),
        (["--concurrency", "0"], "must be at least 1"),
    ],
)
def test_batch_usage_errors_exit_2_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    from credledger.cli.main import main

    folder = tmp_path / "in"
    folder.mkdir()
    args = [a.replace("{input}", str(folder)) for a in extra]
    assert main(["issue", "--batch", str(folder), "--key", "k", "--node", "http://127.0.0.1:9", *args]) == 2
    assert message in capsys.readouterr().err


def test_a_batch_that_is_not_there_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from credledger.cli.main import main

    assert main(["issue", "--batch", str(tmp_path / "none.jsonl"), "--key", "k"]) == 2
    assert "none.jsonl: cannot read it (No such file or directory)" in capsys.readouterr().err


def test_an_output_folder_that_cannot_be_made_is_a_journal_error(tmp_path: Path) -> None:
    from credledger.ledger.keys import SigningKey
    from credledger.verifier.batch import BatchIssuer
    from credledger.verifier.client import NodeClient

    taken = tmp_path / "a-file"
    taken.write_text("")
    issuer = BatchIssuer(NodeClient("http://127.0.0.1:9"), SigningKey.generate("m0.test"), taken, origin="o")
    with pytest.raises(JournalError, match="cannot create the output folder"):
        issuer.run([])


def test_the_summary_file_is_the_summary_with_a_credential_a_line() -> None:
    from credledger.cli.batch import _summary_text

    credentials = [{"source": "a.json", "status": "issued"}, {"source": "b.json", "status": "failed"}]
    for listed in (credentials, []):
        summary = {"out": "out", "seconds": 1.5, "issued": 1, "credentials": listed, "written_ms": 7}
        text = _summary_text(summary)
        assert json.loads(text) == summary
        lines = [line.strip().removesuffix(",") for line in text.splitlines() if line.startswith("  {")]
        assert lines == [json.dumps(c) for c in listed]
