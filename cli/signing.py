"""`credledger issue CREDENTIAL --sign -o OUT`: issue a standard, signed credential (DESIGN §13).

The unsigned VC 2.0 / Open Badges 3.0 credential gets the member's DID as issuer, `validFrom`, and status entries at
a random free entry of the member's first list less than half full; it is signed ``eddsa-rdfc-2022`` with the issuer
key, and the signed document's digest is registered with an `issue` event naming that entry. If another issuer took
the entry meanwhile (the ledger refuses it as `status-entry-used`), another entry is drawn and the credential signed
again. OUT is written once the node has accepted the event (or committed it, with --wait).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from credledger.cli.common import MAX_CREDENTIAL_BYTES, UsageError
from credledger.ledger.digest import credential_digest
from credledger.ledger.errors import DecodeError
from credledger.ledger.events import Issue, UnsignedEvent, sign_event
from credledger.ledger.keys import PublicKey, SigningKey
from credledger.ledger.state import MemberRecord
from credledger.ledger.vc.errors import ProofError
from credledger.ledger.vc.issuing import (
    CredentialRefused,
    check_awarded_achievement,
    choose_status_entry,
    prepare_credential,
    sign_issued,
)
from credledger.verifier.client import NodeClient, NodeProblem

#: Draws of a new entry after the ledger refused one as taken.
MAX_DRAWS = 8


def read_credential(path: str) -> dict[str, Any]:
    """The unsigned credential JSON object in the file at `path`."""
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_CREDENTIAL_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_CREDENTIAL_BYTES:
        raise UsageError(f"{path}: larger than {MAX_CREDENTIAL_BYTES} bytes")
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        raise UsageError(f"{path}: --sign needs a JSON-LD credential, and this is not JSON") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path}: --sign needs a JSON-LD credential object")
    return document


def member_record(client: NodeClient, member_id: str) -> MemberRecord:
    """The signing member's record as the node reports it (its DID and name are what the credential states)."""
    for member in client.members().get("members", []):
        if isinstance(member, dict) and member.get("id") == member_id:
            try:
                node_key = PublicKey.from_vkey(str(member["node_key"])).raw
                return MemberRecord(
                    member_id, str(member["name"]), int(member["power"]), node_key, bool(member["active"]),
                    int(member["since"]), (), str(member["did"]),
                )  # fmt: skip
            except (KeyError, ValueError, TypeError, DecodeError) as exc:
                raise UsageError(f"the node's record of {member_id} is not usable: {exc}") from None
    raise UsageError(f"{member_id} (the --key's member) is not a member of the node's network")


def issue_signed(
    client: NodeClient,
    key: SigningKey,
    document: dict[str, Any],
    output: Path,
    *,
    origin: str,
    issue: Issue,
    wait: bool,
) -> tuple[dict[str, Any], bytes]:
    """Sign `document` for the member of `key`, register it (`issue` gives expiry, components and the achievement
    it awards, which the document's own Open Badges achievement must agree with), write `output`.

    Returns the node's answer and the registered digest."""
    try:
        check_awarded_achievement(document, issue.achievement)
    except CredentialRefused as exc:
        raise UsageError(f"cannot issue this credential: {exc}") from None
    member = member_record(client, key.name)
    usage = client.status_usage(key.name)
    used = [int(entry["used"]) for entry in usage.get("lists", [])]
    for _ in range(MAX_DRAWS):
        list_number, index = choose_status_entry(used, lambda _list, _index: False)
        now_ms = int(time.time() * 1000)
        try:
            signed = sign_issued(prepare_credential(document, member, list_number, index, now_ms), member, key, now_ms)
        except (CredentialRefused, ProofError, DecodeError) as exc:
            raise UsageError(f"cannot issue this credential: {exc}") from None
        text = json.dumps(signed, indent=2, ensure_ascii=False) + "\n"
        digest = credential_digest(text.encode())
        payload = Issue(
            digest,
            key.name,
            issue.expires_ms,
            issue.components,
            list_number,
            index,
            achievement=issue.achievement,
            achievement_version=issue.achievement_version,
        )
        event = sign_event(UnsignedEvent(origin, now_ms, payload), key)
        try:
            answer = client.submit([event], wait=wait)
        except NodeProblem as exc:
            if exc.rule == "status-entry-used":
                continue
            raise
        output.write_text(text, encoding="utf-8")
        return answer, digest
    raise UsageError(f"the ledger refused {MAX_DRAWS} random status entries as taken; try again")
