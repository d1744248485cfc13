"""`credledger issue | revoke | suspend | reinstate`: sign a credential event and submit it to a node.

CREDENTIAL is a credential JSON file (its digest is SHA-256 of the RFC 8785 canonical form), any other file
(SHA-256 of its bytes), or a digest as 64 hex digits. An issuer signs with its issuer-key file (`--key`; the key's
name is the member id). Revoke, suspend and reinstate may instead be signed by governance: `--governance` with
the node-key files of members holding more than 2/3 of the voting power.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from credledger.cli.batch import add_batch_arguments, run_batch
from credledger.cli.common import (
    EXIT_OK,
    UsageError,
    add_node_argument,
    add_raw_argument,
    digest_argument,
    load_signing_key,
    print_json,
    time_argument,
)
from credledger.cli.init import ISSUER_KEY_FILE
from credledger.ledger.events import (
    Issue,
    Payload,
    Reason,
    Reinstate,
    Revoke,
    Suspend,
    UnsignedEvent,
    reason_label,
    sign_event,
)
from credledger.ledger.keys import SigningKey
from credledger.verifier.client import NodeClient, NodeProblem, NodeUnreachable

DEFAULT_TIMEOUT = 10.0
#: With --wait the node holds the answer until commit (30 s by default), so the client waits longer.
WAIT_TIMEOUT = 90.0

_REASONS = ", ".join(reason_label(r) for r in Reason)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    descriptions = {
        "issue": "Record a credential as issued by the member whose issuer key signs.",
        "revoke": "Revoke a credential for good (the issuing member or governance).",
        "suspend": "Put a credential on hold (the issuing member or governance).",
        "reinstate": "Lift a credential's suspension (the issuing member or governance).",
    }
    for kind, description in descriptions.items():
        parser = commands.add_parser(
            kind,
            help=description.split(" (")[0].rstrip(".").lower(),
            description=description,
            epilog="Exit codes: 0 accepted (or committed with --wait); 1 refused by the ledger; 2 usage error; "
            "3 node unreachable or not committed in time.",
        )
        parser.add_argument(
            "credential",
            metavar="CREDENTIAL",
            nargs="?" if kind == "issue" else None,
            help="credential file, or its digest as 64 hex digits",
        )
        signers = parser.add_mutually_exclusive_group(required=True)
        signers.add_argument("--key", metavar="FILE", help="issuer-key file (C2SP signer key named by the member id)")
        if kind != "issue":
            signers.add_argument(
                "--governance",
                action="append",
                metavar="FILE",
                help="sign by governance with this node-key file (repeat for each member)",
            )
        parser.add_argument("--origin", help="the chain's origin (default: asked from the node)")
        if kind == "issue":
            parser.add_argument("--expires", metavar="TIME", help="expiry: ISO 8601 date or date-time, or ms")
            parser.add_argument(
                "--component",
                action="append",
                default=[],
                metavar="CREDENTIAL",
                help="a credential this one stacks (file or digest; repeatable)",
            )
            parser.add_argument(
                "--sign",
                action="store_true",
                help="CREDENTIAL is an unsigned VC 2.0 / Open Badges 3.0 credential: fill in issuer (the member's "
                "DID), validFrom and status entries, sign it (eddsa-rdfc-2022) with --key, register the signed one, "
                "and write it to --output",
            )
            parser.add_argument("-o", "--output", type=Path, metavar="OUT", help="with --sign: the signed credential")
            parser.add_argument("--force", action="store_true", help="with --sign: replace an existing OUT")
            parser.add_argument(
                "--achievement",
                metavar="ID@VERSION",
                help="the issuer's published achievement (and version) this credential awards; its stacking rule, "
                "if any, is checked against the components",
            )
            add_batch_arguments(parser)
        if kind in ("revoke", "suspend"):
            parser.add_argument(
                "--reason",
                default="unspecified",
                help=f"reason: a number 0..255 or one of {_REASONS} (default: unspecified)",
            )
        parser.add_argument("--wait", action="store_true", help="wait until the event is committed")
        add_raw_argument(parser)
        add_node_argument(parser)
        parser.set_defaults(func=run, kind=kind)


def run(args: argparse.Namespace) -> int:
    if getattr(args, "batch", None) is not None:
        return run_batch(args)
    if args.credential is None:
        raise UsageError("give CREDENTIAL (a file or a digest), or --batch DIR|FILE.jsonl")
    if getattr(args, "sign", False):
        return _run_signed(args)
    if getattr(args, "output", None) is not None:
        raise UsageError("--output is where --sign writes the signed credential; give --sign too")
    digest = digest_argument(args.credential, raw=args.raw)
    keys = _signers(args)
    timeout = args.timeout or (WAIT_TIMEOUT if args.wait else DEFAULT_TIMEOUT)
    client = _client(args.node, timeout)
    origin = args.origin or str(client.status()["origin"])
    payload = _payload(args, digest, keys[0])
    try:
        event = sign_event(UnsignedEvent(origin, int(time.time() * 1000), payload), *keys)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        answer = client.submit([event], wait=args.wait)
    except NodeProblem as exc:
        if exc.status < 500 and args.key is not None:
            _check_not_a_node_key(client, keys[0], args.key)
        raise
    result: dict[str, Any] = answer["results"][0]
    if args.json:
        print_json({"kind": args.kind, "digest": digest.hex(), **answer})
    elif result["status"] == "committed":
        print(
            f"{args.kind} of {digest.hex()} committed: event {result['id']} at log index {result['index']} "
            f"in block {result['height']}"
        )
    else:
        print(f"{args.kind} of {digest.hex()} accepted: event {result['id']} is pending")
    return EXIT_OK


def _run_signed(args: argparse.Namespace) -> int:
    # Imported only when signing: it loads the JSON-LD processor, which would slow every other command's start.
    from credledger.cli.signing import issue_signed, read_credential  # noqa: PLC0415

    if args.output is None:
        raise UsageError("--sign needs --output OUT, where the signed credential is written")
    if args.output.exists() and not args.force:
        raise UsageError(f"{args.output} exists already; refusing to overwrite it (use --force)")
    if args.raw:
        raise UsageError("--sign signs a JSON-LD credential; --raw does not apply")
    document = read_credential(args.credential)
    key = _signers(args)[0]
    timeout = args.timeout or (WAIT_TIMEOUT if args.wait else DEFAULT_TIMEOUT)
    try:
        client = NodeClient(args.node, timeout=timeout)
    except ValueError as exc:
        raise UsageError(f"--node: {exc}") from None
    origin = args.origin or str(client.status()["origin"])
    template = _payload(args, b"\x00" * 32, key)
    assert isinstance(template, Issue)
    answer, digest = issue_signed(client, key, document, args.output, origin=origin, issue=template, wait=args.wait)
    result: dict[str, Any] = answer["results"][0]
    if args.json:
        print_json({"kind": "issue", "digest": digest.hex(), "output": str(args.output), **answer})
    else:
        state = "committed" if result["status"] == "committed" else "accepted (pending)"
        print(f"signed credential {digest.hex()} written to {args.output}; issue {state}: event {result['id']}")
    return EXIT_OK


def _client(url: str, timeout: float) -> NodeClient:
    try:
        return NodeClient(url, timeout=timeout)
    except ValueError as exc:
        raise UsageError(f"--node: {exc}") from None


def _signers(args: argparse.Namespace) -> list[SigningKey]:
    paths: list[str] = getattr(args, "governance", None) or [args.key]
    keys = [load_signing_key(path) for path in paths]
    names = [k.name for k in keys]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UsageError(f"--governance: more than one key of {', '.join(repeated)}; give one node key per member")
    return keys


def _check_not_a_node_key(client: NodeClient, key: SigningKey, path: str) -> None:
    """Raise UsageError if the key that signed is a member's node key: the ledger then reads the event as a
    governance action signed by too little power, and its refusal says nothing about the key file."""
    try:
        members = client.members().get("members", [])
    except (NodeProblem, NodeUnreachable):
        return  # the refusal itself is the answer
    vkey = key.public.vkey()
    for member in members if isinstance(members, list) else []:
        if isinstance(member, dict) and member.get("node_key") == vkey:
            sibling = Path(path).parent / ISSUER_KEY_FILE
            hint = f" ({sibling})" if sibling.exists() else f" (the {ISSUER_KEY_FILE} beside it)"
            raise UsageError(
                f"--key {path}: this is the node key of {member.get('id')}, which signs consensus votes; "
                f"sign credentials with an issuer key{hint}"
            )


def _payload(args: argparse.Namespace, digest: bytes, key: SigningKey) -> Payload:
    try:
        if args.kind == "issue":
            expires = time_argument(args.expires, "--expires") if args.expires else None
            components = tuple(digest_argument(c, raw=args.raw) for c in args.component)
            achievement, version = achievement_argument(args.achievement)
            return Issue(digest, key.name, expires, components, achievement=achievement, achievement_version=version)
        if args.kind == "revoke":
            return Revoke(digest, reason_argument(args.reason))
        if args.kind == "suspend":
            return Suspend(digest, reason_argument(args.reason))
        return Reinstate(digest)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def achievement_argument(text: str | None) -> tuple[str | None, int | None]:
    """`--achievement ID@VERSION` as (id, version), or (None, None) when not given."""
    if text is None:
        return None, None
    achievement, sep, version = text.rpartition("@")
    if not sep or not achievement or not version.isdigit() or not 1 <= int(version) < 2**63:
        raise UsageError(f"--achievement: expected ID@VERSION such as data-cert@1, got {text!r}")
    return achievement, int(version)


def reason_argument(text: str) -> int:
    """A reason code from its number (0..255) or its name (key-compromise, KEY_COMPROMISE, ...)."""
    if text.isdigit():
        code = int(text)
        if code > 255:
            raise UsageError(f"--reason: {code} is not a reason code (0..255)")
        return code
    try:
        return int(Reason[text.upper().replace("-", "_")])
    except KeyError:
        raise UsageError(f"--reason: {text!r} is not a number 0..255 or one of {_REASONS}") from None
