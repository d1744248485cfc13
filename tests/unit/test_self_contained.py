"""A fresh clone anywhere runs every test: nothing in the project reads a folder beside the repository."""

from __future__ import annotations

import subprocess

from tests.conftest import PROJECT_ROOT, VECTORS


def test_the_test_vectors_live_inside_the_repository() -> None:
    assert VECTORS.resolve().is_relative_to(PROJECT_ROOT.resolve())
    assert (VECTORS / "merkle" / "LICENSE").is_file()
    assert any(VECTORS.glob("merkle/testdata/inclusion/**/*.json"))


def test_no_tracked_file_refers_to_a_folder_beside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True).stdout.split(
        b"\0"
    )
    # Spelled in two parts so that this file does not match itself.
    beside = "../" + "shared"
    offenders = []
    for name in filter(None, tracked):
        path = PROJECT_ROOT / name.decode()
        if path.suffix not in {".py", ".toml", ".js", ".json", ".yml", ".cfg", ""} or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if beside in text:
            offenders.append(name.decode())
    assert offenders == [], f"these files read a folder outside the repository: {offenders}"
