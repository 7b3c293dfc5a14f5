"""Fig. 6 analogue: whose answer run A draws after block k took run B's values at step 0 - A's own (the maze is still
solved), B's (the orange path covers B's route's cells, read on A's board), or neither - by swapped layer and mode.

The verdicts are read from the stored videos (the store's mp4s: the drawn route) and the runs' stored scores, against
the ground-truth routes of A's and B's tasks, drawn again from the generator. Beside them, the plain SQL: the swapped
runs' mean score next to A's and B's baselines.

  python -m cos_ray.training.card swap STORE OUT.png      (a store of jobs/paper/fig6-swap-by-layer-*.yaml)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cos_ray.training.figures_common import generated_samples, pyplot, rows, save, solved_video

SWAP_SQL = """select json_extract_string(s.params, '$.layer')::int as layer,
  json_extract_string(s.params, '$.mode') as mode, json_extract_string(s.params, '$.step') as steps,
  avg(s.score) as swapped, avg(a.score) as a_alone, avg(b.score) as b_alone, count(*) as runs
from runs s
  join runs a on a.method = 'baseline' and a.task_id = s.task_id and a.seed = s.seed
  left join runs b on b.method = 'baseline' and b.task_id = json_extract_string(s.params, '$.source_task')
    and b.seed = s.seed
where s.method = 'swap' group by 1, 2, 3 order by 2, 3, 1"""
RUNS_SQL = """select run_id, method, task_id, seed, params, score, video from runs
where method in ('baseline', 'swap') and status = 'ok' order by method, task_id, seed, run_id"""
ANSWERS = ("a", "b", "neither")


def classify(video: np.ndarray, a, b, score: float | None = None) -> str:
    """'a' when `video` `# (frames, H, W, 3)` uint8 solves A's maze (score >= threshold and A's route drawn), 'b' when
    its last frame's orange covers exactly B's route cells (on A's board), else 'neither'. `a`, `b`: the generator's
    samples (frames, meta). Cells under either run's start/goal markers are left out of the B check: A's markers
    cover the path there. `score`: the run's stored score, when `video` is the store's mp4 (`solved_video`)."""
    from cos_ray.training.solved import drawn_cells

    if solved_video(video, a, score):
        return "a"
    ends = {tuple(a.meta["start"]), tuple(a.meta["goal"]), tuple(b.meta["start"]), tuple(b.meta["goal"])}
    route_b = {tuple(rc) for rc in b.meta["route"]}
    if a.meta["grid"] == b.meta["grid"] and drawn_cells(video[-1], a.meta["grid"]) - ends == route_b - ends:
        return "b"
    return "neither"


def _video(store_uri: str, relative: str) -> np.ndarray:
    from cos_ray.media import read_video

    return read_video(Path(store_uri) / relative)  # (frames, H, W, 3) uint8


def steps_label(step) -> str:
    """A swap's `params.step`: one step (`0`) or the steps of a range (`[0, 1, 2]` -> `0-2`)."""
    return str(step) if isinstance(step, int) else f"{min(step)}-{max(step)}"


def swap_tables(store_uri: str) -> dict:
    """{by_layer: [{mode, steps, layer, runs, a, b, neither, a_baseline_solved, *_fraction, pixel_change: mean
    |swapped video - A's baseline video| in 0-255 units, both read from the mp4s}], sql: SWAP_SQL's rows,
    baselines: {runs, solved}, stream_identical_across_layers: (tasks whose step-0 stream swaps gave one video
    whatever the layer, tasks with stream swaps)}."""
    samples = generated_samples(store_uri)
    runs = rows(store_uri, RUNS_SQL)
    alone = {(r["task_id"], r["seed"]): _video(store_uri, r["video"]) for r in runs if r["method"] == "baseline"}
    baseline = {(r["task_id"], r["seed"]): solved_video(alone[(r["task_id"], r["seed"])], samples[r["task_id"]],
                                                        r["score"]) for r in runs if r["method"] == "baseline"}
    cells: dict = {}
    stream_videos: dict = {}
    for r in (r for r in runs if r["method"] == "swap"):
        params = json.loads(r["params"])
        video = _video(store_uri, r["video"])  # (frames, H, W, 3)
        answer = classify(video, samples[r["task_id"]], samples[params["source_task"]], r["score"])
        key = (params["mode"], steps_label(params["step"]), params["layer"])
        cell = cells.setdefault(key, {"mode": key[0], "steps": key[1], "layer": key[2], "runs": 0,
                                      **dict.fromkeys(ANSWERS, 0), "a_baseline_solved": 0, "pixel_change": 0.0})
        cell["runs"] += 1
        cell[answer] += 1
        cell["a_baseline_solved"] += bool(baseline.get((r["task_id"], r["seed"])))
        own = alone.get((r["task_id"], r["seed"]))  # (frames, H, W, 3): A's baseline video
        cell["pixel_change"] += float(np.abs(video.astype(np.float64) - own).mean()) if own is not None else np.nan
        if key[:2] == ("stream", "0"):
            stream_videos.setdefault((r["task_id"], r["seed"]), []).append(video)
    by_layer = [cells[k] for k in sorted(cells, key=lambda k: (k[0] != "update" or k[1] != "0", k))]
    for cell in by_layer:
        for name in ANSWERS:
            cell[f"{name}_fraction"] = round(cell[name] / cell["runs"], 4)
        cell["pixel_change"] = round(cell["pixel_change"] / cell["runs"], 4)
    identical = [all(np.array_equal(v, group[0]) for v in group[1:]) for group in stream_videos.values()]
    return {"by_layer": by_layer, "sql": rows(store_uri, SWAP_SQL),
            "baselines": {"runs": len(baseline), "solved": sum(baseline.values())},
            "stream_identical_across_layers": (sum(identical), len(identical)) if identical else None}


def _stacked(ax, x, cells, horizontal=False, alpha=1.0):
    bottom = np.zeros(len(cells))
    for name, colour, label in (("a", "C0", "A's answer (still solved)"), ("b", "C1", "B's route"),
                                ("neither", "0.7", "neither")):
        share = np.array([c[f"{name}_fraction"] for c in cells])
        if horizontal:
            ax.barh(x, share, 0.7, left=bottom, color=colour, label=label, alpha=alpha)
        else:
            ax.bar(x, share, 0.8, bottom=bottom, color=colour, label=label, alpha=alpha)
        bottom += share


def plot_swap(store_uri: str, out: Path) -> dict:
    """Left: update swaps at step 0, every layer. Middle: the contrasts (stream at step 0 and at every step; update
    over step windows). Right: the SQL's mean scores."""
    plt = pyplot()
    answer = swap_tables(store_uri)
    main = [c for c in answer["by_layer"] if (c["mode"], c["steps"]) == ("update", "0")]
    other = [c for c in answer["by_layer"] if (c["mode"], c["steps"]) != ("update", "0")]
    fig, (a, m, b) = plt.subplots(1, 3, figsize=(13, 3.8), gridspec_kw={"width_ratios": [2.4, 1.2, 1.5]})
    _stacked(a, np.array([c["layer"] for c in main]), main, alpha=0.45)
    a.axvspan(19.5, 29.5, color="0.92", zorder=0)
    n = main[0]["runs"] if main else 0
    a.set_title(f"update swap of block k at step 0: whose answer A draws ({n} runs per bar)", fontsize=9)
    a.set(xlabel="swapped layer k", ylabel="fraction of swapped runs", ylim=(0, 1))
    a.legend(fontsize=7, loc="lower left")
    change = a.twinx()
    change.plot([c["layer"] for c in main], [c["pixel_change"] for c in main], color="k", marker=".", lw=0.8)
    change.set_ylabel("mean |video - A alone| (0-255), line", fontsize=7)
    change.set_ylim(bottom=0)
    if other:
        _stacked(m, np.arange(len(other)), other, horizontal=True)
        m.set_yticks(np.arange(len(other)), [f"{c['mode']}, steps {c['steps']}, L{c['layer']}" for c in other],
                     fontsize=7)
        m.invert_yaxis()
    m.set_title("contrasts (same runs per bar)", fontsize=9)
    m.set(xlim=(0, 1), xlabel="fraction of swapped runs")
    groups: dict = {}
    for r in answer["sql"]:
        groups.setdefault((r["mode"], steps_label(json.loads(r["steps"]))), []).append(r)
    for (mode, steps), mine in groups.items():
        style = {"marker": ".", "ls": "-"} if (mode, steps) == ("update", "0") else {"marker": "s" if mode == "stream"
                                                                                       else "^", "ls": ":"}
        b.plot([r["layer"] for r in mine], [r["swapped"] for r in mine], label=f"A swapped ({mode}, steps {steps})",
               **style)
    if answer["sql"]:
        first = answer["sql"][0]
        b.axhline(first["a_alone"], color="C0", lw=0.8, ls="--", label=f"A alone ({first['a_alone']:.3f})")
        if first["b_alone"] is not None:
            b.axhline(first["b_alone"], color="C1", lw=0.8, ls="--", label=f"B alone ({first['b_alone']:.3f})")
    b.set_title("mean task score (SQL)", fontsize=9)
    b.set(xlabel="swapped layer k")
    b.legend(fontsize=6)
    save(fig, out)
    return answer
