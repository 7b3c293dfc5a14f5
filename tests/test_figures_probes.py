"""The paper's figures (`cos_ray.figures`, `cos-ray figures`): the swap's answer classification against routes
painted by hand from the generator's metadata, the route tokens against the grid by hand, and every CSV that
`cos-ray figures` writes for a real probe sweep on the tiny preset recounted with numpy from the raw rows (read with
`cos-ray sql`'s reader, not the package's); bad input is one line, exit 2, nothing written."""

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
  x0: {every: 1, decode: true}
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
    from cos_ray.figures.solved_verdict import whose_answer as classify
    from cos_ray.media import read_video, write_video

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
    from cos_ray.figures.energy import route_ratio, route_tokens

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
    """The raw rows, read as `cos-ray sql` reads them (not through cos_ray.figures)."""
    from cos_ray.store.location import Store
    from cos_ray.store.query import run_sql

    return run_sql(Store(store), sql).to_pylist()


def cli(*args):
    """`cos-ray ARGS...` as a user runs it: (exit code, stdout, stderr)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    done = subprocess.run([sys.executable, "-m", "cos_ray.cli", *args], capture_output=True, text=True, timeout=300,
                          env=env)
    return done.returncode, done.stdout, done.stderr


def read_csv(path):
    import csv

    def value(text):
        try:
            return float(text)
        except ValueError:
            return text if text else None

    with open(path) as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def wilson(k, n):
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(0.95, method="wilson")
    return ci.low, ci.high


def position(run):
    p = json.loads(run["params"] or "{}")
    return p.get("step", p.get("frame"))


@pytest.fixture(scope="module")
def scored(store, tmp_path_factory):
    """`cos-ray figures figures --verdict score` on the store: the folder it wrote."""
    to = tmp_path_factory.mktemp("drawn") / "score"
    code, out, err = cli("figures", "figures", "--to", str(to), "--verdict", "score", "--out", store)
    assert code == 0, out + err
    return to


def test_every_supported_figure_is_written_and_the_rest_named(scored):
    index = (scored / "index.md").read_text()
    for name in ("chain-of-steps", "fig3b", "fig3c", "fig5", "fig5-maps", "fig6", "compare"):
        for suffix in (".png", ".svg", ".csv", ".sql"):
            assert (scored / f"{name}{suffix}").stat().st_size > 100, (name, suffix)
        assert f"({name}.png)" in index
    assert "- ensemble: no ensemble unit" in index and "- frames-steps: one (frames, steps) setting only" in index
    assert "cos-ray figures figures --to" in index and "--verdict score" in index
    assert "task score >= 0.9" in index


def test_each_figure_sql_runs_again_with_cos_ray_sql(scored, store):
    sql = (scored / "fig3b.sql").read_text()
    first = "\n".join(line for line in sql.split(";\n")[0].splitlines() if not line.startswith("--"))
    code, out, err = cli("sql", first, "--out", store, "--format", "json")
    assert code == 0, err
    assert json.loads(out)


def test_fig3b_csv_recounts(scored, store):
    runs = raw(store, "select method, params, score from runs where status = 'ok' and score is not null")
    groups = defaultdict(list)
    for r in runs:
        groups[(r["method"], position(r))].append(r["score"])
    table = read_csv(scored / "fig3b.csv")
    assert {(r["method"], None if r["position"] is None else int(r["position"])) for r in table} == {
        ("baseline", None), ("noise_at_step", 1), ("noise_at_frame", 1)}
    for row in table:
        scores = np.array(groups[(row["method"], None if row["position"] is None else int(row["position"]))])
        assert row["runs"] == len(scores) == 2
        assert row["mean"] == pytest.approx(scores.mean(), abs=1e-5)
        k = int((scores >= 0.9).sum())
        assert (row["right"], row["judged"]) == (k, len(scores))
        assert (row["share_ci_low"], row["share_ci_high"]) == pytest.approx(wilson(k, len(scores)), abs=1e-5)
        assert 0 <= (row["ci_low"] or 0) <= row["mean"] <= (row["ci_high"] or 1) <= 1


def test_fig3c_and_fig5_csvs_recount(scored, store):
    runs = {r["run_id"]: r for r in raw(store, "select run_id, method, params from runs")}
    values = defaultdict(list)
    for row in raw(store, "select run_id, step, value from layers where kind = 'cka'"):
        run = runs[row["run_id"]]
        if run["method"].startswith("noise_at_"):  # the swaps' CKA rows are not the figure's
            values[(run["method"], position(run), row["step"])].append(row["value"])
    table = read_csv(scored / "fig3c.csv")
    assert len(table) == len(values) == 6  # 2 methods x 1 position x 3 steps
    for row in table:
        assert row["mean"] == pytest.approx(np.mean(values[(row["method"], int(row["position"]), int(row["step"]))]),
                                            abs=1e-5)
    energy = defaultdict(list)
    for row in raw(store, "select l.layer_index, l.value from layers l join runs r using (run_id) "
                          "where l.kind = 'energy' and r.method = 'baseline'"):
        energy[row["layer_index"]].append(row["value"])
    table = read_csv(scored / "fig5.csv")
    assert sorted(int(r["layer"]) for r in table) == [0, 20, 39]
    for row in table:
        assert row["maps"] == len(energy[int(row["layer"])])
        assert row["energy"] == pytest.approx(np.mean(energy[int(row["layer"])]), rel=1e-5)


def test_fig6_and_compare_csvs_recount(scored, store):
    runs = raw(store, "select task_id, seed, method, params, score from runs where status = 'ok'")
    swaps = defaultdict(list)
    for r in runs:
        if r["method"] == "swap":
            p = json.loads(r["params"])
            swaps[(p["mode"], p["layer"])].append(r["score"])
    table = read_csv(scored / "fig6.csv")
    assert {(r["mode"], int(r["position"])) for r in table} == set(swaps)
    for row in table:
        scores = np.array(swaps[(row["mode"], int(row["position"]))])
        assert row["runs"] == len(scores) == 2
        assert row["mean"] == pytest.approx(scores.mean(), abs=1e-5)
        assert row["kept_a_share"] == pytest.approx((scores >= 0.9).mean())
    settings = defaultdict(list)
    for r in runs:
        if r["score"] is not None:
            settings[(r["method"], r["params"] or "{}")].append(r["score"])
    table = read_csv(scored / "compare.csv")
    assert len(table) == len(settings)
    for row in table:
        scores = np.array(settings[(row["method"], row["params"])])
        assert row["runs"] == len(scores)
        assert row["mean"] == pytest.approx(scores.mean(), abs=1e-5)


def test_chain_of_steps_csv_recounts(scored, store):
    steps = defaultdict(list)
    for row in raw(store, "select r.method, s.step, s.score from steps s join runs r using (run_id) "
                          "where s.score is not null and r.status = 'ok'"):
        steps[(row["method"], row["step"])].append(row["score"])
    table = read_csv(scored / "chain-of-steps.csv")
    assert len(table) == len(steps) > 0
    for row in table:
        scores = np.array(steps[(row["method"], int(row["step"]))])
        assert row["runs"] == len(scores)
        assert row["mean"] == pytest.approx(scores.mean(), abs=1e-5)
        assert row["right"] == (scores >= 0.9).sum()


def test_the_solved_verdict_reads_routes_and_names_itself(store, tmp_path):
    from cos_ray.figures.ground_truth import solved_video
    from cos_ray.media import read_video

    code, out, err = cli("figures", "figures", "--to", str(tmp_path / "f"), "--only", "fig3b", "--out", store)
    assert code == 0, out + err
    assert "drawn path is the route" in (tmp_path / "f" / "index.md").read_text()
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == [
        "fig3b.csv", "fig3b.png", "fig3b.sql", "fig3b.svg", "index.md"]
    runs = raw(store, "select task_id, method, params, score, video from runs where method = 'noise_at_step'")
    solved = [solved_video(read_video(f"{store}/{r['video']}"), maze(int(r["task_id"][-5:])), r["score"]) for r in runs]
    row = next(r for r in read_csv(tmp_path / "f" / "fig3b.csv") if r["method"] == "noise_at_step")
    assert (row["right"], row["judged"]) == (sum(solved), len(solved))


@pytest.mark.parametrize("args, message", [
    (["nope"], "sweep 'nope': not in the store"),
    (["figures", "--only", "fig9"], "--only fig9: no such figure"),
    (["figures", "--verdict", "evalkit"], "--verdict evalkit: the store has no EvalKit scores"),
    (["figures", "--only", "ensemble"], "--only ensemble: cannot be drawn from figures: no ensemble unit"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(store, tmp_path, args, message):
    to = tmp_path / "out"
    code, out, err = cli("figures", *args, "--to", str(to), "--out", store)
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not to.exists() and not list(tmp_path.iterdir())


def test_a_file_as_to_is_refused_and_kept(store, tmp_path):
    target = tmp_path / "figures.txt"
    target.write_text("mine")
    code, out, err = cli("figures", "figures", "--to", str(target), "--out", store)
    assert code == 2 and "--to" in err and "is a file" in err and "Traceback" not in err
    assert target.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["figures.txt"]


def test_a_missing_store_is_one_line(tmp_path):
    code, out, err = cli("figures", "any", "--to", str(tmp_path / "f"), "--out", str(tmp_path / "nowhere"))
    assert code == 2 and "no results store there" in err and "Traceback" not in err, err
    assert not (tmp_path / "f").exists()
