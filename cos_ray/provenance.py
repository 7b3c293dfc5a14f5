"""Provenance: what every `runs` row says about how it was made, so a number can be traced and grouped by.

The unit's identity already pins the model (preset key or checkpoint hash, LoRA hashes), settings, seeds and worker
layout; this adds what identifies the software and the spec: cos-ray's version and git commit (where it runs from a
checkout), a hash of the spec as written, and the versions of torch, diffusers and ray the worker ran - read on the
worker (`software_versions`), since a cluster's nodes may differ from the submitting machine.
"""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess
from pathlib import Path

from cos_ray import __version__

PACKAGES = ("torch", "diffusers", "ray", "transformers")


@functools.lru_cache(maxsize=1)
def package_commit() -> str | None:
    """The git commit cos-ray runs from (`+dirty` if its checkout has changes), or None outside a checkout."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                "cos_ray"], capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def spec_hash(data) -> str:
    """16 hex digits over the spec as written (grids unexpanded), canonical JSON."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def software_versions() -> dict[str, str | None]:
    """Versions of the packages that decide a run's numbers (called on the worker)."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def sweep_provenance(spec) -> dict:
    """The columns every run of this submission shares."""
    return {"cos_ray_version": __version__, "cos_ray_commit": package_commit(), "spec_hash": spec_hash(spec.data)}


def run_provenance(unit, worker, shared: dict) -> dict:
    """A run's provenance columns: the unit's identity, the worker's (`cos_ray.cluster.outcome.WorkerInfo`, or None)
    dtype and software, the sweep's."""
    identity = getattr(unit, "identity", None) or {}
    model = getattr(worker, "model", None) or {}
    versions = getattr(worker, "versions", None) or {}
    return {
        **shared,
        "model_identity": json.dumps(identity.get("model"), sort_keys=True) if identity.get("model") else None,
        "seeds": list(unit.seeds),
        "layout": "+".join(str(count) for count in unit.layout),
        "dtype": model.get("dtype"),
        **{f"{name}_version": versions.get(name) for name in PACKAGES},
    }
