"""Every hash prefix and signature domain-separation string, defined once.

No two domains share a prefix, and none of the binary domains can parse as a signed note (notes are signed over
their UTF-8 text, which never starts with "credledger/"), so a signature made for one purpose can never be
replayed for another.
"""

from __future__ import annotations

# RFC 6962 / RFC 9162 §2.1.1 Merkle tree hashing.
LOG_LEAF = b"\x00"
LOG_NODE = b"\x01"

# Sparse Merkle state map (DESIGN §5).
SMT_LEAF = b"\x02"
SMT_NODE = b"\x03"

# State-map key namespaces (DESIGN §5).
STATE_CRED = b"cred\x00"
STATE_MEMBER = b"member\x00"
STATE_KEY = b"key\x00"
STATE_EVIDENCE = b"evidence\x00"
STATE_STATUS_LIST = b"statuslist\x00"
STATE_STATUS_SLOT = b"statusslot\x00"
STATE_STATUS_OF = b"statusof\x00"
STATE_STATUS_PUBLISHED = b"statuspub\x00"
STATE_ACHIEVEMENT = b"achievement\x00"
STATE_AWARD = b"award\x00"
STATE_RECOGNITION = b"recognition\x00"

# Signatures and hashes over binary records.
EVENT = b"credledger/event/v1\x00"
HEADER = b"credledger/header/v1\x00"
PROPOSAL = b"credledger/proposal/v1\x00"
PREVOTE = b"credledger/prevote/v1\x00"
PRECOMMIT_NIL = b"credledger/precommit-nil/v1\x00"
PEER_CHALLENGE = b"credledger/peer-challenge/v1\x00"
VALIDATOR_SET = b"credledger/validator-set/v1\x00"
GENESIS = b"credledger/genesis/v1\x00"
EVIDENCE = b"credledger/evidence/v1\x00"

# The extension line of a checkpoint note (DESIGN §6).
CHECKPOINT_EXTENSION = "credledger"
