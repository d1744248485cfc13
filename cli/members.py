"""`credledger member update`: change a member by governance -- its DID, display name or voting power.

A `member.update` event replaces a member's name, power and node key, and its DID when one is given; governance
signs it: node keys of members holding more than 2/3 of the voting power (`--governance`, once per member, as for
a governance revoke). What is not changed is taken from the member's record as the node reports it, and printed
before it is submitted, so the signers see the whole record they sign.

Exit codes: 0 accepted (or committed with --wait); 1 refused by the ledger; 2 usage error; 3 node unreachable.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from credledger.cli.common import EXIT_OK, UsageError, add_node_argument, load_signing_key, print_json
from credledger.cli.signing import member_record
from credledger.ledger.errors import DecodeError
from credledger.ledger.events import MemberUpdate, UnsignedEvent, sign_event
from credledger.ledger.keys import SigningKey
from credledger.verifier.client import NodeClient

DEFAULT_TIMEOUT = 10.0
WAIT_TIMEOUT = 90.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "member",
        help="change a member by governance: its DID, name or voting power",
        description="Sign a member.update by governance (node keys of members holding more than 2/3 of the voting "
        "power) and submit it. Fields not given keep the member's current values, as the node reports them.",
        epilog="Exit codes: 0 accepted (or committed with --wait); 1 refused by the ledger; 2 usage error; "
        "3 node unreachable or not committed in time.",
    )
    parser.add_argument("action", choices=("update",), help="update: replace the member's DID, name or power")
    parser.add_argument("member", metavar="MEMBER", help="the member's id (e.g. uni-a.example)")
    parser.add_argument("--did", help="the member's new DID: did:web:<domain> or a did:key")
    parser.add_argument("--name", help="the member's new display name")
    parser.add_argument("--power", type=int, metavar="N", help="the member's new voting power (0: issues, no vote)")
    parser.add_argument(
        "--governance",
        action="append",
        required=True,
        metavar="FILE",
        help="node-key file of a member signing for governance (repeat: members with more than 2/3 of the power)",
    )
    parser.add_argument("--origin", help="the chain's origin (default: asked from the node)")
    parser.add_argument("--wait", action="store_true", help="wait until the event is committed")
    add_node_argument(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.did is None and args.name is None and args.power is None:
        raise UsageError("member update: give at least one of --did, --name, --power")
    signers = _signers(args.governance)
    try:
        client = NodeClient(args.node, timeout=args.timeout or (WAIT_TIMEOUT if args.wait else DEFAULT_TIMEOUT))
    except ValueError as exc:
        raise UsageError(f"--node: {exc}") from None
    known = client.members().get("members", [])
    if not any(isinstance(m, dict) and m.get("id") == args.member for m in known):
        raise UsageError(f"member update: {args.member!r} is not a member of the node's network")
    current = member_record(client, args.member)
    try:
        payload = MemberUpdate(
            args.member,
            current.name if args.name is None else args.name,
            current.power if args.power is None else args.power,
            current.node_key,
            args.did,
        )
    except (ValueError, DecodeError) as exc:
        raise UsageError(f"member update {args.member}: {exc}") from None
    origin = args.origin or str(client.status()["origin"])
    event = sign_event(UnsignedEvent(origin, int(time.time() * 1000), payload), *signers)
    answer = client.submit([event], wait=args.wait)
    result: dict[str, Any] = answer["results"][0]
    if args.json:
        print_json({"kind": payload.TAG, **answer})
    else:
        state = "committed" if result["status"] == "committed" else "accepted (pending)"
        did = payload.did or f"{current.did} (unchanged)"
        print(
            f"member.update of {args.member} signed by {', '.join(k.name for k in signers)} {state}: "
            f"event {result['id']}\n  name  {payload.name}\n  power {payload.power}\n  did   {did}"
        )
    return EXIT_OK


def _signers(paths: list[str]) -> list[SigningKey]:
    keys = [load_signing_key(path) for path in paths]
    names = [k.name for k in keys]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--governance: more than one key of {', '.join(repeated)}; give one node key per member")
    return keys
