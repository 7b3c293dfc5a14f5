"""The sweep's progress weighs units by model work and names them: the smoke job's free `first_frame` units give no
ETA (they said "eta 3 s" before a minute of model work), an ensemble counts as its members' steps, and each line
names task, method and seeds instead of a hex id."""

from __future__ import annotations

import io
from pathlib import Path

from cos_ray.spec.expand import expand
from cos_ray.spec.load import load_spec
from cos_ray.sweep.progress import SweepProgress, unit_label, unit_work

SMOKE = Path(__file__).resolve().parent.parent / "jobs" / "smoke.yaml"


def test_work_is_steps_times_members_and_the_eta_waits_for_model_work():
    units = expand(load_spec(SMOKE))
    by_method = {}
    for unit in units:
        by_method.setdefault(unit.method, []).append(unit)
    assert {unit_work(unit) for unit in by_method["first_frame"]} == {0}
    assert {unit_work(unit) for unit in by_method["baseline"]} == {10}  # 10 steps x 1 member
    assert {unit_work(unit) for unit in by_method["ensemble"]} == {30}  # 10 steps x 3 members
    stream = io.StringIO()
    progress = SweepProgress(units, stream=stream)
    assert progress.work_total == 10 * len(by_method["baseline"]) + 30 * len(by_method["ensemble"])
    for unit in by_method["first_frame"]:
        progress.unit_started(unit)
        progress.unit_ended(unit, True, 0.01)
    assert progress.eta_s() is None, "free units say nothing of the model's rate"
    ensemble = by_method["ensemble"][0]
    progress.unit_started(ensemble)
    progress.unit_ended(ensemble, True, 3.0)
    eta = progress.eta_s()
    assert eta is not None and progress.work_done == 30
    lines = stream.getvalue().splitlines()
    assert lines[-1].startswith(f"[{len(by_method['first_frame']) + 1}/{len(units)}] {ensemble.task.task_id} · "
                                "ensemble · seeds 0-2 ok")
    assert all(unit.unit_id not in stream.getvalue() for unit in units)


def test_labels_name_task_method_and_seeds():
    baseline = next(unit for unit in expand(load_spec(SMOKE)) if unit.method == "baseline")
    assert unit_label(baseline) == f"{baseline.task.task_id} · baseline · seed {baseline.seeds[0]}"
