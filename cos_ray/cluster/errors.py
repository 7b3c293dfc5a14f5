"""Failure kinds of the cluster part: infrastructure failures (a dead or stalled worker, a broken group).

They are distinct from `UsageError` and from deterministic failures of a unit (e.g. `NonFiniteMergeError`): the group
is the unit of failure, and an infrastructure failure means the group is torn down; running the same unit on a fresh
group may succeed (the retry policy is the caller's), while a deterministic failure would fail again.
"""

from __future__ import annotations

from cos_ray.errors import CosRayError


class ClusterError(CosRayError):
    """An infrastructure failure: worth retrying the unit on a fresh group."""

    exit_code = 3


class RayUnavailable(CosRayError):
    """Ray could not be started or reached: the environment, not a unit (exit 1; nothing ran)."""


class WaitTimeout(ClusterError):
    """A remote call did not answer within its timeout (a worker stalled, or the cluster lacks resources)."""


class CollectiveError(ClusterError):
    """An all-reduce or all-gather failed or timed out inside a worker: a member died or stalled."""


class GroupFailed(ClusterError):
    """A worker of a group died or failed mid-unit; the group has been torn down."""


class NoGroupLeft(ClusterError):
    """Every worker group failed and none could be rebuilt: the units left cannot run on this cluster now (not retried:
    the next attempt would find no group either)."""
