"""`cos-ray export SWEEP --evalkit DIR`: a sweep's videos laid out for VBVR-EvalKit, one folder per method and seed.

Runs of the same method with different parameters (an ensemble's grid over merge modes, say) would collide in one
method folder, so each parameter set gets its own label: the method's name when it has one parameter set in the
sweep, else `{method}-{6 hex of its params}`; the labels and their parameters are returned for the user to read.
An ensemble started at seed S is filed under `seed-S`: member 0 in the method's folder, member k in `{label}-member{k}`
(members have seeds S..S+N-1, so their own seeds would collide with the next ensemble's).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from cos_ray.errors import UsageError


def method_labels(rows: list[dict]) -> dict[tuple[str, str], str]:
    """(method, params JSON) -> folder label."""
    variants: dict[str, set[str]] = {}
    for row in rows:
        variants.setdefault(row["method"], set()).add(row["params"] or "")
    labels = {}
    for method, params in variants.items():
        for param in params:
            suffix = "" if len(params) == 1 else "-" + hashlib.sha256(param.encode()).hexdigest()[:6]
            labels[(method, param)] = method + suffix
    return labels


def evalkit_runs(store, sweep: str) -> tuple[dict, list[dict], dict]:
    """(sweeps row, runs, labels) of the finished runs of `sweep` with a video, each run given where the export
    files it: `label`, `seed_folder` (the start seed), `split`, `task`, `idx` (from its VBVR task id)."""
    from cos_ray.store.query import run_sql
    from cos_ray.sweep.verify import find_sweep

    row = find_sweep(store, sweep)
    units = ", ".join(f"'{uid}'" for uid in row["unit_ids"])
    runs = run_sql(store, f"select run_id, unit_id, task_id, seed, member, method, params, video from runs "
                          f"where status = 'ok' and video is not null and unit_id in ({units}) "
                          f"order by run_id").to_pylist()
    if not runs:
        raise UsageError(f"sweep {row['sweep_id']} has no finished run with a video to export")
    labels = method_labels(runs)
    for run in runs:
        parts = run["task_id"].split("/")
        if len(parts) != 3:
            raise UsageError(f"run {run['run_id']}: task {run['task_id']!r} is not a VBVR-Bench sample "
                             "({split}/{task}/{idx}); EvalKit export needs the VBVR layout")
        run["label"] = labels[(run["method"], run["params"] or "")] + (
            f"-member{run['member']}" if run["member"] else "")
        run["seed_folder"] = run["seed"] - run["member"]
        run["split"], run["task"], run["idx"] = parts
    return row, runs, labels


def export_sweep(store, sweep: str, out: str | Path, overwrite: bool = False) -> dict[str, str]:
    """Export the finished runs of `sweep` (id or name) under `out`; returns {label: params JSON}.

    Every finished run is exported, scored by a built-in scorer or not (those with null scores are what EvalKit is
    for)."""
    from cos_ray.tasks.export import export_evalkit

    _, runs, labels = evalkit_runs(store, sweep)
    with tempfile.TemporaryDirectory(prefix="cos-ray-export-") as staging:
        entries = [(run["label"], run["seed_folder"], run["split"], run["task"], run["idx"],
                    local_copy(store, run["video"], Path(staging))) for run in runs]
        export_evalkit(entries, out, overwrite=overwrite)
    return {label: params for (_, params), label in sorted(labels.items(), key=lambda item: item[1])}


def local_copy(store, relative: str, staging: Path) -> Path:
    """A store media file as a local path: the file itself on a local store, a downloaded copy otherwise."""
    if store.is_local:
        return Path(store.path(relative))
    target = staging / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with store.fs.open_input_stream(store.path(relative)) as source:
        target.write_bytes(source.read())
    return target
