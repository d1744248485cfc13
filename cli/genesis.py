"""`credledger genesis`: build a network's genesis file from the member files of its founding institutions."""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any

from credledger.cli.common import EXIT_OK, UsageError, error, print_json, time_argument, write_new
from credledger.ledger.errors import ConfigError
from credledger.ledger.genesis import Params, genesis_json, parse_genesis

_PARAM_NAMES = tuple(f.name for f in dataclasses.fields(Params))
#: The member file's field for the node's public URL (`credledger init` writes it).
MEMBER_URL = "url"
_MEMBER_INDEX = re.compile(r"genesis\.members\[(\d+)\]")
#: Largest member file read.
MAX_MEMBER_FILE_BYTES = 1024 * 1024


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = Params()
    parser = commands.add_parser(
        "genesis",
        help="build a genesis file from member files",
        description=(
            "Build the genesis file that names a network: its origin, start time, founding members (the member.json "
            "files `credledger init` wrote) and network parameters. Its hash identifies the network."
        ),
        epilog="network parameters (--param NAME=VALUE) and their defaults: "
        + ", ".join(f"{name}={getattr(defaults, name)}" for name in _PARAM_NAMES),
    )
    parser.add_argument("--origin", required=True, help="the chain's name, e.g. credledger.example/main")
    parser.add_argument(
        "--member", required=True, action="extend", nargs="+", metavar="FILE", help="a member.json file (repeatable)"
    )
    parser.add_argument("--time", help="genesis time: ISO 8601 or milliseconds since the epoch (default: now)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="set a network parameter (repeatable)"
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("genesis.json"), help="where to write it")
    parser.add_argument("--force", action="store_true", help="replace an existing output file")
    parser.add_argument("--json", action="store_true", help="print a summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    genesis_time = time_argument(args.time, "--time") if args.time else int(time.time() * 1000)
    files: list[str] = args.member
    entries = [_read_member(path) for path in files]
    # A member file's "url" (from `credledger init --public-url`) tells the others where its node is; it is not
    # part of the network's definition, so it stays out of the genesis.
    urls = {}
    for path, entry in zip(files, entries, strict=True):
        if isinstance(entry, dict) and MEMBER_URL in entry:
            url = entry.pop(MEMBER_URL)
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise UsageError(f"member file {path}: url must be the node's http:// or https:// URL, got {url!r}")
            urls[str(entry.get("id"))] = url
    document = {
        "origin": args.origin,
        "genesis_time_ms": genesis_time,
        "params": _params(args.param),
        "members": entries,
    }
    try:
        genesis = parse_genesis(json.dumps(document))
    except ConfigError as exc:
        # Name the member file rather than its position in the document being built.
        message = _MEMBER_INDEX.sub(lambda m: files[int(m.group(1))], str(exc))
        raise UsageError(message) from None
    write_new(args.output, genesis_json(genesis), force=args.force)
    validators = genesis.validator_set()
    # With n = 3f + 1 the network survives f: the power that can fail while the rest still makes a quorum.
    tolerated = validators.total_power - validators.quorum
    summary = {
        "path": str(args.output),
        "origin": genesis.origin,
        "hash": genesis.hash().hex(),
        "genesis_time_ms": genesis.genesis_time_ms,
        "members": [m.member for m in genesis.members],
        "voting_power": validators.total_power,
        "tolerated_faulty_power": tolerated,
        "urls": urls,
    }
    if tolerated == 0:
        error(
            f"warning: this network tolerates no faulty validator: its {len(validators)} voting member(s) hold "
            f"{validators.total_power} voting power and every block needs {validators.quorum} of it (more than 2/3), "
            "so any one that stops halts the network; 4 validators of equal power tolerate 1 (n = 3f + 1)"
        )
    if args.json:
        print_json(summary)
    else:
        voting = sum(1 for m in genesis.members if m.power > 0)
        print(f"wrote {args.output}: network {genesis.origin} with {len(genesis.members)} members ({voting} voting)")
        print(f"genesis hash {summary['hash']}")
        print(
            f"voting power {validators.total_power}: tolerates faulty validators holding up to {tolerated} of it "
            f"(every block needs {validators.quorum})"
        )
        if urls:
            print("nodes (each member's node.toml lists the others as [p2p] peers):")
            for member_id, url in urls.items():
                print(f"  {member_id}  {url}")
    return EXIT_OK


def _read_member(path: str) -> Any:
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_MEMBER_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"member file {path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_MEMBER_FILE_BYTES:
        raise UsageError(f"member file {path}: larger than {MAX_MEMBER_FILE_BYTES} bytes")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise UsageError(f"member file {path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise UsageError(f"member file {path}: JSON nested too deeply to be a member file") from None


def _params(settings: list[str]) -> dict[str, int]:
    values = {f.name: getattr(Params(), f.name) for f in dataclasses.fields(Params)}
    for setting in settings:
        name, sep, text = setting.partition("=")
        if not sep or name not in values:
            raise UsageError(f"--param {setting!r}: expected NAME=VALUE with NAME one of {', '.join(_PARAM_NAMES)}")
        if not text.isdigit():
            raise UsageError(f"--param {name}: expected a non-negative integer, got {text!r}")
        values[name] = int(text)
    return values
