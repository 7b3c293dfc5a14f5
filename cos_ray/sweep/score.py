"""`cos-ray score SWEEP --evalkit` / `--evalkit-results FILE.json`: VBVR-EvalKit's scores of a sweep's videos in the
store's `evalkit` table, one row per run, joinable to `runs` on `run_id`.

VBVR-EvalKit (github Video-Reason/VBVR-EvalKit, Apache-2.0, not on PyPI) is the field's reference scorer: 100
rule-based task scorers. cos-ray uses it as a package and copies none of it:
- `score_sweep` exports the sweep's videos as EvalKit reads them, under the task names EvalKit picks its evaluators by,
  with each run's ground-truth sample beside them (`cos_ray.sweep.export`), then calls its documented
  API `vbvr_bench.VBVRBench(gt_base_path, output_path).evaluate(videos_path, name)` on each method/seed folder - what
  its `evaluate.py` runs - and stores each video's weighted score, its five dimensions and the task-specific one;
- `import_results` reads a results JSON made elsewhere: `run_evaluation.py`'s (`samples[]` with `video_path`,
  `task_name`, `split`, `score`, `dimensions`; its score is the task-specific one) or `VBVRBench.evaluate`'s
  (`detailed[]`, same fields; its score is the weighted one). A sample is matched to its run by the tail of its
  video path, `{label}/seed-{S}/{split}/{task}/{idx}.mp4` as `cos-ray export` wrote it (or, when the folders were
  renamed, by `{split}/{task}/{idx}` if one run of the sweep has it).
Scores from both kinds of file for the same run fill one row: a later import keeps the columns it does not carry.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePath

from cos_ray.bounded_read import ReadLimits
from cos_ray.errors import UsageError
from cos_ray.tasks.folder import SPLITS

INSTALL = ("VBVR-EvalKit (Python package `vbvr_bench`) is not installed. It is not on PyPI; install it from its "
           "repository: pip install git+https://github.com/Video-Reason/VBVR-EvalKit.git (or clone it and "
           "`pip install -e .`). Or score elsewhere and import the results: cos-ray score SWEEP --evalkit-results "
           "FILE.json")
WEIGHTED_DIMENSIONS = ("first_frame_consistency", "final_frame_accuracy", "temporal_smoothness", "visual_quality",
                       "task_specific")
LOGICAL_SPLIT = {"In-Domain_50": "In_Domain", "Out-of-Domain_50": "Out_of_Domain"}  # EvalKit's names in results
RESULTS_LIMITS = ReadLimits(max_bytes=64 << 20, max_nodes=2_000_000)  # ~400 bytes a video: ~150,000 videos


@dataclass
class ScoreReport:
    """What one `cos-ray score` did: rows written, samples that matched no run, mean scores per export label."""

    sweep_id: str
    rows: int
    unmatched: list[str] = field(default_factory=list)
    means: dict[str, dict] = field(default_factory=dict)  # label -> {"runs", "score_task_specific", "score_weighted"}


def evalkit_version() -> str | None:
    """`vbvr-bench {version}` of the installed EvalKit, with its git commit when pip recorded one; None if absent."""
    from importlib import metadata

    try:
        dist = metadata.distribution("vbvr-bench")
    except metadata.PackageNotFoundError:
        return None
    version = f"vbvr-bench {dist.version}"
    try:
        commit = json.loads(dist.read_text("direct_url.json") or "{}").get("vcs_info", {}).get("commit_id")
    except ValueError:
        commit = None
    return f"{version} @ {commit}" if commit else version


def read_results(path: str | Path) -> list[dict]:
    """The samples of an EvalKit results JSON (`samples[]` or `detailed[]`), each checked; UsageError names what."""
    from cos_ray.bounded_read import FileRefused, read_json

    path = Path(path).expanduser()
    try:
        data = read_json(path, RESULTS_LIMITS, "EvalKit results JSON")  # regular file, 64 MiB, nesting 32
    except FileRefused as err:
        raise UsageError(f"--evalkit-results {path}: {err.reason}") from None
    samples = data.get("samples", data.get("detailed")) if isinstance(data, dict) else None
    if not isinstance(samples, list):
        raise UsageError(f"--evalkit-results {path}: expected EvalKit's results JSON, an object with a `samples` "
                         "list (run_evaluation.py) or a `detailed` list (VBVRBench.evaluate)")
    for index, sample in enumerate(samples):
        where = f"--evalkit-results {path}: samples[{index}]"
        if not isinstance(sample, dict):
            raise UsageError(f"{where}: expected an object, got {type(sample).__name__}")
        for name in ("video_path", "task_name"):
            if not isinstance(sample.get(name), str) or not sample[name]:
                raise UsageError(f"{where}.{name}: expected a non-empty string, got {sample.get(name)!r}")
        score = sample.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)):
            raise UsageError(f"{where}.score: expected a number, got {score!r}")
        if not isinstance(sample.get("dimensions", {}), dict):
            raise UsageError(f"{where}.dimensions: expected an object, got {sample.get('dimensions')!r}")
    return samples


def _scores(sample: dict) -> tuple[float | None, float | None]:
    """(task-specific, weighted): a sample carrying all five dimensions has the weighted score as its `score`."""
    dims = sample.get("dimensions") or {}
    score = float(sample["score"])
    if all(name in dims for name in WEIGHTED_DIMENSIONS):
        return float(dims["task_specific"]), score
    return (float(dims["task_specific"]) if "task_specific" in dims else score), None


def match_runs(samples: list[dict], runs: list[dict]) -> tuple[list[tuple[dict, dict]], list[str]]:
    """[(sample, run)] for samples whose video is one of `runs` (see `evalkit_runs`), and the unmatched paths."""
    exact = {(r["label"], f"seed-{r['seed_folder']}", r["split"], r["task"], r["idx"]): r for r in runs}
    loose: dict[tuple, list[dict]] = {}
    for run in runs:
        loose.setdefault((run["split"], run["task"], run["idx"]), []).append(run)
    matched, unmatched = [], []
    for sample in samples:
        parts = PurePath(sample["video_path"].replace("\\", "/")).parts
        idx, task = PurePath(parts[-1]).stem, parts[-2] if len(parts) > 1 else sample["task_name"]
        split = parts[-3] if len(parts) > 2 else None
        run = exact.get((parts[-5], parts[-4], split, task, idx)) if len(parts) >= 5 else None
        if run is None:
            candidates = loose.get((split, task, idx), [])
            run = candidates[0] if len(candidates) == 1 else None
        if run is None:
            unmatched.append(sample["video_path"])
        else:
            matched.append((sample, run))
    return matched, unmatched


def evalkit_rows(matched, sweep_id: str, version: str | None, source: str) -> list[dict]:
    """Rows of the `evalkit` table for matched (sample, run) pairs."""
    now = datetime.now(timezone.utc)
    rows = []
    for sample, run in matched:
        task_specific, weighted = _scores(sample)
        rows.append({
            "run_id": run["run_id"], "sweep_id": sweep_id, "unit_id": run["unit_id"], "task": run["task"],
            "split": LOGICAL_SPLIT[run["split"]], "sample": run["idx"],
            "score_task_specific": task_specific, "score_weighted": weighted,
            "dimensions": json.dumps(sample.get("dimensions") or {}, sort_keys=True),
            "evalkit_version": version, "source": source, "video_path": sample["video_path"],
            "error": sample.get("error"), "scored_at": now,
        })
    return rows


def commit_evalkit(store, rows: list[dict]) -> None:
    """Merge rows into `evalkit` on (run_id, task, split), keeping an existing row's scores the new row lacks."""
    from cos_ray.store.write import commit_rows

    if not rows:
        return
    if store.has_table("evalkit"):
        from cos_ray.store.query import run_sql

        ids = {row["run_id"] for row in rows}  # filtered here: a pushed-down string filter can fail on Delta reads
        old = {(r["run_id"], r["task"], r["split"]): r for r in run_sql(
            store, "select run_id, task, split, score_task_specific, score_weighted, dimensions from evalkit"
        ).to_pylist() if r["run_id"] in ids}
        for row in rows:
            before = old.get((row["run_id"], row["task"], row["split"]))
            if before is None:
                continue
            for column in ("score_task_specific", "score_weighted"):
                if row[column] is None:
                    row[column] = before[column]
            if row["score_weighted"] is None or before["score_weighted"] is None:  # keep the five dimensions
                merged = {**json.loads(before["dimensions"] or "{}"), **json.loads(row["dimensions"])}
                row["dimensions"] = json.dumps(merged, sort_keys=True)
    commit_rows(store, "evalkit", rows)


def _means(rows: list[dict], runs: list[dict]) -> dict[str, dict]:
    label_of = {run["run_id"]: run["label"] for run in runs}
    out: dict[str, dict] = {}
    for row in rows:
        entry = out.setdefault(label_of[row["run_id"]], {"runs": 0, "task": [], "weighted": []})
        entry["runs"] += 1
        for key, column in (("task", "score_task_specific"), ("weighted", "score_weighted")):
            if row[column] is not None:
                entry[key].append(row[column])
    return {label: {"runs": e["runs"],
                    "score_task_specific": sum(e["task"]) / len(e["task"]) if e["task"] else None,
                    "score_weighted": sum(e["weighted"]) / len(e["weighted"]) if e["weighted"] else None}
            for label, e in sorted(out.items())}


def import_results(store, sweep: str, path: str | Path, version: str | None = None) -> ScoreReport:
    """Import an EvalKit results JSON for `sweep`; samples matching no run of the sweep are reported, not stored."""
    from cos_ray.sweep.export import evalkit_runs

    samples = read_results(path)
    row, runs, _ = evalkit_runs(store, sweep)
    matched, unmatched = match_runs(samples, runs)
    if samples and not matched:
        raise UsageError(f"--evalkit-results {path}: none of its {len(samples)} video(s) is a run of sweep "
                         f"{row['sweep_id']} (expected paths ending in {{label}}/seed-{{S}}/{{split}}/{{task}}/"
                         f"{{idx}}.mp4, as `cos-ray export` writes them); first: {samples[0]['video_path']}")
    rows = evalkit_rows(matched, row["sweep_id"], version, str(Path(path).expanduser().resolve()))
    commit_evalkit(store, rows)
    return ScoreReport(row["sweep_id"], len(rows), unmatched, _means(rows, runs))


def score_sweep(store, sweep: str, gt: str | Path | None = None, task_specific_only: bool = False) -> ScoreReport:
    """Score every finished video of `sweep` with EvalKit's API (`VBVRBench.evaluate`) and store the rows.

    The ground truth is the export's own `gt` folder (each run's sample, `cos_ray.sweep.export`), or the VBVR-Bench
    tree `gt` when given. Every task must have an evaluator in EvalKit's registry: checked before anything runs."""
    try:
        import vbvr_bench
        from vbvr_bench.evaluators import TASK_EVALUATOR_MAP
    except ImportError:
        raise UsageError(INSTALL) from None
    from cos_ray.sweep.export import evalkit_runs, export_sweep
    from cos_ray.tasks.export import GT_FOLDER

    row, runs, _ = evalkit_runs(store, sweep)
    missing = sorted({run["task"] for run in runs} - set(TASK_EVALUATOR_MAP))
    if missing:
        raise UsageError(f"sweep {row['sweep_id']}: VBVR-EvalKit has no evaluator for task {missing[0]!r} "
                         f"({len(missing)} such task(s)); its registry: vbvr_bench.evaluators.TASK_EVALUATOR_MAP")
    gt_root = Path(gt).expanduser() if gt is not None else None
    if gt_root is not None and not any((gt_root / split).is_dir() for split in SPLITS):
        raise UsageError(f"--gt {gt_root}: expected a VBVR-Bench tree ({' or '.join(SPLITS)} folders)")
    version = evalkit_version()
    samples = []
    with tempfile.TemporaryDirectory(prefix="cos-ray-evalkit-") as work:
        videos = Path(work) / "videos"
        export_sweep(store, sweep, videos, ground_truth=gt_root is None)
        gt_root = gt_root or videos / GT_FOLDER
        bench = vbvr_bench.VBVRBench(gt_base_path=str(gt_root), output_path=str(Path(work) / "results"), device="cpu")
        for folder in sorted(p for p in videos.glob("*/seed-*") if p.is_dir()):
            name = f"{folder.parent.name}-{folder.name}"
            with contextlib.redirect_stdout(sys.stderr):  # EvalKit prints its progress and summary: keep stdout ours
                results = bench.evaluate(str(folder), name=name, task_specific_only=task_specific_only)
            samples.extend(results.get("detailed", []))
        matched, unmatched = match_runs(samples, runs)
        rows = evalkit_rows(matched, row["sweep_id"], version, "vbvr_bench.VBVRBench.evaluate")
    commit_evalkit(store, rows)
    return ScoreReport(row["sweep_id"], len(rows), unmatched, _means(rows, runs))
