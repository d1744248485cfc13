"""`credledger tiles export`: write a node's log as C2SP tlog-tiles static files, and keep them up to date.

The data directory is opened read-only (`ledger.storage.datadir`), so this runs beside the node. Each round reads
one snapshot: the tiles and entry bundles the tree gained since the last exported checkpoint, then the checkpoint
itself, last, so a server of the folder never offers a checkpoint whose tiles are not there yet. Every file is
written to a temporary name and renamed into place, so nobody reads half a tile.

Exit codes: 0 exported (or stopped with Ctrl-C while following); 2 usage error (OUT unusable or holding another
log's tiles); 3 the data directory could not be read.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path

from credledger.cli.common import EXIT_OK, EXIT_UNREACHABLE, UsageError, error
from credledger.ledger.errors import DecodeError, StorageError
from credledger.ledger.note import Checkpoint, SignedNote
from credledger.ledger.storage.datadir import DataDir, TileSnapshot
from credledger.ledger.tiles import bundles_for_size, tiles_for_size

#: tlog-tiles: the checkpoint sits beside the tile/ folder.
CHECKPOINT_FILE = "checkpoint"
#: How often --follow looks for new blocks by default (seconds).
DEFAULT_INTERVAL_S = 1.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "tiles",
        help="write the log as C2SP static tiles any web server can serve",
        description="The log as C2SP tlog-tiles static files: checkpoint, tile/<L>/<N>[.p/<W>] and "
        "tile/entries/<N>[.p/<W>].",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    export = actions.add_parser(
        "export",
        help="write the tiles of a node's data directory into a folder",
        description="Write the checkpoint, tiles and entry bundles of a node's log (its data directory opened "
        "read-only) into OUT, which any web server or object store can then serve. Files already exported for an "
        "earlier checkpoint of the same log are kept; only what the log gained is written.",
        epilog="Exit codes: 0 exported; 2 usage error (OUT unusable or holding another log); 3 cannot read DIR.",
    )
    export.add_argument("--data-dir", required=True, metavar="DIR", help="the node's data directory")
    export.add_argument("--out", required=True, metavar="OUT", help="the folder to write (created if missing)")
    export.add_argument("--follow", action="store_true", help="keep exporting each new checkpoint until Ctrl-C")
    export.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_S,
        metavar="SECONDS",
        help=f"with --follow: how often to look for new blocks (default {DEFAULT_INTERVAL_S:g})",
    )
    export.set_defaults(func=run)


@dataclass(frozen=True, slots=True)
class Exported:
    """What one round wrote: the checkpoint's tree size, and how many tiles and entry bundles."""

    size: int
    tiles: int
    bundles: int
    #: Whether the checkpoint file changed.
    checkpoint: bool


def run(args: argparse.Namespace) -> int:
    if not args.interval > 0:
        raise UsageError("--interval must be a positive number of seconds")
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot create it ({exc.strerror})") from None
    try:
        datadir = DataDir(args.data_dir)
    except StorageError as exc:
        error(f"cannot export: {exc}")
        return EXIT_UNREACHABLE
    try:
        since = None
        while True:
            try:
                result = export(datadir, out, since)
            except StorageError as exc:
                error(f"cannot export: {exc}")
                return EXIT_UNREACHABLE
            if result is not None:
                if result.checkpoint:
                    print(f"checkpoint of size {result.size}: {result.tiles} tiles, {result.bundles} entry bundles")
                since = result.size
            if not args.follow:
                return EXIT_OK
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        datadir.close()


def export(datadir: DataDir, out: Path, since: int | None = None) -> Exported | None:
    """Write what the log gained since the tree of `since` entries (default: the checkpoint already in `out`).

    None if the node has committed no block yet.
    """
    with datadir.tiles() as snap:
        if snap.checkpoint is None:
            return None
        if since is None:
            since = _exported_size(out, snap)
        tiles = bundles = 0
        for tile in tiles_for_size(snap.size, since=since):
            _write(out / tile.path(), snap.data(tile))
            tiles += 1
        for bundle in bundles_for_size(snap.size, since=since):
            _write(out / bundle.path(), snap.data(bundle))
            bundles += 1
        note = snap.checkpoint.encode()
        path = out / CHECKPOINT_FILE
        fresh = not path.exists() or path.read_bytes() != note  # a block without events changes only the note
        if fresh:
            _write(path, note)
        return Exported(snap.size, tiles, bundles, fresh)


def _exported_size(out: Path, snap: TileSnapshot) -> int:
    """The size of the checkpoint already in `out`, after checking it is one of this log's; 0 if there is none."""
    path = out / CHECKPOINT_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    assert snap.checkpoint is not None
    ours = Checkpoint.parse(SignedNote.parse(snap.checkpoint).text)
    try:
        theirs = Checkpoint.parse(SignedNote.parse(data).text)
    except DecodeError as exc:
        raise UsageError(f"{path} is not a credledger checkpoint ({exc}); export into an empty folder") from None
    if theirs.origin != ours.origin:
        raise UsageError(f"{out} holds the log {theirs.origin!r}, not {ours.origin!r}; export into another folder")
    if theirs.size > ours.size or snap.root(theirs.size) != theirs.root:
        raise UsageError(
            f"{out} holds a checkpoint of size {theirs.size} that this log (size {ours.size}) does not have; "
            "export into another folder"
        )
    return theirs.size


def _write(path: Path, data: bytes) -> None:
    """Write `path` atomically: a temporary file in the same folder, renamed into place."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write it ({exc.strerror})") from None
