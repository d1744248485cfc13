"""tlog-policy files and the flat --witness/--witness-quorum policy, checked against cosigned checkpoints."""

from __future__ import annotations

import pytest

from credledger.ledger.cosignature import CosignerKey, QuorumNotMet, cosign
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.keys import SigningKey
from credledger.ledger.note import SignedNote, sign_note
from credledger.ledger.witnesspolicy import Group, WitnessPolicy
from tests.factories import key_for

BODY = "example.com/log\n8\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
LOG = key_for("example.com/log", "log")
X = [key_for(f"x{i}.example", "witness") for i in range(3)]
Y = [key_for(f"y{i}.example", "witness") for i in range(3)]
NOW = 1_767_225_600

# The spec's example policy (tlog-policy §Example policy), with keys filled in.
EXAMPLE = f"""# two organisations
log {LOG.public.vkey()}

witness X1 {CosignerKey.of(X[0]).vkey()}
witness X2 {CosignerKey.of(X[1]).vkey()} https://x2.example/
witness X3 {CosignerKey.of(X[2]).vkey()}
group X-witnesses 2 X1 X2 X3

\twitness Y1   {CosignerKey.of(Y[0]).vkey()}
witness Y2 {CosignerKey.of(Y[1]).vkey()}
witness Y3 {CosignerKey.of(Y[2]).vkey()}
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
""".encode()


def _note(*cosigners: SigningKey) -> SignedNote:
    lines = [sign_note(BODY, LOG), *(cosign(BODY, k, NOW).note_signature() for k in cosigners)]
    return SignedNote(BODY, tuple(lines))


def test_the_spec_example_parses_into_witnesses_groups_and_quorum() -> None:
    policy = WitnessPolicy.parse(EXAMPLE)
    assert policy.logs == (LOG.public,)
    assert [name for name, _ in policy.witnesses] == ["X1", "X2", "X3", "Y1", "Y2", "Y3"]
    assert policy.groups == (
        Group("X-witnesses", 2, ("X1", "X2", "X3")),
        Group("Y-witnesses", 1, ("Y1", "Y2", "Y3")),
        Group("X-and-Y", 2, ("X-witnesses", "Y-witnesses")),
    )
    assert policy.quorum == "X-and-Y"


def test_two_x_and_one_y_witness_satisfy_the_example() -> None:
    found = WitnessPolicy.parse(EXAMPLE).check(_note(X[0], X[2], Y[1]))
    assert sorted(found) == ["X1", "X3", "Y2"]


def test_one_x_witness_short_names_the_missing_ones() -> None:
    with pytest.raises(QuorumNotMet, match="cosigned by: X1, Y1, Y2; missing: X2, X3, Y3") as caught:
        WitnessPolicy.parse(EXAMPLE).check(_note(X[0], Y[0], Y[1]))
    assert caught.value.missing == ("X2", "X3", "Y3")


def test_a_checkpoint_no_listed_log_signed_is_refused() -> None:
    note = SignedNote(BODY, tuple(cosign(BODY, k, NOW).note_signature() for k in (X[0], X[1], Y[0])))
    with pytest.raises(VerificationError, match="no signature from a known key"):
        WitnessPolicy.parse(EXAMPLE).check(note)


def test_quorum_none_needs_no_cosignature() -> None:
    policy = WitnessPolicy.parse(f"log {LOG.public.vkey()}\nquorum none\n".encode())
    assert policy.check(_note()) == {}


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("log {log}\n", "no quorum line"),
        ("quorum X1\n", "line 1: quorum 'X1' is not defined"),
        ("witness X1 {x0}\nquorum X1\nquorum X1\n", "line 3: a second quorum"),
        ("witness X1 {x0}\nwitness X2 {x0}\nquorum X1\n", "line 2: witness X2: its key is already listed"),
        ("witness X1 {x0}\nwitness X1 {x1}\nquorum X1\n", "line 2: name 'X1' is already defined"),
        ("witness none {x0}\nquorum none\n", "reserved"),
        ("witness X1 {x0}\ngroup G 2 X1\nquorum G\n", "threshold must be all, any or 1 to 1"),
        ("witness X1 {x0}\ngroup G 0 X1\nquorum G\n", "threshold"),
        ("witness X1 {x0}\ngroup G any X1 X2\nquorum G\n", "member 'X2' is not defined on an earlier line"),
        ("witness X1 {x0}\ngroup G any X1\ngroup H any X1\nquorum H\n", "'X1' is already a member of a group"),
        ("witness X1 {x0}\ngroup G any X1 X1\nquorum G\n", "a member is listed twice"),
        ("witness X1 {log}\nquorum X1\n", "expected signature type 0x04"),
        ("log {log}\nlog {log}\nquorum none\n", "listed twice"),
        ("frobnicate\nquorum none\n", "line 1: expected log, witness, group or quorum"),
        ("log {log}\r\nquorum none\n", "control character 0x0d"),
    ],
)
def test_malformed_policies_are_refused_naming_the_line(text: str, complaint: str) -> None:
    data = text.format(log=LOG.public.vkey(), x0=CosignerKey.of(X[0]).vkey(), x1=CosignerKey.of(X[1]).vkey())
    with pytest.raises(DecodeError, match=complaint):
        WitnessPolicy.parse(data.encode())


def test_the_flat_policy_needs_k_of_the_witnesses() -> None:
    policy = WitnessPolicy.flat([LOG.public], [CosignerKey.of(k).vkey() for k in X], 2)
    assert sorted(policy.check(_note(X[0], X[2]))) == ["x0.example", "x2.example"]
    with pytest.raises(QuorumNotMet, match=r"missing: x1\.example, x2\.example"):
        policy.check(_note(X[0]))


def test_a_flat_quorum_of_zero_requires_nothing() -> None:
    assert WitnessPolicy.flat([LOG.public], [CosignerKey.of(X[0]).vkey()], 0).check(_note()) == {}


@pytest.mark.parametrize(("quorum", "complaint"), [(4, "between 0 and the 3 witnesses"), (-1, "between 0")])
def test_a_flat_quorum_beyond_the_witnesses_is_refused(quorum: int, complaint: str) -> None:
    with pytest.raises(DecodeError, match=complaint):
        WitnessPolicy.flat([LOG.public], [CosignerKey.of(k).vkey() for k in X], quorum)


def test_a_flat_policy_refuses_the_same_witness_twice() -> None:
    with pytest.raises(DecodeError, match="appears twice"):
        WitnessPolicy.flat([LOG.public], [CosignerKey.of(X[0]).vkey()] * 2, 1)


def test_a_log_key_only_vouches_for_the_origin_it_is_named_after() -> None:
    other = key_for("example.com/other-log", "log")
    policy = WitnessPolicy.parse(f"log {other.public.vkey()}\nquorum none\n".encode())
    note = SignedNote(BODY, (sign_note(BODY, other),))
    with pytest.raises(VerificationError, match=r"no listed log has the origin 'example\.com/log'"):
        policy.check(note)
