"""Reading a bulk issuance's credentials: a folder of credential files, or a JSON Lines file of credentials.

- A folder: every regular file directly in it whose name does not start with a dot, in name order (subfolders are
  not entered). Each file is one credential, hashed as `credledger issue` hashes a file. Its receipt is named after
  the file without its suffix (``alice.json`` -> ``alice.receipt.json``), or after the whole file name when two
  files share a stem.
- A ``.jsonl`` file: one credential JSON object per line (blank lines are skipped). Its receipts are named after
  the credential's digest, which stays the same when lines move.

A file or line that cannot be used is a `BadInput` naming it (``graduates.jsonl:12: ...``); the others go on.

The inputs are read as they are issued, so the first chunk is on its way before the last line of a large file is
read; `count_inputs` tells how many there are (for a progress bar) without reading them as credentials.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from credledger.ledger.errors import CredledgerError
from credledger.verifier.batch import BadInput, Credential

#: Largest credential read (as for one `credledger issue`).
MAX_CREDENTIAL_BYTES = 64 * 1024 * 1024
JSONL_SUFFIX = ".jsonl"


class InputError(CredledgerError):
    """The JSON Lines file could not be read to its end (what was read before is issued; run again to resume)."""

    code = "input"


def read_batch(path: Path, *, raw: bool = False) -> Iterator[Credential | BadInput]:
    """The credentials of a folder or a JSON Lines file (see the module docstring), read as they are iterated.
    Raises OSError at once if `path` is not there or the folder cannot be listed; the iterator raises InputError
    if the file cannot be opened or read to its end."""
    if path.is_dir():
        return _folder(_files(path))
    path.stat()  # a file that is not there is named before anything is sent
    return _lines(path, raw=raw)


def count_inputs(path: Path) -> int:
    """How many credentials (and bad inputs) `read_batch(path)` yields. Raises OSError if `path` cannot be read."""
    if path.is_dir():
        return len(_files(path))
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())


def _folder(files: list[Path]) -> Iterator[Credential | BadInput]:
    stems: dict[str, int] = {}
    for file in files:
        stems[file.stem] = stems.get(file.stem, 0) + 1
    for file in files:
        name = file.stem if stems[file.stem] == 1 else file.name
        try:
            with file.open("rb") as handle:
                data = handle.read(MAX_CREDENTIAL_BYTES + 1)
        except OSError as exc:
            yield BadInput(str(file), f"cannot read it ({exc.strerror})")
            continue
        if len(data) > MAX_CREDENTIAL_BYTES:
            yield BadInput(str(file), f"larger than {MAX_CREDENTIAL_BYTES} bytes")
            continue
        yield Credential(str(file), name, data)


def _lines(path: Path, *, raw: bool) -> Iterator[Credential | BadInput]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror})") from None
    with handle:
        number = 0
        while True:
            try:
                line = handle.readline()
            except OSError as exc:
                raise InputError(f"{path}: cannot read it after line {number} ({exc.strerror})") from None
            if not line:
                return
            number += 1
            source = f"{path}:{number}"
            data = line.rstrip(b"\r\n")
            if not data.strip():
                continue
            if len(data) > MAX_CREDENTIAL_BYTES:
                yield BadInput(source, f"a line longer than {MAX_CREDENTIAL_BYTES} bytes")
                continue
            if not raw:
                problem = _not_an_object(data)
                if problem:
                    yield BadInput(source, problem)
                    continue
            yield Credential(source, None, data)


def _not_an_object(data: bytes) -> str | None:
    try:
        value = json.loads(data)
    except UnicodeDecodeError:
        return "not UTF-8 text"
    except (ValueError, RecursionError) as exc:
        return f"not a JSON credential ({exc})"
    if not isinstance(value, dict):
        return "not a JSON credential: each line holds one JSON object"
    return None
