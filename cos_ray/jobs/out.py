"""Where a cluster sweep writes: a location every node of the cluster can reach.

The sweep's workers run on many nodes and the job's driver runs in a temporary folder on the head node, so a relative
local path would scatter results over temporary folders that vanish. Object stores (s3://, gs://, ...) are reachable
from everywhere; an absolute local path works only if it is shared storage mounted at the same path on every node
(NFS, a Kubernetes volume), which cos-ray cannot check: it warns.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from cos_ray.errors import UsageError

LOCAL_SCHEMES = ("", "file", "local")


def check_cluster_out(out: str | None) -> str | None:
    """None if `out` suits a cluster, else a warning to print; raises UsageError naming `--out` if it cannot work."""
    if out is None or not str(out).strip():
        raise UsageError(
            "--out: a sweep on a cluster needs a results location every node can reach, e.g. "
            "--out s3://bucket/sweeps/NAME, --out gs://..., or an absolute path on shared storage (/mnt/shared/...)"
        )
    out = str(out).strip()
    scheme, sep, rest = out.partition("://")
    if not sep:
        scheme, rest = "", out
    if scheme.lower() not in LOCAL_SCHEMES:
        return None
    if not PurePosixPath(rest).is_absolute():
        raise UsageError(
            f"--out {out!r}: a relative path would be resolved in the job's temporary folder on the head node and "
            "lost; give a location every node can reach: s3://bucket/..., gs://bucket/..., or an absolute path on "
            "shared storage mounted on every node"
        )
    return (
        f"--out {out!r} is a local path: every node of the cluster must see it as the same shared storage "
        "(NFS, a mounted volume); otherwise use s3:// or gs://"
    )
