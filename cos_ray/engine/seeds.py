"""The seeds a cross-seed operator sees: one batch in this process, or the members of a group across processes.

The ensemble mean is one intervention with two reducers behind this small interface: `LocalSeeds` (the seeds of a
batch in one process - the reference) and, in `cos_ray.cluster`, a torch.distributed group of Ray workers, each
holding some of the seeds as its own batch. Operators never ask which one they have.
"""

from __future__ import annotations

from typing import Protocol


class SeedGroup(Protocol):
    """Reductions over every seed of a group, called with this process's seeds `# (local_seeds, seq, dim)`."""

    total: int  # seeds in the whole group
    offset: int  # position of this process's first seed among the group's members (member order = seed order)

    def sum(self, local):
        """`# (local_seeds, ...) -> (...)`: the sum over all seeds of the group, the same tensor on every process."""

    def gather(self, local):
        """`# (local_seeds, ...) -> (total, ...)`: every seed of the group stacked in member order."""


class LocalSeeds:
    """All seeds of the group are the rows of one batch in this process."""

    offset = 0

    def __init__(self, total: int):
        self.total = total

    def sum(self, local):
        return local.sum(dim=0)

    def gather(self, local):
        return local
