"""`cos-ray export SWEEP --evalkit DIR`: a real sweep's videos in VBVR-EvalKit's layout, one folder per method/seed."""

from __future__ import annotations

import filecmp

from click.testing import CliRunner

from cos_ray.cli import main
from cos_ray.store.location import Store
from cos_ray.store.query import run_sql


def test_a_sweep_exports_one_folder_per_method_and_seed(small_sweep, tmp_path):
    _, store, _ = small_sweep
    target = tmp_path / "evalkit"

    result = CliRunner().invoke(main, ["export", "small", "--evalkit", str(target), "--out", str(store)])

    assert result.exit_code == 0, result.output
    runs = run_sql(Store(store), "select task_id, seed, member, method, video from runs").to_pylist()
    expected = set()
    for run in runs:
        folder = run["method"] + (f"-member{run['member']}" if run["member"] else "")
        exported = target / folder / f"seed-{run['seed'] - run['member']}" / f"{run['task_id']}.mp4"
        assert filecmp.cmp(exported, store / run["video"], shallow=False)
        expected.add(exported)
    assert set(target.rglob("*.mp4")) == expected
    assert sorted(p.name for p in target.iterdir()) == ["baseline", "ensemble", "ensemble-member1"]
    assert "ensemble: params" in result.output

    again = CliRunner().invoke(main, ["export", "small", "--evalkit", str(target), "--out", str(store)])
    assert again.exit_code == 2 and "already exists" in again.output
