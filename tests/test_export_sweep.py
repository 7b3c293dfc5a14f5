"""`cos-ray export SWEEP --evalkit DIR`: a real sweep's videos in VBVR-EvalKit's layout, one folder per method/seed,
generated mazes under EvalKit's name for the task, their ground truth in DIR/gt."""

from __future__ import annotations

import filecmp

from click.testing import CliRunner

from cos_ray.cli import main
from cos_ray.store.location import Store
from cos_ray.store.query import run_sql

MAZE = "O-39_maze_data-generator"  # EvalKit's maze evaluator's task (cos_ray.tasks.vbvr_ids)


def test_a_sweep_exports_one_folder_per_method_and_seed(small_sweep, tmp_path):
    _, store, _ = small_sweep
    target = tmp_path / "evalkit"

    result = CliRunner().invoke(main, ["export", "small", "--evalkit", str(target), "--out", str(store)])

    assert result.exit_code == 0, result.output
    runs = run_sql(Store(store), "select task_id, seed, member, method, video from runs").to_pylist()
    expected = set()
    for run in runs:
        folder = run["method"] + (f"-member{run['member']}" if run["member"] else "")
        split, _, idx = run["task_id"].split("/")  # a generated maze: In-Domain_50/maze/00000
        exported = target / folder / f"seed-{run['seed'] - run['member']}" / split / MAZE / f"{idx}.mp4"
        assert filecmp.cmp(exported, store / run["video"], shallow=False)
        expected.add(exported)
    assert {p for p in target.rglob("*.mp4") if "gt" not in p.relative_to(target).parts[:1]} == expected
    assert sorted(p.name for p in target.iterdir()) == ["baseline", "ensemble", "ensemble-member1", "gt"]
    assert sorted(p.name for p in (target / "gt/In-Domain_50" / MAZE).iterdir()) == ["00000", "00001"]
    assert "ensemble: params" in result.output

    again = CliRunner().invoke(main, ["export", "small", "--evalkit", str(target), "--out", str(store)])
    assert again.exit_code == 2 and "already exists" in again.output
