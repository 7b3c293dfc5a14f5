"""How big a spec may be, checked before anything is expanded: bytes, strings, nesting, grid points, runs, members.

A spec is user input that a careless or hostile hand can make explode: an alias bomb, a seed range of ten million,
grids whose product is astronomical, an ensemble of 10^8 members. Each is refused here from counts alone - nothing
is materialized first - with the count in the message and the field it comes from, so `cos-ray spec check` answers in
well under a second and a few tens of MB whatever the spec says. `max_runs` is the one limit a real sweep may need
to raise (`--max-runs`); the others bound what no real spec comes near.
"""

from __future__ import annotations

from dataclasses import dataclass

from cos_ray.bounded_read import ReadLimits

MAX_SEED = 2**63 - 1  # seeds are int64 in the store and in torch.Generator.manual_seed


@dataclass(frozen=True)
class Limits(ReadLimits):
    """Upper bounds on a spec; the defaults leave every real spec far below them.

    The file's own (`ReadLimits`: 1 MiB, strings of 4,096 characters, nesting 32, 16 aliases, 50,000 values - a real
    spec has a few hundred) are checked while it is read (`cos_ray.bounded_read`); these while it is expanded."""

    max_points: int = 10_000  # grid points (each is validated and expanded on its own)
    max_runs: int = 1_000_000  # runs of the whole sweep (`--max-runs`)
    max_members: int = 1024  # runs merged in one unit (an ensemble's size)


DEFAULT = Limits()


def check_members(methods, path: str = "methods", limits: Limits = DEFAULT):
    """(field, message) for each method merging more runs in one unit than `max_members` (before any is listed)."""
    for index, method in enumerate(methods):
        size = getattr(method, "size", None)
        if isinstance(size, int) and size > limits.max_members:
            yield (f"{path}[{index}].{method.name}.size",
                   f"{size:,} members in one unit exceeds the limit of {limits.max_members:,}")


SAMPLER_CAPS = {  # sampler fields that size loops or tensors: far above any real run, far below an out-of-memory
    "steps": 10_000, "frames": 4097, "height": 8192, "width": 8192, "max_area": 8192 * 8192,
    "max_sequence_length": 4096, "fps": 1000,
}


def check_sampler(sampler, path: str = "sampler"):
    """(field, message) for each sampler value above its cap (a billion steps would be listed step by step)."""
    for name, cap in SAMPLER_CAPS.items():
        value = getattr(sampler, name, None) if sampler is not None else None
        if isinstance(value, int) and not isinstance(value, bool) and value > cap:
            yield f"{path}.{name}", f"{value:,} exceeds the limit of {cap:,}"


def count_runs(point) -> tuple[int, dict]:
    """Runs of one validated grid point before expansion (an upper bound: duplicate units count) and its factors."""
    from cos_ray.spec.methods import MethodContext, latent_frames
    from cos_ray.spec.sweep import parse_seeds

    seeds = parse_seeds(point.spec.seeds)  # a range for "A-B": len() without a list
    settings = point.settings
    frames = getattr(settings, "nominal_frames", None) or settings.frames  # frames: null -> the family's nominal count
    context = MethodContext(point.num_layers, settings.steps, latent_frames(frames) if frames else None, point.tasks,
                            None)
    methods = members = widest = 0
    for method in point.spec.methods:
        for variant in method.variants(context):
            size = len(variant.member_seeds(0))
            methods, members, widest = methods + 1, members + size, max(widest, size)
    factors = {"seeds": len(seeds), "methods": methods, "members": members, "tasks": len(point.tasks),
               "top_seed": _largest(seeds), "widest": widest}
    return len(seeds) * members * len(point.tasks), factors


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _largest(seeds) -> int:
    if not len(seeds):
        return 0
    return seeds[-1] if isinstance(seeds, range) else max(seeds)  # max() of a range would walk it


def check_runs(points, limits: Limits = DEFAULT, locate=None) -> list[tuple[str, str]]:
    """Problems of the sweep's size: total runs above `max_runs`, or member seeds past 2^63-1."""
    points = list(points)
    problems = []
    total, largest = 0, None
    for point in points:
        runs, factors = count_runs(point)
        total += runs
        if largest is None or runs > largest[0]:
            largest = (runs, factors, point)
        top = factors["top_seed"] + factors["widest"] - 1
        if top > MAX_SEED:
            where = locate(point)("seeds") if locate else "seeds"
            problems.append((where, f"member seeds reach {top:,}, past the largest seed {MAX_SEED:,} (2^63-1): "
                                    f"an ensemble of {factors['widest']} starting at {factors['top_seed']:,}"))
    if largest is None or total <= limits.max_runs:
        return problems
    runs, factors, point = largest
    parts = [_count(factors["seeds"], "seed")]
    if factors["members"] == factors["methods"]:
        parts.append(_count(factors["methods"], "method"))
    else:
        parts.append(f"{_count(factors['members'], 'run')} per seed over {_count(factors['methods'], 'method')}")
    if factors["tasks"] != 1:
        parts.append(_count(factors["tasks"], "task"))
    field = max(("seeds", factors["seeds"]), ("methods", factors["members"]), ("tasks", factors["tasks"]),
                key=lambda item: item[1])[0]
    field = locate(point)(field) if locate else field
    count = f"{' × '.join(parts)} = {runs:,} runs"
    if len(points) > 1:
        count += f" in the largest of {len(points):,} grid points, {total:,} in all,"
    problems.append((field, f"{count} exceeds the limit of {limits.max_runs:,}; raise with --max-runs"))
    return problems
