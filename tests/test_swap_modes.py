"""Swap modes on the tiny preset: `update` lets the layer matter, `stream` at step 0 with a shared prompt cannot
(the reason `update` is the default); step ranges and token regions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from cos_ray.engine.trajectory import run_trajectory
from cos_ray.errors import UsageError
from cos_ray.interventions.configs import SwapConfig
from cos_ray.interventions.swap import LatentSwap, token_mask
from cos_ray.probes.states import StateCapture
from cos_ray.tasks.folder import TaskInput

SEED = 5
LAYERS = (0, 20, 39)


@pytest.fixture(scope="module")
def task_b(tmp_path_factory, task):
    """Run B: another first frame (a blue board with the goal elsewhere), the same prompt and seed as A."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), (30, 30, 200))
    ImageDraw.Draw(image).rectangle([40, 4, 58, 20], fill=(220, 0, 0))
    folder = tmp_path_factory.mktemp("swap-b")
    image.save(folder / "first_frame.png")
    return TaskInput("b", folder / "first_frame.png", task.prompt)


def swapped(tiny_model, task, task_b, settings, config, mask=None, probe=None):
    swap = LatentSwap(config, mask=mask)
    run_trajectory(tiny_model, task_b, settings, [SEED], interventions=[swap.capture])
    (a,) = run_trajectory(tiny_model, task, settings, [SEED], interventions=[swap.replace] + ([probe] if probe else []))
    return a, swap


@pytest.mark.parametrize("mode", ["update", "stream"])
def test_the_layer_matters_in_update_mode_only(tiny_model, task, task_b, short_settings, mode):
    """Short trajectories (4 steps, 5 frames): the swap is at step 0, and either claim holds whatever follows it (the
    update-mode layers differ by 5.7e-5 to 7.1e-5 there, measured)."""
    videos = {layer: swapped(tiny_model, task, task_b, short_settings, SwapConfig(layer=layer, step=0, mode=mode))[0]
              .video for layer in LAYERS}
    (alone,) = run_trajectory(tiny_model, task, short_settings, [SEED])
    for first, second in itertools.combinations(LAYERS, 2):
        diff = float(np.abs(videos[first] - videos[second]).max())
        if mode == "update":
            assert diff > 1e-6, (first, second, diff)  # deterministic runs: any difference is the swap's
        else:  # from the swapped block on A computes B's values whatever the layer: B's velocity at step 0
            assert diff == 0.0, (first, second, diff)
    assert all(float(np.abs(video - alone.video).max()) > 1e-6 for video in videos.values())  # the swap acts


def test_update_mode_adds_b_update_to_a_own_stream(tiny_model, task, task_b, tiny_settings):
    """At the swapped block: A's output = A's input + (B's output − B's input), checked from captured states."""
    config = SwapConfig(layer=20, step=1, mode="update")
    b_in, b_out, a_in, a_out = (StateCapture(point) for point in ("blocks.19", "blocks.20", "blocks.19", "blocks.20"))
    swap = LatentSwap(config)
    run_trajectory(tiny_model, task_b, tiny_settings, [SEED], interventions=[swap.capture, b_in, b_out])
    run_trajectory(tiny_model, task, tiny_settings, [SEED], interventions=[swap.replace, a_in, a_out])
    expected = a_in.states[0][1] + (b_out.states[0][1] - b_in.states[0][1])  # (seq, dim), cond branch
    assert torch.allclose(a_out.states[0][1], expected, atol=1e-5)
    assert not torch.allclose(a_out.states[0][1], b_out.states[0][1], atol=1e-3)  # not B's stream


def test_a_step_range_swaps_at_every_step_of_it(tiny_model, task, task_b, tiny_settings):
    _, swap = swapped(tiny_model, task, task_b, tiny_settings, SwapConfig(layer=20, step="0-2", mode="stream"))
    assert set(swap.captured) == {(step, branch) for step in range(3) for branch in ("cond", "uncond")}


def test_a_region_swaps_only_its_tokens(tiny_model, task, task_b, tiny_settings):
    mask = np.zeros((64, 64), dtype=np.float32)
    mask[:32, :32] = 1.0  # the top-left quarter of the first frame
    own, b_state, a_state = StateCapture("blocks.20"), StateCapture("blocks.20"), StateCapture("blocks.20")
    run_trajectory(tiny_model, task, tiny_settings, [SEED], interventions=[own])
    swap = LatentSwap(SwapConfig(layer=20, step=0, mode="stream", region="mask.png"), mask=mask)
    run_trajectory(tiny_model, task_b, tiny_settings, [SEED], interventions=[swap.capture, b_state])
    run_trajectory(tiny_model, task, tiny_settings, [SEED], interventions=[swap.replace, a_state])
    chosen = token_mask(mask, (3, 4, 4))  # (seq,): latent frames x patch grid of 9 frames at 64x64
    assert int(chosen.sum()) == 3 * 2 * 2
    a, b, alone = a_state.states[0][0], b_state.states[0][0], own.states[0][0]  # (seq, dim) at step 0
    assert torch.equal(a[chosen], b[chosen]) and torch.equal(a[~chosen], alone[~chosen])
    with pytest.raises(UsageError, match="swap.region: 'foreground' needs a mask image"):
        LatentSwap(SwapConfig(layer=20, region="foreground"))


def test_the_compare_view_names_the_ensembles_answers():
    """`ensemble_answers` on a store-like DuckDB (runs + layers): members' mean and the consensus members' mean,
    each labelled, with the merge mode; the reference is computed here from the same rows."""
    import duckdb
    import pyarrow as pa

    from cos_ray.dashboard.compare import ensemble_answers
    from cos_ray.dashboard.filters import RunFilter

    runs, layers = [], []
    scores = {"a": [0.2, 0.9, 0.4], "b": [1.0, 0.0, 0.5]}
    for unit, values in scores.items():
        for member, score in enumerate(values):
            runs.append({"run_id": f"{unit}-{member}", "unit_id": unit, "method": "ensemble", "status": "ok",
                         "params": '{"merge": "stream", "size": 3}', "score": score, "sweep_id": "s",
                         "task_family": "maze"})
    runs.append({"run_id": "c-0", "unit_id": "c", "method": "baseline", "status": "ok", "params": "{}",
                 "score": 0.7, "sweep_id": "s", "task_family": "maze"})
    layers = [{"run_id": "a-1", "kind": "consensus"}, {"run_id": "b-2", "kind": "consensus"},
              {"run_id": "a-0", "kind": "x0_to_mean"}]

    class Connection:  # the two views the dashboard's store connection serves
        tables = {"runs", "layers"}

        def __init__(self):
            self.db = duckdb.connect()
            self.db.register("runs", pa.Table.from_pylist(runs))
            self.db.register("layers", pa.Table.from_pylist(layers))

        def query(self, sql, params=None):
            return self.db.sql(sql, params=params or None).to_arrow_table()

    rows = {row["answer"]: row for row in ensemble_answers(Connection(), RunFilter()).to_pylist()}
    assert set(rows) == {"members", "consensus"}
    assert rows["members"]["mean"] == pytest.approx(np.mean(scores["a"] + scores["b"]))
    assert rows["consensus"]["mean"] == pytest.approx(np.mean([0.9, 0.5])) and rows["consensus"]["units"] == 2
    assert {row["merge"] for row in rows.values()} == {"stream"}
