"""W3C Verifiable Credentials 2.0 / Open Badges 3.0 standards layer (DESIGN §13): pure, no network.

Theory of operation: a credential is a JSON-LD document. Everything here is a pure function over JSON values and
bytes, so a node, the CLI and a third-party verifier reach the same answer offline.

- `loader`     the JSON-LD contexts shipped with the code (``contexts/``) and the only document loader used.
- `canon`      RDFC-1.0 canonical N-Quads of a document (pyld's URDNA2015, with bounds on input and work).
- `multikey`   Ed25519 keys as Multikey ``publicKeyMultibase``, ``did:key`` and multibase codecs.
- `proof`      Data Integrity proofs with cryptosuite ``eddsa-rdfc-2022``: create and verify.
- `did`        DID Core documents for a member's issuer keys; ``did:web`` <-> URL.
- `statuslist` Bitstring Status List v1.0: ``encodedList``, status list credentials and entries.

Verification raises a subclass of `ledger.errors.VerificationError` naming the failed check; bad input raises a
subclass of `ledger.errors.DecodeError`.
"""
