"""Fencing a table's compactions by their lease's token, so that a compactor which lost its lease cannot commit.

A compactor paused past its lease (SIGSTOP) and resumed after another one took over would otherwise commit its
optimize too - delta-rs 1.6 lets two optimize commits that read the same version both succeed, doubling every row.
So the lease's holder first writes its fencing token into the table (`raise_fence`: the table property
`cos_ray.compaction.fence`, a metadata commit), and right before its optimize checks that the very version it
optimizes carries that token (`check_fence`). A newer holder's fence is a metadata change committed after that
version, and Delta refuses a commit whose read version predates a metadata change ("Metadata changed since last
commit"): the stale optimize fails, and its retry finds the newer token and stops (`LostLease`).
"""

from __future__ import annotations

from cos_ray.store.lease import Lease
from cos_ray.store.location import Store
from cos_ray.store.tables import committing, open_table

FENCE = "cos_ray.compaction.fence"


def fence_of(delta) -> int:
    """The fencing token written into the table version (-1: none yet)."""
    value = (delta.metadata().configuration or {}).get(FENCE)
    try:
        return int(value) if value is not None else -1
    except ValueError:
        return -1


def raise_fence(store: Store, table: str, held: Lease) -> None:
    """Write `held`'s token into the table, unless it is there already; LostLease if a newer token is."""
    what = f"compacting {table}"

    def commit() -> None:
        delta = open_table(store, table)
        current = fence_of(delta)
        if current > held.token:
            raise held.lost_error(what, current)
        if current < held.token:
            delta.alter.set_table_properties({FENCE: str(held.token)}, raise_if_not_exists=False)

    committing(commit, f"fencing {table}'s compactions")


def check_fence(delta, table: str, held: Lease) -> None:
    """LostLease unless the table version about to be rewritten carries `held`'s token (a newer holder's fence
    committed after this version makes this commit conflict; one committed before it is caught here)."""
    current = fence_of(delta)
    if current != held.token:
        raise held.lost_error(f"compacting {table}", current if current > held.token else None)
