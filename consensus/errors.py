"""Why the machine refused a message.

`MessageRejected` and its subclasses mean the peer broke the protocol (garbage, a bad signature, a sender that is
not a validator, a proposal from the wrong proposer); the driver may penalise the peer. `MessageOutOfWindow`
means the message is fine but not for now: for a height this machine has finished (`stale`) or one it cannot use
yet (too far ahead). A node that keeps seeing messages from ahead is behind and should fetch certified blocks.
Nothing the machine raises ever changes its state.
"""

from __future__ import annotations

from credledger.ledger.errors import CredledgerError, PeerMisbehaved


class MessageRejected(PeerMisbehaved):
    """A consensus message that breaks the protocol."""

    code = "consensus-message-rejected"


class MalformedMessage(MessageRejected):
    """Bytes that do not decode to a consensus message, or a message whose fields contradict each other."""

    code = "consensus-malformed"


class UnknownSigner(MessageRejected):
    """A message signed in the name of someone who is not a validator at its height."""

    code = "consensus-unknown-signer"


class BadMessageSignature(MessageRejected):
    """A message whose signature does not verify under the named validator's node key."""

    code = "consensus-bad-signature"


class NotProposer(MessageRejected):
    """A proposal from a validator that is not the proposer of its round."""

    code = "consensus-not-proposer"


class BadCertificate(MessageRejected):
    """A certified block whose certificate or contents do not verify."""

    code = "consensus-bad-certificate"


class MessageOutOfWindow(CredledgerError):
    """A well-formed message for a height or round the machine does not keep: dropped, not a protocol breach."""

    code = "consensus-out-of-window"

    def __init__(self, detail: str, *, height: int, stale: bool) -> None:
        super().__init__(detail)
        self.height = height
        self.stale = stale
