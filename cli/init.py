"""`credledger init`: set up one institution's node directory.

Writes a node key and an issuer key (C2SP signer-key files, readable by the owner only), a commented `node.toml`
that `node.config.load_config` reads, and `member.json` -- the public part (id, name, power, verifier keys) that the
institution sends to the others so that `credledger genesis` can build the network.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
from pathlib import Path

from cli.common import EXIT_OK, UsageError, print_json, write_new, write_private
from ledger.events import check_name
from ledger.keys import SigningKey
from ledger.limits import MAX_POWER
from ledger.validators import check_member_id

NODE_KEY_FILE = "node.key"
ISSUER_KEY_FILE = "issuer.key"
CONFIG_FILE = "node.toml"
MEMBER_FILE = "member.json"

_CONFIG_TEMPLATE = """\
# credledger node configuration for {name} ({member_id}), written by `credledger init`.
# Relative paths are relative to this file. Any setting can be overridden by an environment variable named
# after its path: CREDLEDGER_API_PORT sets [api] port, CREDLEDGER_P2P_PEERS sets [p2p] peers (comma-separated).

# This institution's member id: the name of its keys and of its signature lines on checkpoints.
member_id = {member_id_toml}
# Where the node keeps its ledger (one LMDB environment).
data_dir = "data"
# The network's genesis file, built by `credledger genesis` from every member's member.json.
genesis = "genesis.json"
# The node key (C2SP signer key) that signs consensus votes and authenticates the node to peers. Keep it secret.
node_key = "{node_key}"
# "validator" votes in consensus; "replica" follows the chain and serves reads (members with power 0).
role = "{role}"

[api]
# Where the public HTTP API (and the peer websocket) listens.
host = "127.0.0.1"
port = {port}

[p2p]
# Base URLs of the other validators' nodes, e.g. "http://uni-b.example:8700".
peers = [{peers}]
"""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "init",
        help="create a node's keys, node.toml and member.json",
        description=(
            "Create a directory for one member institution's node: a node key and an issuer key (C2SP signer-key "
            "files, mode 0600), a commented node.toml, and member.json -- the public part to send to the other "
            "members for `credledger genesis`. Existing key files are never overwritten."
        ),
    )
    parser.add_argument("--id", required=True, dest="member_id", help="member id, e.g. uni-a.example")
    parser.add_argument("--name", required=True, help="the institution's display name")
    parser.add_argument("--dir", required=True, type=Path, help="directory to create the files in")
    parser.add_argument("--power", type=int, default=1, help="voting power (0: issues but does not vote; default 1)")
    parser.add_argument("--api-port", type=int, default=8700, help="port of the node's API (default 8700)")
    parser.add_argument("--peer", action="append", default=[], metavar="URL", help="another validator's URL (repeat)")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    member_id, name = args.member_id, args.name
    try:
        check_member_id(member_id)
        check_name(name)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not 0 <= args.power <= MAX_POWER:
        raise UsageError(f"--power must be between 0 and {MAX_POWER}, got {args.power}")
    if not 1 <= args.api_port <= 65535:
        raise UsageError(f"--api-port must be a TCP port (1..65535), got {args.api_port}")
    for peer in args.peer:
        parsed = urllib.parse.urlsplit(peer)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise UsageError(f"--peer {peer!r}: expected a base URL such as http://host:8700")

    directory: Path = args.dir
    paths = {n: directory / n for n in (NODE_KEY_FILE, ISSUER_KEY_FILE, CONFIG_FILE, MEMBER_FILE)}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing:
        raise UsageError(f"refusing to overwrite {', '.join(existing)}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{directory}: cannot create it ({exc.strerror})") from None

    node_key = SigningKey.generate(member_id)
    issuer_key = SigningKey.generate(member_id)
    member = {
        "id": member_id,
        "name": name,
        "power": args.power,
        "node_key": node_key.public.vkey(),
        "issuer_keys": [issuer_key.public.vkey()],
    }
    config = _CONFIG_TEMPLATE.format(
        name=name,
        member_id=member_id,
        member_id_toml=json.dumps(member_id),
        node_key=NODE_KEY_FILE,
        role="validator" if args.power > 0 else "replica",
        port=args.api_port,
        peers=", ".join(json.dumps(p) for p in args.peer),
    )
    write_private(paths[NODE_KEY_FILE], node_key.skey() + "\n")
    write_private(paths[ISSUER_KEY_FILE], issuer_key.skey() + "\n")
    write_new(paths[CONFIG_FILE], config)
    write_new(paths[MEMBER_FILE], json.dumps(member, indent=2, ensure_ascii=False) + "\n")

    if args.json:
        print_json({"dir": str(directory), "files": {k: str(v) for k, v in paths.items()}, "member": member})
    else:
        print(f"initialised {name} ({member_id}) in {directory}:")
        notes = {
            NODE_KEY_FILE: f"node key {node_key.public.vkey()} (secret, mode 0600)",
            ISSUER_KEY_FILE: f"issuer key {issuer_key.public.vkey()} (secret, mode 0600)",
            CONFIG_FILE: "node configuration",
            MEMBER_FILE: "public member entry: send it to the other members for `credledger genesis`",
        }
        width = max(len(str(p)) for p in paths.values())
        for file, note in notes.items():
            print(f"  {paths[file]!s:<{width}}  {note}")
    return EXIT_OK
