"""`credledger achievement` and `credledger recognition`: publish to the catalogue, retire, recognise, withdraw.

`achievement publish FILE` reads an Open Badges 3.0-shaped achievement definition (any JSON formatting: it is
submitted in its RFC 8785 canonical form), checks it as the ledger will, and submits it signed with the issuer
key; `achievement retire ID` stops new awards of one. `recognition publish FILE` and `recognition withdraw ID`
do the same for recognitions of other members' achievements (docs/design.md §14).

Exit codes: 0 accepted (or committed with --wait); 1 refused by the ledger; 2 usage error; 3 node unreachable.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from credledger.cli.common import EXIT_OK, UsageError, add_node_argument, load_signing_key, print_json
from credledger.ledger import jcs
from credledger.ledger.achievement import MAX_DEFINITION_BYTES
from credledger.ledger.errors import DecodeError
from credledger.ledger.events import (
    AchievementPublish,
    AchievementRetire,
    Payload,
    RecognitionPublish,
    RecognitionWithdraw,
    UnsignedEvent,
    sign_event,
)
from credledger.ledger.stacking import RuleError
from credledger.verifier.client import NodeClient

DEFAULT_TIMEOUT = 10.0
WAIT_TIMEOUT = 90.0
_ACTIONS = {"achievement": ("publish", "retire"), "recognition": ("publish", "withdraw")}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    helps = {
        "achievement": "publish an achievement definition to the catalogue, or retire one",
        "recognition": "recognise another member's achievements in your award rules, or withdraw a recognition",
    }
    for name, (publish, retire) in _ACTIONS.items():
        parser = commands.add_parser(
            name,
            help=helps[name],
            description=helps[name][0].upper() + helps[name][1:] + ". FILE is JSON in any formatting; it is "
            "checked as the ledger checks it and submitted in its RFC 8785 canonical form.",
            epilog="Exit codes: 0 accepted (or committed with --wait); 1 refused by the ledger; 2 usage error; "
            "3 node unreachable or not committed in time.",
        )
        parser.add_argument("action", choices=(publish, retire), help=f"{publish} FILE, or {retire} ID")
        parser.add_argument("target", metavar="FILE|ID", help="the definition file to publish, or the id to end")
        parser.add_argument("--key", required=True, metavar="FILE", help="issuer-key file of the member")
        parser.add_argument("--origin", help="the chain's origin (default: asked from the node)")
        parser.add_argument("--wait", action="store_true", help="wait until the event is committed")
        add_node_argument(parser)
        parser.set_defaults(func=run, catalogue=name)


def run(args: argparse.Namespace) -> int:
    key = load_signing_key(args.key)
    payload = _payload(args, key.name)
    try:
        client = NodeClient(args.node, timeout=args.timeout or (WAIT_TIMEOUT if args.wait else DEFAULT_TIMEOUT))
    except ValueError as exc:
        raise UsageError(f"--node: {exc}") from None
    origin = args.origin or str(client.status()["origin"])
    event = sign_event(UnsignedEvent(origin, int(time.time() * 1000), payload), key)
    answer = client.submit([event], wait=args.wait)
    result: dict[str, Any] = answer["results"][0]
    if args.json:
        print_json({"kind": payload.TAG, **answer})
    else:
        state = "committed" if result["status"] == "committed" else "accepted (pending)"
        print(f"{payload.TAG} by {key.name} {state}: event {result['id']}")
    return EXIT_OK


def _payload(args: argparse.Namespace, member: str) -> Payload:
    try:
        if args.action == "publish":
            definition = _canonical(args.target)
            if args.catalogue == "achievement":
                return AchievementPublish(member, definition)
            return RecognitionPublish(member, definition)
        if args.catalogue == "achievement":
            return AchievementRetire(member, args.target)
        return RecognitionWithdraw(member, args.target)
    except (ValueError, RuleError) as exc:
        raise UsageError(f"{args.target}: {exc}") from None


def _canonical(path: str) -> bytes:
    try:
        data = Path(path).read_bytes()[: MAX_DEFINITION_BYTES * 4 + 1]
        return jcs.canonical_json(data.decode())
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    except (UnicodeDecodeError, jcs.NotJson, DecodeError) as exc:
        raise UsageError(f"{path}: not JSON ({exc})") from None
