"""Fig. 6 analogue: whose answer run A draws after block k took run B's values at step 0 - A's own (the maze is still
solved), B's (the orange path covers B's route's cells, read on A's board), or neither - by swapped layer and mode.

The verdicts are read from the stored videos (the store's mp4s, as a user would see them) against the ground-truth
routes of A's and B's tasks, drawn again from the generator. Beside them, the plain SQL: the swapped runs' mean score
next to A's and B's baselines.

  python -m cos_ray.training.card swap STORE OUT.png      (a store of jobs/paper/fig6-swap-by-layer-*.yaml)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cos_ray.training.figures_common import generated_samples, pyplot, rows, save

SWAP_SQL = """select json_extract_string(s.params, '$.layer')::int as layer, json_extract_string(s.params, '$.mode') as mode,
  avg(s.score) as swapped, avg(a.score) as a_alone, avg(b.score) as b_alone, count(*) as runs
from runs s
  join runs a on a.method = 'baseline' and a.task_id = s.task_id and a.seed = s.seed
  left join runs b on b.method = 'baseline' and b.task_id = json_extract_string(s.params, '$.source_task')
    and b.seed = s.seed
where s.method = 'swap' group by 1, 2 order by 2, 1"""
RUNS_SQL = """select run_id, method, task_id, seed, params, score, video from runs
where method in ('baseline', 'swap') and status = 'ok' order by method, task_id, seed, run_id"""
ANSWERS = ("a", "b", "neither")


def classify(video: np.ndarray, a, b) -> str:
    """'a' when `video` `# (frames, H, W, 3)` uint8 solves A's maze (score >= threshold and A's route drawn), 'b' when
    its last frame's orange covers exactly B's route cells (on A's board), else 'neither'. `a`, `b`: the generator's
    samples (frames, meta). Cells under either run's start/goal markers are left out of the B check: A's markers
    cover the path there."""
    from cos_ray.training.solved import drawn_cells, judge

    if judge(video, a.frames[0], a.frames[-1], a.meta)["solved"]:
        return "a"
    ends = {tuple(a.meta["start"]), tuple(a.meta["goal"]), tuple(b.meta["start"]), tuple(b.meta["goal"])}
    route_b = {tuple(rc) for rc in b.meta["route"]}
    if a.meta["grid"] == b.meta["grid"] and drawn_cells(video[-1], a.meta["grid"]) - ends == route_b - ends:
        return "b"
    return "neither"


def _video(store_uri: str, relative: str) -> np.ndarray:
    from cos_ray.media import read_video

    return read_video(Path(store_uri) / relative)  # (frames, H, W, 3) uint8


def swap_tables(store_uri: str) -> dict:
    """{by_layer: [{layer, mode, runs, a, b, neither, a_baseline_solved}], sql: SWAP_SQL's rows, baselines: {...},
    stream_identical: whether every stream swap of one task gave one video whatever the layer}."""
    samples = generated_samples(store_uri)
    runs = rows(store_uri, RUNS_SQL)
    baseline = {(r["task_id"], r["seed"]): classify(_video(store_uri, r["video"]), samples[r["task_id"]],
                                                    samples[r["task_id"]]) for r in runs if r["method"] == "baseline"}
    cells: dict = {}
    stream_videos: dict = {}
    for r in (r for r in runs if r["method"] == "swap"):
        params = json.loads(r["params"])
        video = _video(store_uri, r["video"])
        answer = classify(video, samples[r["task_id"]], samples[params["source_task"]])
        cell = cells.setdefault((params["mode"], params["layer"]),
                                {"mode": params["mode"], "layer": params["layer"], "runs": 0, **dict.fromkeys(ANSWERS, 0),
                                 "a_baseline_solved": 0})
        cell["runs"] += 1
        cell[answer] += 1
        cell["a_baseline_solved"] += baseline.get((r["task_id"], r["seed"])) == "a"
        if params["mode"] == "stream":
            stream_videos.setdefault((r["task_id"], r["seed"]), []).append(video)
    by_layer = [cells[k] for k in sorted(cells)]
    for cell in by_layer:
        for name in ANSWERS:
            cell[f"{name}_fraction"] = round(cell[name] / cell["runs"], 4)
    identical = [all(np.array_equal(v, group[0]) for v in group[1:]) for group in stream_videos.values()]
    return {"by_layer": by_layer, "sql": rows(store_uri, SWAP_SQL),
            "baselines": {"runs": len(baseline), "solved": sum(v == "a" for v in baseline.values())},
            "stream_identical_across_layers": (sum(identical), len(identical)) if identical else None}


def plot_swap(store_uri: str, out: Path) -> dict:
    plt = pyplot()
    answer = swap_tables(store_uri)
    update = [c for c in answer["by_layer"] if c["mode"] == "update"]
    stream = [c for c in answer["by_layer"] if c["mode"] == "stream"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.4), gridspec_kw={"width_ratios": [2.2, 1.3]})
    colours = {"a": "C0", "b": "C1", "neither": "0.7"}
    labels = {"a": "A's answer (still solved)", "b": "B's route", "neither": "neither"}
    for cells, offset, width, hatch, tag in ((update, 0.0, 0.8, None, "update"), (stream, 0.0, 0.8, "//", "stream")):
        if not cells:
            continue
        x = np.array([c["layer"] for c in cells]) + (41 if tag == "stream" else 0)  # stream bars right of the axis
        bottom = np.zeros(len(cells))
        for name in ANSWERS:
            share = np.array([c[f"{name}_fraction"] for c in cells])
            a.bar(x + offset, share, width, bottom=bottom, color=colours[name], hatch=hatch,
                  label=labels[name] if tag == "update" else None, edgecolor="white" if hatch else None)
            bottom += share
    ticks = list(range(0, 40, 5)) + [39] + [41 + c["layer"] for c in stream]
    a.set_xticks(ticks, [str(t) for t in range(0, 40, 5)] + ["39"] + [f"s{c['layer']}" for c in stream], fontsize=7)
    a.axvspan(19.5, 29.5, color="0.92", zorder=0)
    n = update[0]["runs"] if update else 0
    a.set(title=f"answer after swapping block k at step 0 (update; s = stream), {n} runs per bar",
          xlabel="swapped layer k", ylabel="fraction of swapped runs", ylim=(0, 1))
    a.title.set_fontsize(9)
    a.legend(fontsize=7, loc="lower left")
    sql_update = [r for r in answer["sql"] if r["mode"] == "update"]
    b.plot([r["layer"] for r in sql_update], [r["swapped"] for r in sql_update], marker=".", label="A swapped (update)")
    if sql_update:
        b.axhline(sql_update[0]["a_alone"], color="C0", ls=":", label=f"A alone ({sql_update[0]['a_alone']:.3f})")
        b.axhline(sql_update[0]["b_alone"], color="C1", ls=":", label=f"B alone ({sql_update[0]['b_alone']:.3f})")
    sql_stream = [r for r in answer["sql"] if r["mode"] == "stream"]
    b.plot([r["layer"] for r in sql_stream], [r["swapped"] for r in sql_stream], "s", color="C3", label="A swapped (stream)")
    b.set(title="mean task score (SQL)", xlabel="swapped layer k")
    b.title.set_fontsize(9)
    b.legend(fontsize=7)
    save(fig, out)
    return answer
