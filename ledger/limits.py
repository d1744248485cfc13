"""Size limits that every node and verifier enforces, defined once."""

from __future__ import annotations

import re

#: Member ids: ASCII, lowercase, DNS-label-like (DESIGN §2).
MEMBER_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{0,62}")
MAX_MEMBER_ID = 63
MAX_NAME = 200
MAX_ORIGIN = 200

MAX_COMPONENTS = 256
MAX_MEMBERS = 256
MAX_SIGNATURES = MAX_MEMBERS
MAX_ISSUER_KEYS = 64

#: Largest encoded event a node accepts (bytes); genesis may set it lower. `status.publish` has its own limit.
MAX_EVENT_BYTES = 16 * 1024
#: Largest `status.publish` event, whatever the genesis says: the Bitstring Status List standard fixes a list's
#: size (`STATUS_LIST_ENTRIES` bits), not the network. Its worst case -- bits with no pattern, which GZIP stores as
#: they are -- is an ``encodedList`` of 21,877 characters, about 23 KiB of event with the signed credential
#: around it (`tests/unit/test_status_rules.py` measures it), so every possible list fits.
MAX_STATUS_EVENT_BYTES = 32 * 1024
#: Largest encoded event of any kind: what decoders accept before the rules hold each kind to its own limit.
MAX_ANY_EVENT_BYTES = MAX_STATUS_EVENT_BYTES
#: Largest number of events in one block.
MAX_BLOCK_EVENTS = 10_000
#: Largest encoded record of any kind the codec will look at.
MAX_RECORD_BYTES = 64 * 1024 * 1024
#: Upper bound on voting power of one member, so sums never leave 63 bits.
MAX_POWER = 2**40

#: Entries in each of a member's Bitstring Status Lists (W3C Bitstring Status List §6.1 minimum: herd privacy).
STATUS_LIST_ENTRIES = 131_072
#: Lists a member may number (0 .. MAX_STATUS_LISTS - 1); a signer opens the next one when one is half full.
MAX_STATUS_LISTS = 65_536
