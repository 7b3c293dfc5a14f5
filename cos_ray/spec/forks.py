"""The fork planner: which units of a sweep share a prefix of their trajectory, and in what order to run them.

Two units share steps 0..s-1 when everything that decides a trajectory up to step s is the same: the task, the
seeds (member order), the model, the sampler settings, the worker layout, what is recorded (x̂0), and every
intervention that acts before step s. Each unit is described by its `prefix_key` (all but the method) and its
per-step `signature` (what acts at each step: noise at step s acts at s only; a swap at its steps; an ensemble merge
at its merged steps). Units with the same key and the same step-0 action form a `ForkGroup`; inside it, two units
diverge at the first step where their signatures differ. The group is run as a tree of `Branch`es: the first unit
from noise (taking a snapshot at each step where another unit leaves it), every other unit from the snapshot of the
branch it leaves, and so on (`plan_branches`). A unit runs whole (its own group of one) when its program carries
state across steps that a snapshot does not hold: noise at a frame (its generator), energy or CKA probes.

Pure Python, no torch: `cos-ray plan` prints the forward passes with and without forking from here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from cos_ray.engine.steps import parse_index_range


def forkable(unit) -> bool:
    """True when the unit's trajectory may start from another's snapshot (see the module docstring)."""
    if not unit.runs_model:
        return False
    program = unit.program
    if program is None:
        return True
    return (program.noise_at_frame is None and program.energy is None and program.sensitivity is None
            and getattr(program, "search", None) is None)  # a search forks its own candidates


def prefix_key(unit) -> str:
    """What decides a unit's trajectory besides its method: a hash of its identity without method and params."""
    identity = {key: value for key, value in unit.identity.items() if key not in ("method", "params")}
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def signature(unit) -> tuple:
    """What acts on the trajectory at each step, `# (steps,)` of hashable tuples (empty: nothing)."""
    total = unit.settings.steps
    acts = [[] for _ in range(total)]
    ensemble = unit.ensemble
    if ensemble is not None:
        steps = parse_index_range(ensemble.steps, total, f"{ensemble.field}.steps")
        layers = ensemble.layers if isinstance(ensemble.layers, str) else tuple(ensemble.layers)
        for step in steps:
            acts[step].append(("ensemble", layers, ensemble.merge, ensemble.branch))
    program = unit.program
    if program is not None:
        noise = program.noise_at_step
        if noise is not None and noise.step < total:
            acts[noise.step].append(("noise_at_step", noise.strength, noise.seed))
        swap = program.swap
        if swap is not None:
            source = getattr(program.swap_source, "identity", None) or repr(program.swap_source)
            source = json.dumps(source, sort_keys=True, default=str)
            for step in parse_index_range(swap.step, total, f"{swap.field}.step"):
                acts[step].append(("swap", swap.layer, swap.mode, swap.region, source))
    return tuple(tuple(act) for act in acts)


def divergence(first: tuple, second: tuple) -> int:
    """The first step at which two signatures differ (their length when they never do)."""
    for step, (one, other) in enumerate(zip(first, second)):
        if one != other:
            return step
    return min(len(first), len(second))


@dataclass
class Branch:
    """One unit's trajectory in a fork group: from `start` (0: from noise; else the snapshot `parent` took before
    step `start`), taking a snapshot before each step of `take`."""

    unit: object
    start: int = 0
    parent: int | None = None  # index of the branch whose snapshot this one resumes
    take: set = field(default_factory=set)


@dataclass
class ForkGroup:
    """Units that share at least step 0, in the order their branches run (`branches`)."""

    branches: list

    @property
    def units(self) -> list:
        return [branch.unit for branch in self.branches]

    def __len__(self) -> int:
        return len(self.branches)


def fork_groups(units, fork: bool = True) -> list[ForkGroup]:
    """The units grouped and ordered into branches; `fork=False` (`--no-fork`) or an unforkable unit: groups of one.

    Units are kept in the order given within a group; groups are ordered by their first unit."""
    groups: dict = {}
    order = []
    for unit in units:
        if not fork or not forkable(unit):
            key = ("alone", unit.unit_id, len(order))
        else:
            sig = signature(unit)
            key = (prefix_key(unit), sig[0] if sig else ())
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(unit)
    result = []
    for key in order:
        members = groups[key]
        if key[0] == "alone" or len(members) == 1:
            result.append(ForkGroup([Branch(members[0])]))
            continue
        result.extend(_split(members))
    return result


def _split(units) -> list[ForkGroup]:
    """Units of one key as groups: duplicates of a signature (the same trajectory under two ids) each start anew."""
    groups, seen = [], []
    for unit in units:
        sig = signature(unit)
        for index, signatures in enumerate(seen):
            if sig not in signatures:
                signatures.add(sig)
                groups[index].append(unit)
                break
        else:
            seen.append({sig})
            groups.append([unit])
    return [ForkGroup(plan_branches(members)) for members in groups]


def plan_branches(units) -> list[Branch]:
    """The branches of units sharing step 0 with distinct signatures, parents before children (depth first)."""
    signatures = {id(unit): signature(unit) for unit in units}
    branches: list[Branch] = []

    def grow(members, start: int, parent: int | None) -> None:
        """`members` share steps < start (the snapshot before `start` is `parent`'s); those that also share step
        `start` follow one trunk, which takes a snapshot where each of the others leaves it."""
        classes: dict = {}
        for unit in members:
            classes.setdefault(signatures[id(unit)][start], []).append(unit)
        for trunk, *rest in classes.values():
            index = len(branches)
            branches.append(Branch(trunk, start, parent))
            leaving: dict[int, list] = {}
            for unit in rest:
                leaving.setdefault(divergence(signatures[id(trunk)], signatures[id(unit)]), []).append(unit)
            for step in sorted(leaving):
                branches[index].take.add(step)
                grow(leaving[step], step, index)

    grow(list(units), 0, None)
    return branches


# -- forward passes ------------------------------------------------------------------------------------------------
def passes_per_step(settings) -> list[int]:
    """Transformer forward passes at each step of one trajectory: 2 with CFG, else 1, by the expert of the step (the
    high-noise share approximated as `cos_ray.spec.plan.passes_per_run` does)."""
    cfg = [2 if guidance > 1.0 else 1 for guidance in (settings.guidance, settings.guidance_2)]
    steps = settings.steps
    high = steps if settings.boundary is None else round(steps * (1.0 - settings.boundary))
    return [cfg[0] if step < high else cfg[1] for step in range(steps)]


def companion_passes(unit) -> int:
    """Passes of the trajectories a unit runs besides its own (run B of a swap, the clean run of CKA): per member."""
    program = unit.program
    if program is None:
        return 0
    runs = (program.swap is not None) + (program.sensitivity is not None)
    return runs * sum(passes_per_step(unit.settings))


def passes_of_records(records, settings) -> int:
    """Transformer forward passes a trajectory ran, counted from its step records (one per step it computed, with
    the expert of the step): 2 with CFG on that expert, else 1. Exact where `passes_per_step` approximates the
    experts' split; a forked run's records include the steps it resumed after (its cost as if run alone)."""
    guidance = {"low": settings.guidance_2}
    return sum(2 if guidance.get(record.get("expert"), settings.guidance) > 1.0 else 1 for record in records)


def search_of(unit):
    """The unit's `SearchConfig`, or None."""
    return getattr(unit.program, "search", None)


def search_passes(unit) -> tuple[int, int]:
    """(a search unit's forward passes, best-of-N's over the same candidates)."""
    return search_of(unit).resolved(unit.settings.steps).passes(passes_per_step(unit.settings))


def forward_passes(groups: list[ForkGroup]) -> tuple[int, int]:
    """(forked, unforked) transformer forward passes of the model units, per member trajectory (batch rows)."""
    forked = unforked = 0
    for group in groups:
        for branch in group.branches:
            unit = branch.unit
            if not unit.runs_model:
                continue
            if search_of(unit) is not None:  # N candidates to select_at, M after it
                own = search_passes(unit)[0]
                forked, unforked = forked + own, unforked + own
                continue
            per_step = passes_per_step(unit.settings)
            members = len(unit.seeds)
            own = companion_passes(unit)
            unforked += members * (sum(per_step) + own)
            forked += members * (sum(per_step[branch.start:]) + own)
    return forked, unforked


def describe_forks(units) -> str:
    """The lines `cos-ray plan` prints: forward passes with and without forking, and how the units group."""
    groups = fork_groups([unit for unit in units if unit.runs_model])
    forked, unforked = forward_passes(groups)
    shared = [group for group in groups if len(group) > 1]
    ratio = f"{forked / unforked:.3f}" if unforked else "n/a"
    text = (f"forward passes with companion runs (run B of a swap, the clean run of CKA): {unforked:,} without "
            f"forking (--no-fork), {forked:,} forked ({ratio} of them); "
            f"{sum(len(group) for group in shared)} units in {len(shared)} fork groups, "
            f"{len(groups) - len(shared)} run alone")
    return "\n".join([text, *describe_search(units)])


def describe_search(units) -> list[str]:
    """One line per search setting of the units (its merge included): its forward passes beside best-of-N's over the
    same candidates."""
    settings: dict = {}
    for unit in units:
        if unit.runs_model and search_of(unit) is not None:
            config = search_of(unit).resolved(unit.settings.steps)
            merge = unit.params.get("ensemble")
            own, best = search_passes(unit)
            key = json.dumps([config.params(), merge], sort_keys=True)
            seen = settings.setdefault(key, [config, merge, 0, 0, 0])
            seen[2], seen[3], seen[4] = seen[2] + 1, seen[3] + own, seen[4] + best
    lines = []
    for config, merge, count, own, best in settings.values():
        rounds = "".join(f", then step {stage['select_at']} keep {stage['keep']}" for stage in config.rounds)
        merged = f", merged at steps {_span(merge['steps'])}" if merge else ""
        lines.append(f"search (candidates {config.candidates}, select_at step {config.select_at}, keep {config.keep}"
                     f"{rounds}, verifier {config.verifier}{merged}): {count} unit(s), {own:,} forward passes vs "
                     f"best-of-{config.candidates}'s {best:,} over the same seeds ({own / best:.3f} of them)")
    return lines


def _span(steps) -> str:
    return f"{steps[0]}-{steps[-1]}" if len(steps) > 1 else str(steps[0])
