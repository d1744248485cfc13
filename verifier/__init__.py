"""What verifiers, auditors and monitors run, with no server in sight.

A wallet or an admissions system needs one import: `from credledger.verifier import verify_credential`. The
auditor (`verifier.audit`), the split-view monitor (`verifier.monitor`) and the HTTP client of the node API
(`verifier.client`, standard library only) live beside it; nothing here imports the node, aiohttp or the command
line.
"""

from credledger.verifier.credential import Report, verify_credential

__all__ = ["Report", "verify_credential"]
