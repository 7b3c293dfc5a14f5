"""The model card's probe figures (`cos_ray.training.figures_*`): the swap's answer classification against routes
painted by hand from the generator's metadata, the route tokens against the grid by hand, and each figure's
aggregation against a numpy recount of the same raw rows of a real probe sweep on the tiny preset."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from cos_ray.tasks import colors
from cos_ray.tasks.families import get_family
from cos_ray.tasks.generation import family_params

PARAMS = {"cells": 4, "size": 64, "frames": 5}
SWEEP = """\
name: figures
model: {name: tiny, workers: 1, groups: 2}
tasks: {generate: {family: maze, n: 2, seed: 3, params: {cells: 4, size: 64, frames: 5}}}
seeds: [0]
sampler: {steps: 3, frames: 5}
methods:
  - baseline
  - noise_at_step: {step: 1}
  - noise_at_frame: {frame: 1}
  - swap: {step: 0, layer: [0, 39], mode: update, source: {offset: 1}}
  - swap: {step: 0, layer: [0, 39], mode: stream, source: {offset: 1}}
probes:
  energy: {layers: [0, 20, 39], every: 1}
  sensitivity: latents
"""


def maze(index: int, seed: int = 3):
    return get_family("maze").generate(np.random.default_rng([seed, index]), family_params("maze", **PARAMS))


def paint_route(board: np.ndarray, meta: dict) -> np.ndarray:
    """`board` `# (H, W, 3)` with an orange square on the centre of every cell of `meta`'s route (by hand)."""
    out = board.copy()
    grid = meta["grid"]
    for r, c in meta["route"]:
        x, y = int(grid["origin"] + (c + 0.5) * grid["cell"]), int(grid["origin"] + (r + 0.5) * grid["cell"])
        out[y - 3: y + 4, x - 3: x + 4] = colors.PATH
    return out


def test_swap_answers_are_read_against_routes_painted_by_hand(tmp_path):
    from cos_ray.media import read_video, write_video
    from cos_ray.training.figures_swap import classify

    a, b = maze(0), maze(1)
    ends = {tuple(a.meta[k]) for k in ("start", "goal")} | {tuple(b.meta[k]) for k in ("start", "goal")}
    assert {tuple(rc) for rc in a.meta["route"]} - ends != {tuple(rc) for rc in b.meta["route"]} - ends
    stored = read_video(write_video(tmp_path / "a.mp4", a.frames, fps=16))  # (frames, H, W, 3) through the mp4
    assert classify(a.frames, a, b) == classify(stored, a, b) == "a"
    b_on_a = np.stack([a.frames[0]] * 4 + [paint_route(a.frames[0], b.meta)])  # B's route drawn on A's board
    assert classify(b_on_a, a, b) == "b"
    assert classify(b_on_a, a, a) == "neither"  # B's path is not A's answer
    assert classify(np.repeat(a.frames[:1], 5, axis=0), a, b) == "neither"  # the input held
    # a stored run's own score decides the threshold part (the mp4 moves it); the route is read from the video
    assert classify(stored, a, b, score=0.95) == "a" and classify(stored, a, b, score=0.5) == "neither"


def test_route_tokens_are_the_route_cells_at_one_token_per_cell():
    from cos_ray.training.figures_energy import route_ratio, route_tokens

    a = maze(0)
    on = route_tokens(a.meta, (2, 4, 4))
    assert on.tolist() == [[[i, j] in a.meta["route"] for j in range(4)] for i in range(4)]
    energy = np.where(on, 3.0, 1.5)[None].repeat(2, axis=0)  # (frames, h, w)
    energy[0] = 100.0  # latent frame 0 (the input frame) is left out
    assert route_ratio(energy, on) == pytest.approx(2.0)


@pytest.fixture(scope="module")
def store(ray_cluster, tmp_path_factory):
    from cos_ray.sweep.runner import run_sweep

    folder = tmp_path_factory.mktemp("figures")
    (folder / "figures.yaml").write_text(SWEEP)
    report = run_sweep(str(folder / "figures.yaml"), str(folder / "results"), progress=False)
    assert report.status == "done", report
    return str(folder / "results")


def raw(store, sql):
    from cos_ray.training.figures_common import rows

    return rows(store, sql)


def test_noise_and_cka_tables_equal_a_recount_of_the_rows(store):
    from cos_ray.training.figures_cka import cka_tables
    from cos_ray.training.figures_noise import noise_table

    runs = raw(store, "select run_id, method, params, score, settings from runs")
    groups = defaultdict(list)
    for r in runs:
        p = json.loads(r["params"] or "{}")
        groups[(r["method"], p.get("step", p.get("frame")))].append(r["score"])
    table = noise_table(store)
    assert table["baseline"]["score"] == pytest.approx(np.mean(groups[("baseline", None)]))
    for method in ("noise_at_step", "noise_at_frame"):
        assert [c["at"] for c in table[method]] == [1]
        for cell in table[method]:
            scores = groups[(method, cell["at"])]
            assert cell["runs"] == len(scores) == 2
            assert cell["score"] == pytest.approx(np.mean(scores))
            assert cell["correct"] == pytest.approx(np.mean(np.array(scores) >= 0.9))
    cka = cka_tables(store)
    by_run = {r["run_id"]: r for r in runs}
    values = defaultdict(list)
    for row in raw(store, "select run_id, step, value from layers where kind = 'cka'"):
        run = by_run[row["run_id"]]
        p = json.loads(run["params"])
        values[(run["method"], p.get("step", p.get("frame")), row["step"])].append(row["value"])
    for method, final in cka["final"].items():
        for cell in final:
            assert cell["final_dissimilarity"] == pytest.approx(np.mean(values[(method, cell["noised_at"], 2)]))
        for at, curve in cka["curves"][method].items():
            assert curve == pytest.approx([np.mean(values[(method, at, s)]) for s in range(3)], abs=1e-4)
    assert cka["curves"]["noise_at_step"][1][0] == 0.0 < cka["curves"]["noise_at_step"][1][1]  # noised at step 1


def test_energy_table_equals_a_recount_of_the_maps(store):
    from cos_ray.training.figures_energy import energy_tables

    samples = {f"In-Domain_50/maze/{i:05d}": maze(i) for i in range(2)}
    maps = raw(store, "select r.task_id, l.layer_index, l.value, l.map, l.map_shape from layers l join runs r "
                      "using (run_id) where l.kind = 'energy' and r.method = 'baseline'")
    table = {r["layer_index"]: r for r in energy_tables(store)["by_layer"]}
    assert sorted(table) == [0, 20, 39]
    for layer, cell in table.items():
        mine = [m for m in maps if m["layer_index"] == layer]
        assert cell["energy"] == pytest.approx(np.mean([m["value"] for m in mine]))
        ratios = []
        for m in mine:
            e = np.reshape(m["map"], m["map_shape"])  # (frames, 4, 4)
            route = samples[m["task_id"]].meta["route"]
            on = [e[f, i, j] for f in range(1, len(e)) for i in range(4) for j in range(4) if [i, j] in route]
            off = [e[f, i, j] for f in range(1, len(e)) for i in range(4) for j in range(4) if [i, j] not in route]
            ratios.append(np.mean(on) / np.mean(off))
        assert cell["route_ratio"] == pytest.approx(np.mean(ratios))


def test_swap_table_recounts_and_the_card_prints_its_sql(store, tmp_path, capsys):
    from cos_ray.training.card import main
    from cos_ray.training.figures_swap import classify, swap_tables

    table = swap_tables(store)
    runs = raw(store, "select task_id, seed, method, params, score, video from runs")
    swaps = [r for r in runs if r["method"] == "swap"]
    assert sum(c["runs"] for c in table["by_layer"]) == len(swaps) == 8
    assert {(c["mode"], c["steps"], c["layer"]) for c in table["by_layer"]} == {
        (m, "0", k) for m in ("update", "stream") for k in (0, 39)}
    for cell in table["by_layer"]:
        assert cell["a"] + cell["b"] + cell["neither"] == cell["runs"] == 2
    base = {r["task_id"]: r["score"] for r in runs if r["method"] == "baseline"}
    for row in table["sql"]:
        mine = [r for r in swaps if json.loads(r["params"])["layer"] == row["layer"]
                and json.loads(r["params"])["mode"] == row["mode"]]
        assert row["swapped"] == pytest.approx(np.mean([r["score"] for r in mine]))
        assert row["b_alone"] == pytest.approx(np.mean([base[json.loads(r["params"])["source_task"]] for r in mine]))
    assert table["stream_identical_across_layers"] == (2, 2)  # stream at step 0, one prompt: flat by construction
    from cos_ray.media import read_video

    first = swaps[0]
    a, b = maze(int(first["task_id"][-5:])), maze(int(json.loads(first["params"])["source_task"][-5:]))
    video = read_video(f"{store}/{first['video']}")
    cell = next(c for c in table["by_layer"] if (c["mode"], c["layer"]) == (json.loads(first["params"])["mode"],
                                                                            json.loads(first["params"])["layer"]))
    assert cell[classify(video, a, b)] >= 1
    same = [r for r in swaps if json.loads(r["params"])["mode"] == cell["mode"]
            and json.loads(r["params"])["layer"] == cell["layer"]]
    alone = {r["task_id"]: r["video"] for r in runs if r["method"] == "baseline"}
    change = np.mean([np.abs(read_video(f"{store}/{r['video']}").astype(float)
                             - read_video(f"{store}/{alone[r['task_id']]}")).mean() for r in same])
    assert cell["pixel_change"] == pytest.approx(change, abs=1e-4)
    for kind in ("noise", "cka", "energy", "energy-maps", "swap"):
        assert main([kind, store, str(tmp_path / f"{kind}.png")]) == 0
        printed = capsys.readouterr().out
        assert printed.lstrip().startswith("-- ") and "select" in printed
        assert json.loads(printed[printed.index("\n{") + 1:]) is not None
        assert 1000 < (tmp_path / f"{kind}.png").stat().st_size < 150_000
    assert main(["swap", str(tmp_path / "nowhere"), str(tmp_path / "x.png")]) == 2
