"""Fig. 3b analogue: the final answer after every frame's latent is replaced by noise at step s, against latent frame
f replaced at every step - how much each kind of noise costs, with the unperturbed baseline as the reference line.

`correct` is the SQL's (task score >= 0.9); `solved` adds the model card's path check (the orange path covers exactly
the route's cells), read from the stored videos against the generator's routes (`figures_common.solved_video`).

  python -m cos_ray.training.card noise STORE OUT.png      (a store of jobs/paper/fig3b-noise-step-vs-frame-*.yaml)
"""

from __future__ import annotations

from pathlib import Path

from cos_ray.training.figures_common import generated_samples, pyplot, rows, save, solved_video

NOISE_SQL = """select method,
  coalesce(json_extract_string(params, '$.step'), json_extract_string(params, '$.frame'))::int as at,
  avg(score) as score, avg(case when score >= 0.9 then 1.0 else 0.0 end) as correct, count(*) as runs
from runs where method in ('baseline', 'noise_at_step', 'noise_at_frame') and score is not null
group by 1, 2 order by 1, 2"""
VIDEOS_SQL = """select method,
  coalesce(json_extract_string(params, '$.step'), json_extract_string(params, '$.frame'))::int as at, task_id, score,
  video from runs where method in ('baseline', 'noise_at_step', 'noise_at_frame') and score is not null"""


def solved_fractions(store_uri: str) -> dict:
    """{(method, at): fraction of its runs whose stored video solves the task (score and exact route)}."""
    from cos_ray.media import read_video

    samples = generated_samples(store_uri)
    verdicts: dict = {}
    for row in rows(store_uri, VIDEOS_SQL):
        sample = samples[row["task_id"]]
        video = read_video(Path(store_uri) / row["video"])  # (frames, H, W, 3) uint8
        verdicts.setdefault((row["method"], row["at"]), []).append(solved_video(video, sample, row["score"]))
    return {key: sum(v) / len(v) for key, v in verdicts.items()}


def noise_table(store_uri: str) -> dict:
    """{baseline: {score, correct, solved, runs}, noise_at_step: [{at, score, correct, solved, runs}],
    noise_at_frame: [...]}."""
    answer = {"baseline": None, "noise_at_step": [], "noise_at_frame": []}
    solved = solved_fractions(store_uri)
    for row in rows(store_uri, NOISE_SQL):
        method = row.pop("method")
        row["solved"] = round(solved[(method, row["at"])], 4)
        if method == "baseline":
            row.pop("at")
            answer["baseline"] = row
        else:
            answer[method].append(row)
    return answer


def plot_noise(store_uri: str, out: Path) -> dict:
    plt = pyplot()
    answer = noise_table(store_uri)
    base = answer["baseline"]
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.2), sharey=True, gridspec_kw={"width_ratios": [3, 1.6]})
    for ax, method, label in ((axes[0], "noise_at_step", "noised denoising step s (every frame)"),
                              (axes[1], "noise_at_frame", "noised latent frame f (every step)")):
        cells = answer[method]
        at = [r["at"] for r in cells]
        ax.plot(at, [r["correct"] for r in cells], marker="o", color="C3", label="fraction correct (score >= 0.9)")
        ax.plot(at, [r["solved"] for r in cells], marker="^", color="C2", label="fraction solved (+ exact route)")
        ax.plot(at, [r["score"] for r in cells], marker=".", ls="--", color="C0", label="mean final score")
        if base:
            ax.axhline(base["correct"], color="C3", lw=0.8, alpha=0.6,
                       label=f"baseline correct ({base['correct']:.2f})")
            ax.axhline(base["solved"], color="C2", lw=0.8, ls="-.", label=f"baseline solved ({base['solved']:.2f})")
            ax.axhline(base["score"], color="C0", lw=0.8, ls=":", label=f"baseline score ({base['score']:.2f})")
        ax.set(xlabel=label, xticks=at, ylim=(-0.02, 1.02))
        if cells:
            ax.set_title(f"{method} ({cells[0]['runs']} runs per point)", fontsize=9)
    axes[0].set_ylabel("final video")
    axes[0].legend(loc="lower left", fontsize=7)
    save(fig, out)
    return answer
