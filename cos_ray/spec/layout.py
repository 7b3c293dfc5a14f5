"""The worker layout of a unit: how many of its seeds each worker holds, e.g. (1, 1, 1), (3,), (2, 1).

Worker k holds a contiguous slice of the members, so member order = seed order = worker order. The layout is part of a
unit's identity: a worker runs its seeds as one batch, and batching changes the last bits of the results. It lives with
the unit (expansion gives every unit its layout); the cluster only checks it against its groups and splits the seeds.
"""

from __future__ import annotations

from cos_ray.errors import UsageError


def check_layout(layout, seeds: int, workers: int, field: str = "layout") -> tuple[int, ...]:
    """`layout` as a tuple, checked against the unit's seed count and the group's worker count."""
    try:
        layout = tuple(int(count) for count in layout)
    except (TypeError, ValueError):
        raise UsageError(f"{field}: expected a list of seed counts per worker like [2, 1], got {layout!r}") from None
    if not layout or any(count < 1 for count in layout):
        raise UsageError(f"{field}: expected at least one worker and >= 1 seed per worker, got {list(layout)}")
    if sum(layout) != seeds:
        raise UsageError(f"{field}: {list(layout)} holds {sum(layout)} seeds, but the unit has {seeds}")
    if len(layout) > workers:
        raise UsageError(f"{field}: {list(layout)} needs {len(layout)} workers; the group has {workers}")
    return layout


def even_layout(seeds: int, workers: int) -> tuple[int, ...]:
    """`seeds` spread over at most `workers` workers, the first ones holding one more: 3 over 2 -> (2, 1)."""
    if seeds < 1 or workers < 1:
        raise UsageError(f"expected >= 1 seed and >= 1 worker, got {seeds} seed(s) over {workers} worker(s)")
    used = min(seeds, workers)
    base, extra = divmod(seeds, used)
    return tuple(base + (1 if index < extra else 0) for index in range(used))


def split_seeds(seeds: list[int], layout: tuple[int, ...]) -> list[list[int]]:
    """Worker k's contiguous slice of the seeds."""
    slices, start = [], 0
    for count in layout:
        slices.append(list(seeds[start : start + count]))
        start += count
    return slices

