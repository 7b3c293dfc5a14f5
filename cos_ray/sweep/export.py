"""`cos-ray export SWEEP --evalkit DIR`: a sweep's videos laid out for VBVR-EvalKit, one folder per method and seed,
and beside them (`DIR/gt`) the ground-truth sample folders EvalKit pairs them with.

EvalKit picks its evaluator by task folder name, so each run is filed under the name EvalKit knows its task by
(`cos_ray.tasks.vbvr_ids.evalkit_task`): a VBVR-Bench task keeps its folder name, a generated `maze` becomes
`O-39_maze_data-generator`; a family EvalKit has no evaluator for is refused before anything is written. The ground
truth is each run's own sample: the sweep's task folder, or the generated sample written again from its seed (the
generators are deterministic per (seed, index)).

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
    files it: `label`, `seed_folder` (the start seed), `split`, `task` (EvalKit's name for it), `idx`."""
    from cos_ray.store.query import run_sql
    from cos_ray.sweep.verify import find_sweep
    from cos_ray.tasks.vbvr_ids import evalkit_task

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
        run["split"], task, run["idx"] = parts
        run["task"] = evalkit_task(task)  # UsageError: no EvalKit evaluator for this family
    return row, runs, labels


def sample_folders(row: dict, runs: list[dict]) -> dict[str, Path]:
    """task_id -> the sample folder each run was conditioned on: the sweep's own task folder, or (`generate:`) the
    sample written again under the cache from its generator, parameters, seed and index, as the sweep wrote it."""
    import json

    from cos_ray.spec.fields import parse
    from cos_ray.spec.problems import Problems
    from cos_ray.spec.tasks import TasksSpec, resolve_tasks

    problems = Problems()
    tasks = parse(TasksSpec, json.loads(row["spec"] or "{}").get("tasks"), "tasks", problems)
    problems.raise_if_any(f"sweep {row['sweep_id']}'s spec")
    refs = {ref.task_id: ref for ref in resolve_tasks(tasks, Path(row["source"] or ".").parent)}
    folders = {}
    for task_id in sorted({run["task_id"] for run in runs}):
        if task_id not in refs:
            raise UsageError(f"sweep {row['sweep_id']}: sample {task_id} is no longer in its tasks ({row['source']}); "
                             "restore them, or score with `cos-ray score --evalkit --gt TREE`")
        folders[task_id] = refs[task_id].load().image_path.parent
    return folders


def export_sweep(store, sweep: str, out: str | Path, overwrite: bool = False,
                 ground_truth: bool = True) -> dict[str, str]:
    """Export the finished runs of `sweep` (id or name) under `out`, and their samples under `out/gt` unless
    `ground_truth` is False; returns {label: params JSON}.

    Every finished run is exported, scored by a built-in scorer or not (those with null scores are what EvalKit is
    for)."""
    from cos_ray.tasks.export import GT_FOLDER, check_folder_target, export_evalkit, export_ground_truth

    row, runs, labels = evalkit_runs(store, sweep)
    truth: dict[tuple[str, str, str], Path] = {}  # (split, EvalKit task, idx) -> sample folder
    for target in {Path(out).expanduser() / run["label"] / f"seed-{run['seed_folder']}" for run in runs}:
        check_folder_target(target, overwrite)  # every target judged before anything is copied or written
    if ground_truth:
        check_folder_target(Path(out).expanduser() / GT_FOLDER, overwrite)
        samples = sample_folders(row, runs)
        for run in runs:
            key = (run["split"], run["task"], run["idx"])
            if truth.setdefault(key, samples[run["task_id"]]) != samples[run["task_id"]]:
                raise UsageError(f"sweep {row['sweep_id']}: two samples are {'/'.join(key)} for EvalKit "
                                 f"({run['task_id']} and another); export them from separate sweeps")
    with tempfile.TemporaryDirectory(prefix="cos-ray-export-") as staging:
        entries = [(run["label"], run["seed_folder"], run["split"], run["task"], run["idx"],
                    local_copy(store, run["video"], Path(staging))) for run in runs]
        export_evalkit(entries, out, overwrite=overwrite)
    if ground_truth:
        export_ground_truth([(*key, folder) for key, folder in sorted(truth.items())], out, overwrite=overwrite)
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
