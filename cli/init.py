"""`credledger init`: set up one institution's node directory.

Writes a node key, an issuer key and a witness key (C2SP signer-key files, readable by the owner only; the witness
key is the one given with `--witness-key` if any), a commented `node.toml` that `node.config.load_config` reads, and
`member.json` -- the public part (id, name, power, verifier keys) that the institution sends to the others so that
`credledger genesis` can build the network.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.parse
from pathlib import Path

from credledger.cli.common import EXIT_OK, UsageError, print_json, write_new, write_private
from credledger.cli.genesis import MEMBER_URL
from credledger.ledger.cosignature import CosignerKey
from credledger.ledger.errors import DecodeError
from credledger.ledger.events import check_name
from credledger.ledger.keys import SigningKey
from credledger.ledger.limits import MAX_POWER
from credledger.ledger.validators import check_member_id
from credledger.ledger.vc.did import check_did, default_did

NODE_KEY_FILE = "node.key"
ISSUER_KEY_FILE = "issuer.key"
WITNESS_KEY_FILE = "witness.key"
#: The witness key's name (the witness's name) init gives a new witness key: `<member id>/witness`.
WITNESS_NAME_SUFFIX = "/witness"
#: Largest signer-key file `--witness-key` reads (a key file is one short line).
MAX_KEY_FILE_BYTES = 4096
CONFIG_FILE = "node.toml"
MEMBER_FILE = "member.json"
GENESIS_FILE = "genesis.json"
#: Hosts that listen on every interface: no URL to reach the node at can be made from them.
_EVERY_INTERFACE = ("0.0.0.0", "::", "")  # noqa: S104 - recognises the wildcard; binds nothing

_CONFIG_TEMPLATE = """\
# credledger node configuration for {name} ({member_id}), written by `credledger init`.
# Relative paths are relative to this file. Any setting can be overridden by an environment variable named
# after its path: CREDLEDGER_API_PORT sets [api] port, CREDLEDGER_P2P_PEERS sets [p2p] peers (comma-separated).

# This institution's member id: the name of its keys and of its signature lines on checkpoints.
member_id = {member_id_toml}
# Where the node keeps its ledger (one LMDB environment).
data_dir = "data"
# The network's genesis file, built by `credledger genesis` from every member's member.json: put the copy every
# member received here.
genesis = {genesis_toml}
# The node key (C2SP signer key) that signs consensus votes and authenticates the node to peers. Keep it secret.
node_key = "{node_key}"
# "validator" votes in consensus; "replica" follows the chain and serves reads (members with power 0).
role = "{role}"

[api]
# Where the public HTTP API (and the peer websocket) listens: "0.0.0.0" is every interface. Other members and
# verifiers reach it at {public_url} (member.json "url").
host = {host_toml}
port = {port}

[p2p]
# Base URLs of the other validators' nodes, e.g. "http://uni-b.example:8700".
peers = [{peers}]

[store]
# Blocks whose state (credential, member and key records) stays provable "as of" their height, counting the latest;
# older versions of the state map are pruned as blocks commit. The log, events, headers and certificates are always
# kept, so peers catch up and audits replay from genesis all the same. 0 keeps the state as of every height.
state_history_blocks = 0

[credentials]
# The issuer key this validator signs the member's Bitstring Status Lists with, publishing each whenever a block
# changes it (standard credentials' revocation and suspension). Remove the line to publish none.
issuer_key = "{issuer_key}"

[witness]
# The key this node cosigns other logs' checkpoints with as a C2SP witness (POST /add-checkpoint); its name is the
# witness's name. Logs list this node as a witness with its cosigner vkey:
#   {witness_vkey}
# It witnesses the logs listed below, none until one is:
key = {witness_key_toml}
# [[witness.logs]]
# origin = "credledger.example/other-network"        # the log's origin line
# vkeys = ["uni-x.example+1a2b3c4d+AX..."]            # its note keys (for a credledger network: the validators')
# quorum = 1                                          # how many of them must sign a checkpoint
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
    parser.add_argument(
        "--did",
        help="the DID its credentials name as issuer: did:web or did:key (default did:web:ID, served by its node at "
        "/.well-known/did.json)",
    )
    parser.add_argument("--power", type=int, default=1, help="voting power (0: issues but does not vote; default 1)")
    parser.add_argument("--api-port", type=int, default=8700, help="port of the node's API (default 8700)")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the API listens on (default 127.0.0.1, this machine only; 0.0.0.0 for every interface)",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the URL other members and verifiers reach this node at, written to member.json "
        "(default http://HOST:PORT; required when --host listens on every interface)",
    )
    parser.add_argument(
        "--genesis",
        type=Path,
        metavar="PATH",
        help=f"where the node will find the network's genesis file (default: {GENESIS_FILE} in --dir)",
    )
    parser.add_argument("--peer", action="append", default=[], metavar="URL", help="another validator's URL (repeat)")
    parser.add_argument(
        "--witness-key",
        type=Path,
        metavar="FILE",
        help=f"an existing signer-key file for the node to witness other logs with (default: a new {WITNESS_KEY_FILE} "
        f"named ID{WITNESS_NAME_SUFFIX})",
    )
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    member_id, name = args.member_id, args.name
    try:
        check_member_id(member_id)
        check_name(name)
        did = default_did(member_id) if args.did is None else check_did(args.did)
    except (ValueError, DecodeError) as exc:
        raise UsageError(str(exc)) from None
    if not 0 <= args.power <= MAX_POWER:
        raise UsageError(f"--power must be between 0 and {MAX_POWER}, got {args.power}")
    if not 1 <= args.api_port <= 65535:
        raise UsageError(f"--api-port must be a TCP port (1..65535), got {args.api_port}")
    for peer in args.peer:
        _check_url(peer, "--peer")
    public_url = _public_url(args.host, args.api_port, args.public_url)
    given_witness = None if args.witness_key is None else _read_witness_key(args.witness_key)

    directory: Path = args.dir
    files = (NODE_KEY_FILE, ISSUER_KEY_FILE, CONFIG_FILE, MEMBER_FILE)
    paths = {n: directory / n for n in (files if given_witness else (*files, WITNESS_KEY_FILE))}
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing:
        raise UsageError(f"refusing to overwrite {', '.join(existing)}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{directory}: cannot create it ({exc.strerror})") from None

    node_key = SigningKey.generate(member_id)
    issuer_key = SigningKey.generate(member_id)
    witness_key = given_witness or SigningKey.generate(member_id + WITNESS_NAME_SUFFIX)
    witness_setting = WITNESS_KEY_FILE if given_witness is None else _relative_setting(directory, args.witness_key)
    witness_vkey = CosignerKey.of(witness_key).vkey()
    member = {
        "id": member_id,
        "name": name,
        "power": args.power,
        "node_key": node_key.public.vkey(),
        "issuer_keys": [issuer_key.public.vkey()],
        "did": did,
        MEMBER_URL: public_url,
    }
    config = _CONFIG_TEMPLATE.format(
        name=name,
        member_id=member_id,
        member_id_toml=json.dumps(member_id),
        node_key=NODE_KEY_FILE,
        issuer_key=ISSUER_KEY_FILE,
        role="validator" if args.power > 0 else "replica",
        genesis_toml=json.dumps(_genesis_setting(directory, args.genesis)),
        host_toml=json.dumps(args.host),
        public_url=public_url,
        port=args.api_port,
        peers=", ".join(json.dumps(p) for p in args.peer),
        witness_vkey=witness_vkey,
        witness_key_toml=json.dumps(witness_setting),
    )
    write_private(paths[NODE_KEY_FILE], node_key.skey() + "\n")
    write_private(paths[ISSUER_KEY_FILE], issuer_key.skey() + "\n")
    if given_witness is None:
        write_private(paths[WITNESS_KEY_FILE], witness_key.skey() + "\n")
    write_new(paths[CONFIG_FILE], config)
    write_new(paths[MEMBER_FILE], json.dumps(member, indent=2, ensure_ascii=False) + "\n")

    if args.json:
        files_json = {k: str(v) for k, v in paths.items()}
        print_json({"dir": str(directory), "files": files_json, "member": member, "witness_vkey": witness_vkey})
    else:
        print(f"initialised {name} ({member_id}) in {directory}:")
        notes = {
            NODE_KEY_FILE: f"node key {node_key.public.vkey()} (secret, mode 0600)",
            ISSUER_KEY_FILE: f"issuer key {issuer_key.public.vkey()} (secret, mode 0600)",
            CONFIG_FILE: "node configuration",
            MEMBER_FILE: "public member entry: send it to the other members for `credledger genesis`",
            WITNESS_KEY_FILE: f"witness key {witness_vkey} (secret, mode 0600)",
        }
        width = max(len(str(p)) for p in paths.values())
        for file, note in notes.items():
            if file in paths:
                print(f"  {paths[file]!s:<{width}}  {note}")
        if given_witness is not None:
            print(f"it witnesses other logs with the key in {args.witness_key}: {witness_vkey}")
        genesis = (directory / _genesis_setting(directory, args.genesis)).resolve()
        print(f"the node will read the network's genesis from {genesis}; it listens on {args.host}:{args.api_port}")
    return EXIT_OK


def _check_url(url: str, option: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise UsageError(f"{option} {url!r}: expected a base URL such as http://host:8700")


def _public_url(host: str, port: int, given: str | None) -> str:
    """The URL others reach the node at: as given, else made from the address it listens on."""
    if given is not None:
        _check_url(given, "--public-url")
        return given.rstrip("/")
    if host in _EVERY_INTERFACE:
        raise UsageError(
            f"--host {host!r} listens on every interface: give --public-url, the URL other members reach this node at"
        )
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _genesis_setting(directory: Path, genesis: Path | None) -> str:
    """node.toml's `genesis`: relative to node.toml's directory (where the node resolves it), or absolute."""
    if genesis is None:
        return GENESIS_FILE
    return _relative_setting(directory, genesis)


def _relative_setting(directory: Path, path: Path) -> str:
    """A path given from the current directory as node.toml names it: relative to node.toml's directory, or absolute."""
    if path.is_absolute():
        return str(path)
    return os.path.relpath(path.absolute(), directory.absolute())


def _read_witness_key(path: Path) -> SigningKey:
    """The signer key of `--witness-key FILE`; `UsageError` says why it cannot be used."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--witness-key {path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_KEY_FILE_BYTES:
        raise UsageError(f"--witness-key {path}: larger than {MAX_KEY_FILE_BYTES} bytes, not a signer-key file")
    try:
        return SigningKey.from_skey(data.decode("ascii").strip())
    except (UnicodeDecodeError, DecodeError, ValueError) as exc:
        raise UsageError(f"--witness-key {path}: not a C2SP signer key ({exc})") from None
