"""`credledger record` and `credledger pathway`: a learner's whole record, and how far it goes toward awards.

`record` fetches the proofs of many credentials under one certified checkpoint, verifies them against the genesis
file and saves the record; `credledger verify RECORD` checks it again later, offline, in one step. `pathway`
verifies the same proofs, then evaluates the catalogue's award rules over the valid credentials.

Before anything touches a node, the credential files are checked to name one subject: the ledger never learns who
a learner is, so that check is made here, off the ledger, from the documents themselves (DESIGN §14).

Exit codes: record -- 0 saved; 2 usage error; 3 no node served a record that verifies. pathway -- 0 listed (with
--toward: the award is complete); 1 with --toward, the award is not complete yet; 2 usage error; 3 as record.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from credledger.cli.common import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    MAX_CREDENTIAL_BYTES,
    UsageError,
    digest_argument,
    error,
    print_json,
    write_new,
)
from credledger.ledger.bundle import ProofError
from credledger.ledger.errors import ConfigError, DecodeError, VerificationError
from credledger.ledger.genesis import load_genesis
from credledger.ledger.record import FORMAT as RECORD_FORMAT
from credledger.ledger.record import MAX_RECORD_BYTES, MAX_RECORD_CREDENTIALS, Record, RecordVerdict, verify_record
from credledger.ledger.stacking import AchievementRef, format_credits
from credledger.ledger.times import iso_ms
from credledger.verifier.client import DEFAULT_TIMEOUT
from credledger.verifier.learner import LearnerClient, fetch_record, pathways

DEFAULT_NODE = "http://127.0.0.1:8700"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    record = commands.add_parser(
        "record",
        help="save a learner's record: many credentials' proofs under one checkpoint",
        description="Fetch the proofs of every CREDENTIAL under one certified checkpoint, verify them against the "
        "genesis file and save them as one credledger-record/v1 file; `credledger verify FILE --genesis ...` checks "
        "it again offline.",
        epilog="Exit codes: 0 saved; 2 usage error; 3 no node served a record that verifies.",
    )
    _common(record)
    record.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the record (JSON)")
    record.add_argument("--force", action="store_true", help="replace the output file if it exists")
    record.set_defaults(func=run_record)
    pathway = commands.add_parser(
        "pathway",
        help="which published awards a learner's credentials complete, and what is missing",
        description="Verify the credentials' proofs under one checkpoint, then evaluate every published award "
        "rule (or the one --toward names) over the valid ones: complete awards first, then the closest, each "
        "with exactly what is missing. Advice: the ledger checks the rule again when the award is issued.",
        epilog="Exit codes: 0 listed (with --toward: complete); 1 with --toward: not complete yet; 2 usage error; "
        "3 no node served a record that verifies.",
    )
    _common(pathway)
    pathway.add_argument("--toward", metavar="MEMBER/ID", help="only this award, e.g. uni-b.example/data-cert")
    pathway.set_defaults(func=run_pathway)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("credentials", nargs="+", metavar="CREDENTIAL", help="credential files, or 64-hex digests")
    parser.add_argument("--genesis", required=True, metavar="FILE", help="the network's genesis file: the trust root")
    parser.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="URL",
        help=f"a node to ask (repeatable: asked in turn; default: $CREDLEDGER_NODE or {DEFAULT_NODE})",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="per node")
    parser.add_argument("--json", action="store_true", help="print a machine-readable report")


def _fetch(args: argparse.Namespace) -> tuple[Any, RecordVerdict, list[str]] | int:
    if len(args.credentials) > MAX_RECORD_CREDENTIALS:
        raise UsageError(f"a record holds at most {MAX_RECORD_CREDENTIALS} credentials")
    check_one_subject(args.credentials)
    digests = [digest_argument(c) for c in args.credentials]
    if len(set(digests)) != len(digests):
        raise UsageError("a credential is named twice")
    try:
        genesis = load_genesis(args.genesis)
    except (ConfigError, OSError, ValueError) as exc:
        raise UsageError(f"--genesis: {exc}") from None
    nodes = list(args.node) or [os.environ.get("CREDLEDGER_NODE", DEFAULT_NODE)]
    try:
        record, verdict = fetch_record(nodes, digests, genesis, timeout=args.timeout)
    except VerificationError as exc:
        error(str(exc))
        return EXIT_UNREACHABLE
    return record, verdict, nodes


def run_record(args: argparse.Namespace) -> int:
    fetched = _fetch(args)
    if isinstance(fetched, int):
        return fetched
    record, verdict, _ = fetched
    write_new(Path(args.output), record.dumps(), force=args.force)
    if args.json:
        print_json(verdict.to_json())
    else:
        print(render_record(verdict))
    return EXIT_OK


def run_pathway(args: argparse.Namespace) -> int:
    toward = None
    if args.toward is not None:
        member, sep, achievement = args.toward.partition("/")
        if not sep or not member or not achievement:
            raise UsageError(f"--toward: expected MEMBER/ID, got {args.toward!r}")
        toward = AchievementRef(member, achievement)
    fetched = _fetch(args)
    if isinstance(fetched, int):
        return fetched
    _, verdict, nodes = fetched
    try:
        found = pathways(LearnerClient(nodes[0], timeout=args.timeout), verdict, toward=toward)
    except VerificationError as exc:
        error(str(exc))
        return EXIT_UNREACHABLE
    if args.json:
        print_json({"record": verdict.to_json(), "pathways": [p.to_json() for p in found]})
    else:
        lines = [render_record(verdict), ""]
        if not found:
            lines.append("no published award has a stacking rule")
        for p in found:
            lines.append(f"{'COMPLETE' if p.outcome.met else 'MISSING '}  {p.target}  ({p.name})")
            lines.extend(f"    - {m}" for m in p.outcome.missing)
        print("\n".join(lines))
    if toward is not None and not (found and found[0].outcome.met):
        return EXIT_REFUSED
    return EXIT_OK


def render_record(verdict: RecordVerdict) -> str:
    """The record as a person reads it: each credential's status, then the totals of the valid ones."""
    lines = [f"record of {len(verdict.results)} credentials on {verdict.origin}, as of {iso_ms(verdict.as_of_ms)}"]
    for r in verdict.results:
        what = "" if r.achievement is None else f"  {r.achievement.member}/{r.achievement.id} v{r.achievement.version}"
        lines.append(f"  {r.verdict.status.upper():9} {r.verdict.digest.hex()[:16]}…{what}")
    credits = ", ".join(f"{format_credits(n)} {s}" for s, n in verdict.credits().items()) or "none"
    lines.append(f"credits (valid credentials): {credits}")
    lines.append(f"levels: {', '.join(verdict.levels()) or 'none'}")
    lines.append(f"skills: {', '.join(verdict.skills()) or 'none'}")
    return "\n".join(lines)


def check_one_subject(arguments: list[str]) -> None:
    """Refuse credential files that name different subjects (credentialSubject.id): a record is one learner's."""
    subjects: dict[str, str] = {}
    for text in arguments:
        path = Path(text)
        if not path.is_file():
            continue
        try:
            with path.open("rb") as file:
                document = json.loads(file.read(MAX_CREDENTIAL_BYTES + 1))
        except (OSError, ValueError, RecursionError):
            continue  # not JSON: nothing names a subject; digest_argument reports unreadable files
        subject = document.get("credentialSubject") if isinstance(document, dict) else None
        if isinstance(subject, dict) and isinstance(subject.get("id"), str):
            subjects[text] = subject["id"]
    if len(set(subjects.values())) > 1:
        named = "; ".join(f"{path}: {subject}" for path, subject in subjects.items())
        raise UsageError(f"the credentials name different subjects ({named}); a record is one learner's")


def is_record_file(text: str) -> bool:
    """Whether the CREDENTIAL argument of `verify` is a saved record rather than a credential."""
    path = Path(text)
    try:
        if not path.is_file() or path.stat().st_size > MAX_RECORD_BYTES:
            return False
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return False
    return RECORD_FORMAT.encode() in head and head.lstrip().startswith(b"{")


def verify_record_file(args: argparse.Namespace) -> int:
    """`credledger verify RECORD --genesis FILE`: offline, in one step. 0 every credential valid; 1 verified, but
    some are not valid; 3 the record does not verify."""
    try:
        genesis = load_genesis(args.genesis)
        record = Record.from_json(Path(args.credential).read_bytes())
    except (ConfigError, DecodeError, OSError) as exc:
        raise UsageError(f"{args.credential}: {exc}") from None
    try:
        verdict = verify_record(record, genesis)
    except ProofError as exc:
        error(f"the record does not verify: {exc}")
        return EXIT_UNREACHABLE
    if args.json:
        print_json(verdict.to_json())
    else:
        print(render_record(verdict))
    return EXIT_OK if len(verdict.valid) == len(verdict.results) else EXIT_REFUSED
