"""`pip install .` installs one namespace, `credledger`, holding every package and its data files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def test_the_wheel_holds_one_top_level_package_with_every_room_and_its_data(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(PROJECT_ROOT)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    (wheel,) = tmp_path.glob("credledger-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(archive.read(n).decode() for n in names if n.endswith("entry_points.txt"))
    top = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top == {"credledger"}
    for module in (
        "ledger/codec.py",
        "ledger/storage/store.py",
        "consensus/machine.py",
        "node/server.py",
        "node/api/app.py",
        "verifier/credential.py",
        "cli/main.py",
    ):
        assert f"credledger/{module}" in names
    assert any(n.startswith("credledger/node/api/static/") and n.endswith("ledger.js") for n in names)
    assert any(n.startswith("credledger/ledger/vc/contexts/") for n in names)
    assert "credledger = credledger.cli.main:main" in entry_points
