"""Stores for the dashboard tests, and independent readers of them (pyarrow, not the dashboard's own SQL).

The small real sweep (conftest's `small_sweep`) has no probes: `write_probe_store` writes a store with the probe
methods (noise at step / at frame, swaps, reference methods) and `layers` rows (energy, CKA) as a sweep writes them,
one unit at a time with `write_unit`, so the Probes view is tested on the store layout it will meet.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from cos_ray.store.location import Store
from cos_ray.store.rows import sweep_row
from cos_ray.store.write import write_sweep, write_unit

PROBE_SWEEP = "probesweep0000000"
TASKS = ("In-Domain_50/maze/00000", "In-Domain_50/maze/00001")
SEEDS = (0, 1)
ENERGY_LAYERS = (0, 9, 20, 39)
STEPS = 4
FRAMES = 2


def read(store: Path, table: str) -> pa.Table:
    """A table's rows as delta-rs reads the newest version of its Delta table (not through cos-ray's views)."""
    from deltalake import DeltaTable

    folder = Path(store) / table
    assert (folder / "_delta_log").is_dir(), f"no {table} table in {store}"
    return DeltaTable(str(folder)).to_pyarrow_dataset().to_table()


def overall(row: dict) -> float | None:
    """The weighted score of a runs row: its `score_overall` column, or (older stores) the scores JSON's."""
    if row.get("score_overall") is not None:
        return row["score_overall"]
    value = json.loads(row["scores"]).get("overall") if row.get("scores") else None
    return None if value is None else float(value)


def write_probe_store(root: Path, seed: int = 0) -> Path:
    """A store of probe runs: per task and seed a baseline, first_frame and ground_truth run, noise_at_step at each
    of 4 steps, noise_at_frame at each of 2 latent frames and swaps at layers 0 and 20; energy rows for baselines,
    CKA rows for the noise runs."""
    rng = np.random.default_rng(seed)
    store = Store(root)
    methods = [("baseline", {}), ("first_frame", {}), ("ground_truth", {})]
    methods += [("noise_at_step", {"step": step, "strength": 1.0, "seed": 0}) for step in range(STEPS)]
    methods += [("noise_at_frame", {"frame": frame, "strength": 1.0, "seed": 0}) for frame in range(FRAMES)]
    swaps = [("swap", {"layer": layer, "step": 0, "source": {"offset": 1}}) for layer in (0, 20)]
    unit_ids = []
    now = datetime.now(timezone.utc)
    for index, task in enumerate(TASKS):
        source = {"source_task": TASKS[(index + 1) % len(TASKS)]}
        for seed_ in SEEDS:
            for method, params in methods + [(name, {**params, **source}) for name, params in swaps]:
                unit_id = f"{len(unit_ids):016x}"
                unit_ids.append(unit_id)
                run_id = f"{unit_id}-0"
                score = float(rng.uniform(0, 1))
                run = {"sweep_id": PROBE_SWEEP, "unit_id": unit_id, "run_id": run_id, "member": 0, "task_id": task,
                       "task_family": "maze", "seed": seed_, "method": method,
                       "params": json.dumps(params, sort_keys=True), "model": "tiny", "settings": "{}",
                       "score": score, "score_overall": float(rng.uniform(0, 1)), "flips": 0,
                       "scores": json.dumps({"task_specific": score}),
                       "status": "ok", "started_at": now, "finished_at": now}
                steps = [{"run_id": run_id, "unit_id": unit_id, "step": step, "x0_mean": float(rng.normal()),
                          "x0_std": 1.0, "score": float(rng.uniform(0, 1))} for step in range(STEPS)]
                layers = []
                if method == "baseline":
                    for layer in ENERGY_LAYERS:
                        for step in range(STEPS):
                            frame_means = [float(v) for v in rng.uniform(1, 10, FRAMES)]
                            layers.append({"run_id": run_id, "unit_id": unit_id, "step": step, "kind": "energy",
                                           "layer": f"{'high' if step < 2 else 'low'}.blocks.{layer}",
                                           "layer_index": layer, "expert": "high" if step < 2 else "low",
                                           "value": float(np.mean(frame_means)), "frame_means": frame_means,
                                           "grid": [FRAMES, 4, 4], "map_shape": [FRAMES, 2, 2],
                                           "map": [float(v) for v in rng.uniform(1, 10, FRAMES * 4)]})
                if method.startswith("noise"):
                    layers += [{"run_id": run_id, "unit_id": unit_id, "step": step, "kind": "cka",
                                "layer": "latents", "value": float(rng.uniform(0, 1))} for step in range(STEPS)]
                write_unit(store, unit_id, [run], steps, layers)
    write_sweep(store, sweep_row(PROBE_SWEEP, "probes", "probes.yaml", {}, "tiny", unit_ids, "done",
                                 done=len(unit_ids), started_at=now, finished_at=now))
    return root


def test_probe_store_reads_back(tmp_path):
    root = write_probe_store(tmp_path / "store")
    runs, layers = read(root, "runs"), read(root, "layers")
    assert runs.num_rows == len(TASKS) * len(SEEDS) * 11
    kinds = layers.column("kind").to_pylist()
    assert kinds.count("energy") == len(TASKS) * len(SEEDS) * len(ENERGY_LAYERS) * STEPS
    assert kinds.count("cka") == len(TASKS) * len(SEEDS) * (STEPS + FRAMES) * STEPS
