"""Every runs row says how it was made, and its scores are what an independent in-process run scores."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest
import yaml

from cos_ray.provenance import package_commit, spec_hash
from cos_ray.store.location import Store
from cos_ray.store.query import run_sql


def test_provenance_columns_are_present_and_right(small_sweep):
    from cos_ray.model.identity import model_identity
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec

    spec_path, store, report = small_sweep
    units = {unit.unit_id: unit for unit in expand(load_spec(spec_path))}
    rows = run_sql(Store(store), "select * from runs order by run_id").to_pylist()
    assert len(rows) == 12
    expected_hash = spec_hash(yaml.safe_load(spec_path.read_text()))
    for row in rows:
        unit = units[row["unit_id"]]
        assert json.loads(row["model_identity"]) == model_identity("tiny")
        assert row["seeds"] == list(unit.seeds) and row["seed"] == unit.seeds[row["member"]]
        assert row["layout"] == "+".join(map(str, unit.layout))
        assert (row["device"], row["dtype"]) == ("cpu", "float32")
        assert row["spec_hash"] == expected_hash
        assert row["cos_ray_commit"] == package_commit()
        assert (row["torch_version"], row["diffusers_version"], row["ray_version"]) == (
            version("torch"), version("diffusers"), version("ray"))
        assert json.loads(row["settings"]) == unit.settings.as_dict()
    grouped = run_sql(Store(store), "select layout, count(*) n from runs group by layout order by layout").to_pylist()
    assert grouped == [{"layout": "1", "n": 4}, {"layout": "2", "n": 8}]


@pytest.mark.timeout(300)
def test_stored_scores_equal_an_in_process_run_scored_independently(small_sweep, tiny_model):
    from cos_ray.engine.trajectory import run_trajectory
    from cos_ray.spec.expand import expand
    from cos_ray.spec.load import load_spec
    from cos_ray.tasks.score import references
    from cos_ray.tasks.trajectory_scores import score_trajectory

    spec_path, store, _ = small_sweep
    unit = next(unit for unit in expand(load_spec(spec_path)) if unit.method == "baseline")
    task = unit.task.load()
    [member] = run_trajectory(tiny_model, task, unit.settings, list(unit.seeds), x0=unit.x0)
    scored = score_trajectory(member, references(task))

    [row] = run_sql(Store(store), f"select * from runs where unit_id = '{unit.unit_id}'").to_pylist()
    assert row["score"] == pytest.approx(scored["score"], abs=1e-9)
    assert row["score_overall"] == pytest.approx(scored["score_overall"], abs=1e-9)
    assert row["score"] != row["score_overall"]  # the two kinds are different numbers, kept apart
    assert json.loads(row["scores"]) == pytest.approx(scored["dimensions"])
    assert (row["lock_in_step"], row["flips"]) == (scored["first_stable_step"], scored["flips"])
    steps = run_sql(Store(store), f"select step, score from steps where run_id = '{unit.unit_id}-0' "
                                  "and score is not null order by step").to_pylist()
    assert {row["step"]: row["score"] for row in steps} == pytest.approx(
        {step: pair[0] for step, pair in scored["step_scores"].items()})
