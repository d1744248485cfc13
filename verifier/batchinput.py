"""Reading a bulk issuance's credentials: a folder of credential files, or a JSON Lines file of credentials.

- A folder: every regular file directly in it whose name does not start with a dot, in name order (subfolders are
  not entered). Each file is one credential, hashed as `credledger issue` hashes a file. Its receipt is named after
  the file without its suffix (``alice.json`` -> ``alice.receipt.json``), or after the whole file name when two
  files share a stem.
- A ``.jsonl`` file: one credential JSON object per line (blank lines are skipped). Its receipts are named after
  the credential's digest, which stays the same when lines move.

A file or line that cannot be used is a `BadInput` naming it (``graduates.jsonl:12: ...``); the others go on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from credledger.verifier.batch import BadInput, Credential

#: Largest credential read (as for one `credledger issue`).
MAX_CREDENTIAL_BYTES = 64 * 1024 * 1024
JSONL_SUFFIX = ".jsonl"


def read_batch(path: Path, *, raw: bool = False) -> Iterator[Credential | BadInput]:
    """The credentials of a folder or a JSON Lines file (see the module docstring). Raises OSError if `path`
    itself cannot be read."""
    if path.is_dir():
        return _folder(path)
    return _lines(path, raw=raw)


def _folder(folder: Path) -> Iterator[Credential | BadInput]:
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
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
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
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
