"""Tendermint consensus for one validator, as a pure state machine.

Theory of operation
-------------------
This file holds every transition of Algorithm 1 of Buchman, Kwon and Milosevic, "The latest gossip on BFT
consensus" (arXiv 1807.04938); the paper's line numbers stand beside the rules (L22, L28, ...). The machine does
no I/O and reads no clock: the driver feeds it messages (`handle`), expired timeouts (`on_timeout`), certified
blocks fetched from peers (`commit_certified`) and the time, and executes the `Action`s it returns, in order.
The same code runs for every validator; nothing here knows which node it is beyond the signing key, and a
machine without a key follows consensus as an observer.

Inputs are checked at the edge before they can change anything: the height must be the current one (or the
next, into a bounded buffer), the round within `round_window` of the current one, the signer a validator of
that height, the proposer the one of that round, and the signature valid. A message identical to one kept
already is dropped without verifying it again, so each signature is checked once. Refusals raise
`MessageRejected` (the peer broke the protocol) or `MessageOutOfWindow` (not for now); neither changes state.

After every accepted input the "upon" rules run to a fixed point (`_progress`): deciding (L49, any round) first,
then skipping ahead (L55), then the rules of the current round. Thresholds count voting power: "2f + 1" is more
than 2/3 of the total (`quorum`) and "f + 1" more than 1/3 (`weak_quorum`).

Departures from the paper's letter, none of which touches safety:
- valid(v) (L23, L29, L36, L50) also checks the header names this network, height, validator sets and the
  proposer of the round it was built in; a fresh proposal (pol_round -1) must be built in its own round.
- L36 and L49 need the block, not the proposal of that very round: a block seen in any proposal of the height
  serves, so a validator that timed out of the round where the block was proposed still locks and decides.
- L55 counts, for each validator, the highest round it has sent anything for, and skips to the highest round
  reached by f + 1 power; at least one honest validator is at that round or beyond.
- A quorum "for v" counts distinct validators that signed for v, including the second, conflicting vote of an
  equivocator when v is a block the machine holds (or nil); the first vote alone counts towards "any value".
  Each such quorum still contains f + 1 honest votes for v, and without it a polka that other validators saw
  could stay invisible here. A re-proposal (L16) is sent with the prevotes that justify it, so every validator
  can check L28 whatever it received before.
- Round 0 of a height waits up to the heartbeat for events before the proposer proposes (or the others start
  the propose timeout); rounds after 0 never wait. Proposals received meanwhile are handled as usual.
- A validator re-sends the votes it signed at the current height (and the current round's proposal, if its
  own) every `rebroadcast_ms`: the paper assumes gossip delivers every message eventually, and lossy links and
  crashes do not. The safety record keeps those votes, so a restart does not lose them.
- Every signature goes through the double-sign guard (`consensus.safety`); a refused vote leaves the step
  transition as the paper has it, as if the vote had been lost.
"""

from __future__ import annotations

from credledger.consensus.actions import Action, Broadcast, Decide, PersistSafety, RecordEvidence, ScheduleTimeout
from credledger.consensus.app import Application
from credledger.consensus.errors import (
    BadCertificate,
    BadMessageSignature,
    MessageOutOfWindow,
    NotProposer,
    UnknownSigner,
)
from credledger.consensus.proposer import ProposerSchedule, Rotation
from credledger.consensus.safety import MAX_STATEMENTS, SafetyRecord
from credledger.consensus.tally import Added, HeightLog
from credledger.consensus.timeouts import Timeout, TimeoutConfig, TimeoutKind
from credledger.ledger.block import Block, CertifiedBlock, verify_certified_header
from credledger.ledger.errors import BadSignature, DecodeError, InvalidBlock, InvalidEvent, VerificationError
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import SignedNote
from credledger.ledger.validators import ValidatorSet
from credledger.ledger.votes import (
    BlockRef,
    Message,
    Precommit,
    Prevote,
    Proposal,
    SignedProposal,
    Step,
    Vote,
    make_evidence,
    same_statement,
    sign_precommit,
    sign_prevote,
    sign_proposal,
    verify_vote,
)

#: Rounds above the current one whose messages are kept in full; beyond it only each validator's latest vote.
ROUND_WINDOW = 16
#: Furthest round ahead of the current one a message may name. Entering round r costs r proposer elections
#: (`Rotation`), so a message naming round 2^40 would otherwise cost hours of CPU; honest validators, whose timeouts
#: grow with the round, never drift this far apart (a thousand rounds is days at the timeout cap).
MAX_ROUNDS_AHEAD = 1_000


class Machine:
    """One validator's (or observer's) Tendermint state machine."""

    def __init__(
        self,
        *,
        origin: str,
        app: Application,
        schedule: ProposerSchedule,
        signer: SigningKey | None = None,
        timeouts: TimeoutConfig | None = None,
        safety: SafetyRecord | None = None,
        round_window: int = ROUND_WINDOW,
    ) -> None:
        self._origin = origin
        self._app = app
        self._signer = signer
        self._timeouts = timeouts or TimeoutConfig()
        self._safety = safety
        self._window = round_window
        self._schedule = schedule
        self._next_schedule: ProposerSchedule | None = None
        # L2-L9: the current height, round and step; lock and valid value.
        self._height = 0
        self._round = 0
        self._step = Step.PROPOSE
        self._decided = False
        self._waiting = False
        self._locked_round = -1
        self._locked_hash: bytes | None = None
        self._valid_round = -1
        self._valid_block: Block | None = None
        self._log = HeightLog(0, schedule.validators)
        self._next_log: HeightLog | None = None
        self._rotation = Rotation(schedule)
        self._next_rotation: Rotation | None = None
        self._validity: dict[bytes, str | None] = {}
        self._fired: set[tuple[str, int]] = set()
        self._candidates: dict[tuple[int, BlockRef], None] = {}
        #: The signing key while it belongs to a validator of the current height (None: observe only).
        self._me: SigningKey | None = None
        self._actions: list[Action] = []
        self._now = 0

    # -- what the driver may read -------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self._height

    @property
    def round(self) -> int:
        return self._round

    @property
    def step(self) -> Step:
        return self._step

    @property
    def decided(self) -> bool:
        return self._decided

    @property
    def locked(self) -> tuple[int, bytes | None]:
        return self._locked_round, self._locked_hash

    @property
    def valid(self) -> tuple[int, Block | None]:
        return self._valid_round, self._valid_block

    @property
    def validators(self) -> ValidatorSet:
        return self._log.validators

    def proposer(self, round_: int) -> str:
        """The proposer of `round_` at the current height."""
        return self._rotation.proposer(round_)

    def voted_power(self) -> tuple[int, int, bool]:
        """Power that prevoted and that precommitted (anything, nil included) in the current round, and whether
        its proposal has been received: what an operator asks when a height does not end."""
        prevotes = self._log.prevotes.get(self._round)
        precommits = self._log.precommits.get(self._round)
        return (
            prevotes.total if prevotes is not None else 0,
            precommits.total if precommits is not None else 0,
            self._round in self._log.proposals,
        )

    # -- inputs -------------------------------------------------------------------------------------------

    def start(self, height: int, now_ms: int) -> list[Action]:
        """Begin `height` (L10): the schedule's height first, then each next height once the last is stored."""
        if self._height == 0:
            if height != self._schedule.height:
                raise ValueError(f"first height must be the schedule's ({self._schedule.height}), got {height}")
        elif height == self._height + 1:
            self._schedule = self._schedule_after()
        else:
            raise ValueError(f"cannot start height {height} from height {self._height}")
        self._now = now_ms
        nxt = self._next_log
        self._log = nxt if nxt is not None and nxt.height == height else HeightLog(height, self._app.validators(height))
        self._rotation = self._next_rotation if self._next_rotation is not None else Rotation(self._schedule)
        self._next_log, self._next_rotation, self._next_schedule = None, None, None
        self._height, self._decided = height, False
        # L53: reset the lock, the valid value and the message log.
        self._locked_round, self._locked_hash, self._valid_round, self._valid_block = -1, None, -1, None
        self._validity, self._fired, self._candidates = {}, set(), {}
        self._me = self._member_key(self._log.validators)
        first_round = self._restore()
        for round_, tally in self._log.precommits.items():
            ref = tally.block_with(self._log.validators.quorum)
            if isinstance(ref, BlockRef):
                self._candidates[round_, ref] = None
        self._start_round(first_round)
        self._progress()
        return self._flush()

    def handle(self, message: Message, now_ms: int) -> list[Action]:
        """Take in a message from a peer. Raises `MessageRejected` or `MessageOutOfWindow`, changing nothing."""
        self._require_started()
        self._now = now_ms
        log = self._log_for(message)
        if log.contains(message):
            return []
        self._verify(message, log)
        self._add(message, log)
        if log is self._log:
            self._progress()
        return self._flush()

    def on_timeout(self, timeout: Timeout, now_ms: int) -> list[Action]:
        """A timeout the machine scheduled has expired; stale ones do nothing."""
        self._require_started()
        self._now = now_ms
        if timeout.height != self._height or timeout.round != self._round or self._decided:
            return []
        kind = timeout.kind
        if kind is TimeoutKind.PROPOSE and self._step is Step.PROPOSE:  # L57-L60
            self._prevote(None)
        elif kind is TimeoutKind.PREVOTE and self._step is Step.PREVOTE:  # L61-L64
            self._precommit(None)
        elif kind is TimeoutKind.PRECOMMIT:  # L65-L67
            self._start_round(self._round + 1)
        elif kind is TimeoutKind.HEARTBEAT and self._waiting:
            self._waiting = False
            self._enter_propose()
        elif kind is TimeoutKind.REBROADCAST:
            self._rebroadcast()
        self._progress()
        return self._flush()

    def wake(self, now_ms: int) -> list[Action]:
        """Events are waiting: stop holding round 0 for the heartbeat."""
        self._require_started()
        self._now = now_ms
        if self._waiting and not self._decided:
            self._waiting = False
            self._enter_propose()
            self._progress()
        return self._flush()

    def commit_certified(self, certified: CertifiedBlock, now_ms: int) -> list[Action]:
        """Decide the current height from a certified block fetched from a peer (a node that fell behind)."""
        self._require_started()
        self._now = now_ms
        header = certified.header
        if self._decided or header.height != self._height:
            raise MessageOutOfWindow(
                f"certified block {header.height} is not for undecided height {self._height}",
                height=header.height,
                stale=header.height <= self._height,
            )
        try:
            verify_certified_header(header, certified.note(), self._log.validators)
        except (DecodeError, VerificationError) as exc:
            raise BadCertificate(f"certified block {header.height}: {exc}") from None
        problem = self._invalid(certified.block)
        if problem is not None:
            raise BadCertificate(f"certified block {header.height} breaks the ledger rules: {problem}")
        self._log.blocks.setdefault(certified.block.hash(), certified.block)
        self._decide(certified.block, certified.certificate)
        return self._flush()

    # -- the edge: which log, and is it genuine ------------------------------------------------------------

    def _require_started(self) -> None:
        if self._height == 0:
            raise RuntimeError("the machine has not been started")

    def _log_for(self, message: Message) -> HeightLog:
        height, round_ = message.height, message.round
        if height < self._height or (height == self._height and self._decided):
            raise MessageOutOfWindow(f"message for finished height {height}", height=height, stale=True)
        if height > self._height + 1:
            raise MessageOutOfWindow(f"message for height {height}, at {self._height}", height=height, stale=False)
        if height == self._height:
            if round_ > self._round + MAX_ROUNDS_AHEAD:
                raise MessageOutOfWindow(f"round {round_}, at {self._round}", height=height, stale=False)
            if isinstance(message, Proposal) and round_ > self._round + self._window:
                raise MessageOutOfWindow(f"proposal for round {round_}, at {self._round}", height=height, stale=False)
            return self._log
        if round_ >= self._window:
            raise MessageOutOfWindow(f"round {round_} of the next height", height=height, stale=False)
        if self._next_log is None:
            self._next_log = HeightLog(height, self._app.validators(height))
            self._next_rotation = Rotation(self._schedule_after())
        return self._next_log

    def _verify(self, message: Message, log: HeightLog) -> None:
        kind = type(message).__name__.lower()
        if message.signer not in log.validators:
            raise UnknownSigner(f"{kind} {message.height}/{message.round}: {message.signer!r} is not a validator")
        if isinstance(message, Proposal):
            rotation = self._rotation if log is self._log else self._next_rotation
            assert rotation is not None
            expected = rotation.proposer(message.round)
            if message.proposer != expected:
                raise NotProposer(
                    f"proposal {message.height}/{message.round} from {message.proposer}, the proposer is {expected}"
                )
        try:
            verify_vote(message, log.validators, self._origin)
        except (BadSignature, VerificationError) as exc:
            raise BadMessageSignature(f"{kind} {message.height}/{message.round} by {message.signer}: {exc}") from None

    def _add(self, message: Message, log: HeightLog) -> None:
        if isinstance(message, Proposal):
            added, kept = log.add_proposal(message)
            if added is Added.CONFLICT:
                self._report(log, kept, message)
        elif log is self._log and message.round > self._round + self._window:
            log.keep_ahead(message)
        else:
            added, vote = log.add_vote(message)
            if log is self._log and isinstance(message, Precommit):
                self._note_precommit(message)
            if added is Added.CONFLICT:
                self._report(log, vote, message)

    def _report(self, log: HeightLog, kept: Message, other: Message) -> None:
        key = (other.signer, other.round, int(other.step))
        if key in log.evidenced or same_statement(kept, other, self._origin):
            return
        log.evidenced.add(key)
        self._actions.append(RecordEvidence(make_evidence(kept, other)))

    def _note_precommit(self, precommit: Precommit) -> None:
        if precommit.block is None:
            return
        tally = self._log.precommits_at(precommit.round)
        if tally.power_for(precommit.block) >= self._log.validators.quorum:
            self._candidates[precommit.round, precommit.block] = None

    # -- the upon rules ------------------------------------------------------------------------------------

    def _progress(self) -> None:
        while not self._decided:
            if self._try_decide():
                return
            target = self._log.skip_target(self._round, self._log.validators.weak_quorum)
            if target is not None:  # L55-L56
                self._start_round(target)
                continue
            if not self._round_rules():
                return

    def _try_decide(self) -> bool:
        """L49-L54: a quorum of precommits in any round for a block we hold and find valid."""
        for round_, ref in list(self._candidates):
            block = self._log.blocks.get(ref.header_hash)
            if block is None or BlockRef.of(block.header) != ref or self._invalid(block) is not None:  # L50
                continue
            precommits = self._log.quorum_certificate(round_, ref)
            validators = self._log.validators
            lines = tuple(p.note_signature(v) for p in precommits if (v := validators.get(p.validator)) is not None)
            note = SignedNote(ref.checkpoint(self._origin, self._height, round_).body(), lines)
            self._decide(block, note.format())
            return True
        return False

    def _decide(self, block: Block, certificate: str) -> None:
        self._decided = True  # L51; the driver stores the block, then starts the next height (L52-L54).
        self._actions.append(Decide(CertifiedBlock(block, certificate), self._schedule_after()))

    def _round_rules(self) -> bool:
        """The rules of the current round; True if one fired."""
        return self._on_proposal() or self._on_prevotes() or self._on_precommits()

    def _on_proposal(self) -> bool:
        """L22-L33: the round's proposal, while in the propose step."""
        r, log = self._round, self._log
        proposal = log.proposals.get(r)
        if self._step is not Step.PROPOSE or proposal is None:
            return False
        block, vr, value = proposal.block, proposal.pol_round, proposal.block_hash
        if vr == -1:  # L22
            valid = block.header.round == r and self._invalid(block) is None  # L23
            ok = valid and (self._locked_round == -1 or self._locked_hash == value)
            self._prevote(value if ok else None)  # L24-L27
            return True
        if log.prevotes_at(vr).power_for(value) >= log.validators.quorum:  # L28
            ok = (self._locked_round <= vr or self._locked_hash == value) and self._invalid(block) is None  # L29
            self._prevote(value if ok else None)  # L30-L33
            return True
        return False

    def _on_prevotes(self) -> bool:
        """L34-L46: a quorum of prevotes in the current round."""
        r, quorum = self._round, self._log.validators.quorum
        prevotes = self._log.prevotes_at(r)
        if self._step is Step.PREVOTE and prevotes.total >= quorum and self._once("L34"):
            self._set_timeout(TimeoutKind.PREVOTE)  # L35
            return True
        if self._step >= Step.PREVOTE and ("L36", r) not in self._fired:  # L36
            value = prevotes.block_with(quorum)
            block = self._log.blocks.get(value) if isinstance(value, bytes) else None
            if block is not None and self._invalid(block) is None:
                self._fired.add(("L36", r))
                self._valid_block, self._valid_round = block, r  # L42-L43
                if self._step is Step.PREVOTE:  # L37
                    self._locked_hash, self._locked_round = block.hash(), r  # L38-L39
                    self._precommit(block)  # L40-L41
                else:
                    self._persist_locks()
                return True
        if self._step is Step.PREVOTE and prevotes.power_for(None) >= quorum:  # L44
            self._precommit(None)  # L45-L46
            return True
        return False

    def _on_precommits(self) -> bool:
        """L47-L48: a quorum of precommits of any value in the current round."""
        if self._log.precommits_at(self._round).total >= self._log.validators.quorum and self._once("L47"):
            self._set_timeout(TimeoutKind.PRECOMMIT)
            return True
        return False

    def _once(self, rule: str) -> bool:
        key = (rule, self._round)
        if key in self._fired:
            return False
        self._fired.add(key)
        return True

    # -- StartRound and the statements a validator makes ---------------------------------------------------

    def _start_round(self, round_: int) -> None:
        """L11-L21."""
        self._round, self._step, self._waiting = round_, Step.PROPOSE, False  # L12-L13
        for vote in self._log.release_ahead(round_ + self._window):
            self._add(vote, self._log)
        if self._me is not None:
            self._set_timeout(TimeoutKind.REBROADCAST)
        if round_ == 0 and self._timeouts.heartbeat_ms > 0 and not self._app.has_pending_events():
            self._waiting = True
            self._set_timeout(TimeoutKind.HEARTBEAT)
            return
        self._enter_propose()

    def _enter_propose(self) -> None:
        """L14-L21: the proposer proposes; everyone else waits for the proposal, at most timeoutPropose."""
        is_proposer = self._me is not None and self._rotation.proposer(self._round) == self._me.name  # L14
        if is_proposer and self._propose():
            return
        self._set_timeout(TimeoutKind.PROPOSE)  # L21

    def _propose(self) -> bool:
        h, r, me = self._height, self._round, self._me
        assert me is not None
        resent = self._resend(Step.PROPOSE)
        if isinstance(resent, SignedProposal):
            block = self._log.blocks.get(resent.block_hash)
            if block is None:
                return False
            proposal = Proposal(h, r, block, resent.pol_round, resent.proposer, resent.signature)
        elif resent is not None or not self._may_sign(Step.PROPOSE):
            return False
        elif self._valid_block is not None:  # L15-L16
            proposal = sign_proposal(me, self._origin, h, r, self._valid_block, pol_round=self._valid_round)
            self._guard(proposal.signed())
        else:  # L17-L18
            block = self._app.build_block(h, r, self._now, me.name)
            self._validity[block.hash()] = self._header_problem(block)
            proposal = sign_proposal(me, self._origin, h, r, block, pol_round=-1)
            self._guard(proposal.signed())
        self._actions.append(Broadcast(proposal))  # L19
        self._log.add_proposal(proposal)
        self._forward_proof_of_lock(proposal)
        return True

    def _forward_proof_of_lock(self, proposal: Proposal) -> None:
        """With a re-proposal, send the prevotes that justify it (L28 needs them at every validator)."""
        if proposal.pol_round >= 0:
            polka = self._log.prevotes_at(proposal.pol_round).voters_for(proposal.block_hash)
            self._actions.extend(Broadcast(vote) for vote in polka)

    def _prevote(self, block_hash: bytes | None) -> None:
        """Broadcast a prevote (L24/L26, L30/L32, L59) and move to the prevote step."""
        self._step = Step.PREVOTE
        if self._me is None:
            return
        resent = self._resend(Step.PREVOTE)
        vote: Prevote | None = None
        if resent is not None:
            vote = resent if isinstance(resent, Prevote) and resent.block_hash == block_hash else None
        elif self._may_sign(Step.PREVOTE):
            vote = sign_prevote(self._me, self._origin, self._height, self._round, block_hash)
            self._guard(vote)
        if vote is not None:
            self._actions.append(Broadcast(vote))
            self._log.add_vote(vote)

    def _precommit(self, block: Block | None) -> None:
        """Broadcast a precommit (L40, L45, L63) and move to the precommit step."""
        self._step = Step.PRECOMMIT
        if self._me is None:
            return
        header = None if block is None else block.header
        ref = None if header is None else BlockRef.of(header)
        resent = self._resend(Step.PRECOMMIT)
        vote: Precommit | None = None
        if resent is not None:
            vote = resent if isinstance(resent, Precommit) and resent.block == ref else None
        elif self._may_sign(Step.PRECOMMIT):
            vote = sign_precommit(self._me, self._origin, self._height, self._round, header)
            self._guard(vote)
        if vote is not None:
            self._actions.append(Broadcast(vote))
            self._log.add_vote(vote)
            self._note_precommit(vote)

    def _rebroadcast(self) -> None:
        """Re-send this round's proposal (if ours) and every vote signed at this height: the paper's gossip
        assumption, that every message a correct validator sent arrives eventually, on links that lose them."""
        if self._me is None:
            return
        proposal = self._log.proposals.get(self._round)
        if proposal is not None and proposal.proposer == self._me.name:
            self._actions.append(Broadcast(proposal))
            self._forward_proof_of_lock(proposal)
        record = self._safety
        if record is not None and record.height == self._height:
            self._actions.extend(Broadcast(s) for s in record.signed if isinstance(s, Prevote | Precommit))
        self._set_timeout(TimeoutKind.REBROADCAST)

    # -- the double-sign guard -------------------------------------------------------------------------------

    def _may_sign(self, step: Step) -> bool:
        return self._safety is None or self._safety.permits(self._height, self._round, step)

    def _resend(self, step: Step) -> Vote | None:
        """The statement the safety record holds for exactly this slot, if any (to re-send after a restart)."""
        record = self._safety
        if record is not None and record.slot == (self._height, self._round, int(step)):
            return record.last
        return None

    def _guard(self, statement: Vote) -> None:
        """Record the slot (with the lock) and make it durable before the statement is broadcast."""
        record = self._safety
        earlier = record.signed if record is not None and record.height == self._height else ()
        signed = (*earlier[-MAX_STATEMENTS + 1 :], statement)
        self._safety = SafetyRecord(self._height, self._round, int(statement.step), signed, *self._lock_fields())
        self._actions.append(PersistSafety(self._safety))

    def _persist_locks(self) -> None:
        record = self._safety
        if self._me is None or record is None or record.height != self._height:
            return
        self._safety = SafetyRecord(record.height, record.round, record.step, record.signed, *self._lock_fields())
        self._actions.append(PersistSafety(self._safety))

    def _lock_fields(self) -> tuple[int, bytes | None, int, Block | None]:
        return self._locked_round, self._locked_hash, self._valid_round, self._valid_block

    def _restore(self) -> int:
        """After a restart: take back the lock, valid value and own statement of this height; the round to resume."""
        record = self._safety
        if record is None or record.height != self._height:
            return 0
        self._locked_round, self._locked_hash = record.locked_round, record.locked_hash
        self._valid_round, self._valid_block = record.valid_round, record.valid_block
        if self._valid_block is not None:
            self._log.blocks.setdefault(self._valid_block.hash(), self._valid_block)
        for signed in record.signed:
            if isinstance(signed, Prevote | Precommit) and signed.signer in self._log.validators:
                self._log.add_vote(signed)
        return record.round

    # -- validity and plumbing -----------------------------------------------------------------------------

    def _invalid(self, block: Block) -> str | None:
        """Why `block` is not valid(v) at this height, or None if it is; each block is checked once."""
        key = block.hash()
        if key in self._validity:
            return self._validity[key]
        problem = self._header_problem(block)
        if problem is None:
            try:
                self._app.validate_block(block)
            except (InvalidBlock, InvalidEvent) as exc:
                problem = str(exc)
        self._validity[key] = problem
        return problem

    def _header_problem(self, block: Block) -> str | None:
        header = block.header
        checks = (
            (header.origin == self._origin, f"block of network {header.origin!r}"),
            (header.height == self._height, f"block of height {header.height} at height {self._height}"),
            (header.validators_hash == self._log.validators.hash(), "header names the wrong validator set"),
            (header.round <= self._round + self._window, f"block built in round {header.round}, far ahead"),
        )
        for ok, problem in checks:
            if not ok:
                return problem
        if header.next_validators_hash != self._app.validators(self._height + 1).hash():
            return "header names the wrong next validator set"
        if header.proposer != self._rotation.proposer(header.round):
            return f"block built by {header.proposer}, not the proposer of round {header.round}"
        return None

    def _member_key(self, validators: ValidatorSet) -> SigningKey | None:
        signer = self._signer
        validator = None if signer is None else validators.get(signer.name)
        if signer is None or validator is None or validator.node_key != signer.public.raw:
            return None
        return signer

    def _schedule_after(self) -> ProposerSchedule:
        if self._next_schedule is None:
            self._next_schedule = self._schedule.next_height(self._app.validators(self._height + 1))
        return self._next_schedule

    def _set_timeout(self, kind: TimeoutKind) -> None:
        delay = self._timeouts.delay_ms(kind, self._round)
        self._actions.append(ScheduleTimeout(Timeout(self._height, self._round, kind), delay))

    def _flush(self) -> list[Action]:
        actions, self._actions = self._actions, []
        return actions
