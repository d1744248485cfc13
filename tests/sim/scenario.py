"""Seeded scenarios: a seed fixes the validator count and powers, the fault mix, the Byzantine validators and
every random choice of the run. `run_seed(seed)` replays it exactly.

A run has two phases. During the *fault phase* the network loses, duplicates and reorders messages and may
partition, honest nodes may crash (even half-way through executing the machine's actions) and restart from
their disk, and Byzantine validators (at most f: less than a third of the power) misbehave. Only safety is
required then. At the *heal* the network becomes reliable and every crashed node restarts; from then on every
honest node must commit `heights_after_heal` new heights within `liveness_ms` of virtual time.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from credledger.consensus.timeouts import TimeoutConfig
from credledger.ledger.events import MemberUpdate
from tests.factories import T0, by_governance, digest, issue, make_network
from tests.sim.app import LedgerApp
from tests.sim.network import LinkProfile, Network
from tests.sim.node import Behaviour, SimNode
from tests.sim.world import Stats, World

MIXES = ("calm", "lossy", "partition", "crash", "byzantine", "chaos")
SIZES = (4, 7, 10)

#: Timeouts scaled for a simulated network whose delays are tens of milliseconds.
SIM_TIMEOUTS = TimeoutConfig(
    propose_ms=300,
    propose_delta_ms=100,
    prevote_ms=150,
    prevote_delta_ms=100,
    precommit_ms=150,
    precommit_delta_ms=100,
    heartbeat_ms=200,
    rebroadcast_ms=250,
    max_ms=3_000,
)

_PROFILES = {
    "calm": LinkProfile(1, 20),
    "lossy": LinkProfile(1, 150, drop=0.25, duplicate=0.15),
    "partition": LinkProfile(1, 60, drop=0.05, partitions=True),
    "crash": LinkProfile(1, 60, drop=0.05, duplicate=0.05),
    "byzantine": LinkProfile(1, 80, drop=0.1, duplicate=0.1),
    "chaos": LinkProfile(1, 200, drop=0.2, duplicate=0.1, partitions=True),
}


@dataclass(frozen=True)
class Scenario:
    seed: int
    mix: str
    powers: tuple[int, ...]
    byzantine: tuple[tuple[int, frozenset[Behaviour]], ...]
    crashes: bool
    governance: bool
    fault_ms: int
    heights_after_heal: int = 2
    liveness_ms: int = 60_000

    @classmethod
    def from_seed(cls, seed: int, mix: str | None = None, validators: int | None = None) -> Scenario:
        rng = random.Random(f"scenario/{seed}")
        mix = mix or MIXES[seed % len(MIXES)]
        n = validators or SIZES[(seed // len(MIXES)) % len(SIZES)]
        powers = tuple(1 for _ in range(n)) if rng.random() < 0.5 else tuple(rng.randint(1, 4) for _ in range(n))
        byzantine: list[tuple[int, frozenset[Behaviour]]] = []
        if mix in ("byzantine", "chaos"):
            budget = (sum(powers) - 1) // 3
            for index in rng.sample(range(n), n):
                if powers[index] <= budget:
                    budget -= powers[index]
                    byzantine.append((index, _behaviours(rng)))
                    if rng.random() < 0.3:
                        break
        return cls(
            seed=seed,
            mix=mix,
            powers=powers,
            byzantine=tuple(sorted(byzantine, key=lambda b: b[0])),
            crashes=mix in ("crash", "chaos"),
            governance=rng.random() < 0.3,
            fault_ms=rng.randint(800, 2_500),
        )

    def describe(self) -> str:
        byz = ",".join(f"m{i}:{'+'.join(sorted(b.value for b in bs))}" for i, bs in self.byzantine) or "none"
        return f"seed={self.seed} mix={self.mix} powers={list(self.powers)} byzantine={byz}"

    def command(self) -> str:
        return f".venv/bin/python -m tests.sim --seed {self.seed} --mix {self.mix} --validators {len(self.powers)}"


def _behaviours(rng: random.Random) -> frozenset[Behaviour]:
    if rng.random() < 0.2:
        return frozenset({Behaviour.SILENT})
    active = [Behaviour.EQUIVOCATE, Behaviour.GARBAGE, Behaviour.REPLAY]
    chosen = frozenset(b for b in active if rng.random() < 0.5)
    return chosen or frozenset({rng.choice(active)})


@dataclass
class Result:
    scenario: Scenario
    violations: list[str]
    height: int
    heights_after_heal: int
    faults: int
    stats: Stats
    virtual_ms: int
    #: Virtual time from the heal until every honest node had committed `heights_after_heal` more heights.
    recovery_ms: int
    evidence_against: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.violations


def run_seed(seed: int, mix: str | None = None, validators: int | None = None) -> Result:
    return run(Scenario.from_seed(seed, mix, validators))


def run(scenario: Scenario) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="credledger-sim-"))
    try:
        return _Run(scenario, workdir).execute()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


class _Run:
    def __init__(self, scenario: Scenario, workdir: Path) -> None:
        self.scenario = scenario
        self.rng = random.Random(f"run/{scenario.seed}")
        self.network = make_network(len(scenario.powers), powers=scenario.powers)
        self.world = World(self.rng, self.network.genesis.origin, T0)
        self.net = Network(self.rng, self.network.ids, _PROFILES[scenario.mix])
        self.world.delays = self.net.delays
        byzantine = dict(scenario.byzantine)
        for index, member_id in enumerate(self.network.ids):
            app = LedgerApp(self.network, workdir / member_id)
            key = self.network[member_id].node
            behaviours = byzantine.get(index, frozenset())
            self.world.add(SimNode(self.world, member_id, key, app, SIM_TIMEOUTS, behaviours=behaviours))
        self.issued = 0

    def execute(self) -> Result:
        world, scenario = self.world, self.scenario
        try:
            for node in world.nodes.values():
                if Behaviour.SILENT not in node.behaviours:
                    world.after(self.rng.randint(0, 30), node.boot)
            world.after(self.rng.randint(20, 200), self._submit)
            if scenario.governance:
                world.after(self.rng.randint(100, 1_500), self._change_power)
            if self.net_has_partitions():
                world.after(self.rng.randint(50, 400), self._repartition)
            if scenario.crashes:
                world.after(self.rng.randint(50, 500), self._crash_someone)
            heal_at = world.start_ms + scenario.fault_ms
            world.run_until(heal_at)
            self._heal()
            base = max(n.height for n in world.honest)
            target = base + scenario.heights_after_heal
            deadline = world.now + scenario.liveness_ms
            healed_at = world.now
            world.run_until(deadline, stop=lambda: all(n.height >= target for n in world.honest))
            recovery_ms = world.now - healed_at
            if not world.violations:
                late = [f"{n.name}@{n.height}" for n in world.honest if n.height < target]
                if late:
                    world.violate(
                        f"liveness: {scenario.liveness_ms} ms after the heal, {', '.join(late)} did not reach "
                        f"height {target}"
                    )
            self._check_evidence()
            return Result(
                scenario=scenario,
                violations=list(world.violations),
                height=min(n.height for n in world.honest),
                heights_after_heal=min(n.height for n in world.honest) - base,
                faults=self._faults(),
                stats=world.stats,
                virtual_ms=world.now - world.start_ms,
                recovery_ms=recovery_ms,
                evidence_against={e.offender for n in world.honest for e in n.evidence},
            )
        finally:
            for node in world.nodes.values():
                node.app.close()

    def net_has_partitions(self) -> bool:
        return _PROFILES[self.scenario.mix].partitions

    # -- scheduled happenings ----------------------------------------------------------------------------------

    def _submit(self) -> None:
        """A client issues a credential; every running node hears of it (mempool gossip is not modelled)."""
        world = self.world
        member = self.network[self.rng.choice(self.network.ids)]
        self.issued += 1
        event = issue(member, digest(f"sim/{self.scenario.seed}/{self.issued}"), time_ms=world.now)
        for node in world.nodes.values():
            if node.up and node.app.submit(event, world.now):
                node.wake()
        world.after(self.rng.randint(50, 400), self._submit)

    def _change_power(self) -> None:
        """Governance raises an honest validator's power (keeping the Byzantine share below a third)."""
        world = self.world
        honest = [n for n in world.honest]
        node = self.rng.choice(honest)
        member = self.network[node.name]
        payload = MemberUpdate(
            member.id, member.id.upper(), member.power + self.rng.randint(1, 3), member.node.public.raw
        )
        event = by_governance(self.network, payload, time_ms=world.now)
        for other in world.nodes.values():
            if other.up and other.app.submit(event, world.now):
                other.wake()

    def _repartition(self) -> None:
        if self.net.healthy:
            return
        self.net.repartition()
        self.world.after(self.rng.randint(150, 700), self._repartition)

    def _crash_someone(self) -> None:
        world = self.world
        if self.net.healthy:
            return
        victim = self.rng.choice(world.honest)
        if victim.up:
            world.stats.crashes += 1
            victim.crash(after_actions=self.rng.randint(0, 3) if self.rng.random() < 0.5 else None)
            world.after(self.rng.randint(100, 1_200), lambda: None if victim.up else victim.boot())
        world.after(self.rng.randint(100, 700), self._crash_someone)

    def _heal(self) -> None:
        self.net.heal()
        for node in self.world.nodes.values():
            node.cancel_crash()
            if not node.up and Behaviour.SILENT not in node.behaviours:
                node.boot()

    # -- accounting -----------------------------------------------------------------------------------------------

    def _check_evidence(self) -> None:
        world = self.world
        caught = {e.offender for n in world.honest for e in n.evidence}
        for node in world.nodes.values():
            if Behaviour.EQUIVOCATE in node.behaviours and node.equivocations >= 6 and node.name not in caught:
                world.violate(f"{node.name} equivocated {node.equivocations} times and no honest node kept evidence")

    def _faults(self) -> int:
        net, world = self.net, self.world
        byzantine_sends = sum(n.equivocations + n.garbage_sent for n in world.nodes.values())
        return net.dropped + net.duplicated + net.partitions + world.stats.crashes + byzantine_sends
