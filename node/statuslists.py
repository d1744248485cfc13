"""Publishing this node's member's Bitstring Status Lists (DESIGN §13).

Theory of operation
-------------------
The bits of every list are certified state (`ledger.credential_rules`); what verifiers fetch is a signed
``BitstringStatusListCredential``, which only the member's own key can make. So the member's validator, when it
holds an issuer key (`[credentials] issuer_key`), watches its lists: after every commit, `due_lists` compares each
list's bits in committed state with the list last published (`status.publish`, whose log position the state
records) and returns those that differ, or whose published credential is older than `refresh_ms`. The publisher
signs each one and admits it like any client's event; the rules check the bits again at the event's position, so a
list built before a status change that is still pending is refused and made again after the next commit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass

import structlog

from credledger.ledger.errors import CredledgerError
from credledger.ledger.events import StatusPublish, UnsignedEvent, decode_event, sign_event
from credledger.ledger.keys import SigningKey
from credledger.ledger.limits import MAX_STATUS_LISTS
from credledger.ledger.state import StateView, get_member, get_status_list, get_status_published
from credledger.ledger.storage.store import Snapshot
from credledger.ledger.vc.did import member_method_id
from credledger.ledger.vc.members import member_status_list
from credledger.ledger.vc.proof import sign_credential
from credledger.ledger.vc.statuslist import PURPOSES, read_status_list_credential
from credledger.node.application import LedgerApplication
from credledger.node.config import CredentialsConfig

#: How often the publisher looks for a new committed height.
POLL_S = 0.05

log = structlog.get_logger("credledger.statuslists")


@dataclass(frozen=True, slots=True)
class DueList:
    """A list whose published credential is missing, stale or old: its number, purpose and current bits."""

    list_number: int
    purpose: str
    bits: bytes


def member_lists(view: StateView, member_id: str) -> Iterator[int]:
    """The numbers of the member's status lists: 0, 1, ... up to the first that does not exist."""
    for list_number in range(MAX_STATUS_LISTS):
        if get_status_list(view, member_id, list_number) is None:
            return
        yield list_number


def published_credential(snap: Snapshot, member_id: str, list_number: int, purpose: str) -> tuple[str, int] | None:
    """The JSON text of the latest committed list credential for the member's list and purpose, and its height."""
    record = get_status_published(snap.state_view(), member_id, list_number, purpose)
    if record is None:
        return None
    payload = decode_event(snap.entry(record.index)).payload
    if not isinstance(payload, StatusPublish):
        raise CredledgerError(f"the state points at log entry {record.index}, which is no status.publish")
    return payload.credential, record.height


def due_lists(snap: Snapshot, member_id: str, now_ms: int, refresh_ms: int) -> list[DueList]:
    """The member's lists that need publishing: never published, bits unlike the state's, or older than refresh."""
    view = snap.state_view()
    due = []
    for list_number in member_lists(view, member_id):
        record = get_status_list(view, member_id, list_number)
        assert record is not None
        for purpose in PURPOSES:
            bits: bytes = getattr(record, purpose)
            published = published_credential(snap, member_id, list_number, purpose)
            if published is not None:
                document = json.loads(published[0])
                fresh = snap.header(published[1]).time_ms + refresh_ms > now_ms
                if fresh and read_status_list_credential(document).bits.data == bits:
                    continue
            due.append(DueList(list_number, purpose, bits))
    return due


class StatusPublisher:
    """Signs and submits the member's status lists whenever they are due (see the module docstring)."""

    def __init__(self, chain: LedgerApplication, member_id: str, key: SigningKey, config: CredentialsConfig) -> None:
        self._chain = chain
        self._member_id = member_id
        self._key = key
        self._config = config
        #: The event last admitted for each (list, purpose): while it is pending, the list is not made again.
        self._pending: dict[tuple[int, str], bytes] = {}
        #: DIDs the key cannot sign for (a did:key naming another key), already reported.
        self._unusable: set[str] = set()

    def publish_due(self) -> int:
        """Sign and admit every due list; return how many were admitted (refusals are logged, and retried later)."""
        now_ms = self._chain.now_ms()
        with self._chain.store.snapshot() as snap:
            member = get_member(snap.state_view(), self._member_id)
            due = [] if member is None else due_lists(snap, self._member_id, now_ms, self._config.status_refresh_ms)
        admitted = 0
        for item in due:
            assert member is not None
            pending = self._pending.get((item.list_number, item.purpose))
            if pending is not None and pending in self._chain.mempool:
                continue
            document = member_status_list(
                member,
                item.list_number,
                item.purpose,
                item.bits,
                valid_from_ms=now_ms,
                validity_ms=self._config.status_validity_ms,
            )
            try:
                method = member_method_id(member.did, self._key.key_id, self._key.public.raw)
            except CredledgerError as exc:
                if member.did not in self._unusable:  # said once per DID, not after every block
                    self._unusable.add(member.did)
                    log.warning("status lists not signed", member=self._member_id, reason=str(exc))
                break
            signed = sign_credential(document, self._key, method, now_ms)
            text = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            payload = StatusPublish(self._member_id, item.list_number, item.purpose, text)
            event = sign_event(UnsignedEvent(self._chain.genesis.origin, now_ms, payload), self._key)
            try:
                self._chain.admit(event)
            except CredledgerError as exc:
                log.info("status list not published", list=item.list_number, purpose=item.purpose, reason=str(exc))
                continue
            self._pending[item.list_number, item.purpose] = event.id
            admitted += 1
        return admitted

    async def run(self) -> None:
        """Publish after every commit (and once at start) until cancelled."""
        seen = -1
        while True:
            height = self._chain.height
            if height != seen and height > 0:
                seen = height
                self.publish_due()
            await asyncio.sleep(POLL_S)
