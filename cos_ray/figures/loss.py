"""The model card's figures, each drawn by one command from files a run or a sweep wrote.

  python -m cos_ray.training.card loss RUN_DIR OUT.png      the VAE and flow-matching losses per step
  python -m cos_ray.training.card steps STORE OUT.png       per-step x̂0 accuracy, lock-in steps (a fig1 sweep's store)
  python -m cos_ray.training.card ensemble STORE OUT.png    ensemble vs baseline and best-of-3, paired CIs (+ tables)
  python -m cos_ray.training.card vae MODEL OUT.png         validation mazes through MODEL's VAE (its ceiling)
  python -m cos_ray.training.card noise STORE OUT.png       final score by noised step vs noised frame (fig3b's store)
  python -m cos_ray.training.card cka STORE OUT.png         CKA dissimilarity after noise, per step (fig3c's store)
  python -m cos_ray.training.card energy STORE OUT.png      energy and route/off-route ratio by layer (fig5's store)
  python -m cos_ray.training.card energy-maps STORE OUT.png one maze's energy maps, layers x steps (fig5's store)
  python -m cos_ray.training.card swap STORE OUT.png        whose answer A draws after a swap, by layer (fig6's store)

The SQL every store figure runs is printed with its answer (and lives in STEP_ACCURACY_SQL / LOCK_IN_SQL / FLIPS_SQL,
or in the `*_SQL` constants of the probe figures' modules, `figures_*.py`, one figure each), so that the card can
quote it and a reader can run it with `cos-ray sql`. matplotlib: `pip install cos-ray[train]`. KINDS maps each KIND
to its command.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cos_ray.training.figures_common import pyplot

STEP_ACCURACY_SQL = """select s.step, avg(case when s.score >= 0.9 then 1.0 else 0.0 end) as accuracy,
  avg(s.score) as score, count(*) as runs
from steps s join runs r using (run_id)
where r.method = 'baseline' and s.score is not null group by 1 order by 1"""
LOCK_IN_SQL = """select lock_in_step, count(*) as runs from runs where method = 'baseline' group by 1 order by 1"""
FLIPS_SQL = """select count(*) as runs, avg(case when score >= 0.9 then 1.0 else 0.0 end) as final_correct,
  avg(flips) as mean_flips, avg(case when flips > 0 then 1.0 else 0.0 end) as runs_that_flip,
  avg(case when flips > 0 and score >= 0.9 then 1.0 else 0.0 end) as flipped_and_correct
from runs where method = 'baseline'"""


def _read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing mean over `window` values."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_loss(run_dir: Path, out: Path) -> Path:
    plt = pyplot()
    vae, flow = _read_log(run_dir / "vae_log.jsonl"), _read_log(run_dir / "flow_log.jsonl")
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    if vae:
        a.plot([r["step"] for r in vae], [r["loss"] for r in vae], color="0.75", lw=0.8)
        a.plot([r["step"] for r in vae], smooth([r["loss"] for r in vae], 20), color="C0")
    a.set(title="stage 1: VAE reconstruction", xlabel="step (2 videos + 24 frames)", ylabel="weighted L1 + L2", yscale="log")
    if flow:
        steps = [r["step"] for r in flow]
        b.plot(steps, [r["loss"] for r in flow], color="0.75", lw=0.8)
        b.plot(steps, smooth([r["loss"] for r in flow], 20), color="C1")
        top = b.secondary_xaxis("top", functions=(lambda s: s * 32 / 1000, lambda k: k * 1000 / 32))
        top.set_xlabel("samples seen (thousands)")
    b.set(title="stage 2: flow matching", xlabel="step (batch 32)", ylabel="MSE(v, eps - x0)", yscale="log")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return out


def plot_steps(store_uri: str, out: Path) -> dict:
    """Per-step accuracy of the decoded x̂0 (above the score threshold; solved, `steps_solved`) and the lock-in step
    distribution of a store's baseline runs."""
    from cos_ray.store.location import Store
    from cos_ray.store.query import run_sql
    from cos_ray.training.steps_solved import per_step_solved

    plt = pyplot()
    store = Store(store_uri)
    acc = run_sql(store, STEP_ACCURACY_SQL, require_results=True).to_pylist()
    lock = run_sql(store, LOCK_IN_SQL).to_pylist()
    flips = run_sql(store, FLIPS_SQL).to_pylist()
    solved = per_step_solved(store_uri)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    a.plot([r["step"] for r in solved["steps"]], [r["solved"] for r in solved["steps"]], marker="o",
           label="x̂0 solved (score >= 0.9 and the route)")
    a.plot([r["step"] for r in acc], [r["accuracy"] for r in acc], marker=".", label="x̂0 score >= 0.9")
    a.plot([r["step"] for r in acc], [r["score"] for r in acc], marker=".", ls="--", label="mean task score")
    a.set(title="Chain-of-Steps: decoded x̂0 per step", xlabel="denoising step", ylim=(0, 1.02))
    a.legend(loc="lower right", fontsize=8)
    b.bar(list(solved["lock_in"]), list(solved["lock_in"].values()), color="C2")
    b.set(title="lock-in step (x̂0 solved from then on)", xlabel="step", ylabel="runs")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    return {"step_accuracy": acc, "lock_in_by_score": lock, "flips_by_score": flips, "solved": solved}


def plot_vae(model: str, out: Path, seed: int = 2, n: int = 4) -> Path:
    """Rows of validation mazes: the ground truth's last frame, its round trip through MODEL's VAE, the round trip's
    middle frame (nearest-neighbour x3)."""
    import numpy as np
    from PIL import Image

    from cos_ray.model.loader import load_pipeline
    from cos_ray.tasks.families import get_family
    from cos_ray.tasks.generation import family_params
    from cos_ray.training.distribution import model_distribution
    from cos_ray.training.evaluate import vae_round_trip

    family, params = model_distribution(model)
    pipe = load_pipeline(model, device="cpu").pipe
    rows = []
    for i in range(n):
        frames = get_family(family).generate(np.random.default_rng([seed, i]), family_params(family, **params)).frames
        back = vae_round_trip(pipe, frames)  # (frames, H, W, 3)
        rows.append(np.concatenate([frames[-1], back[-1], back[len(back) // 2]], axis=1))
    grid = np.concatenate(rows, axis=0)  # (n H, 3 W, 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * 3, grid.shape[0] * 3), Image.NEAREST).save(out)
    return out


def _steps(source: str, out: Path):
    from cos_ray.training.steps_solved import STEPS_SQL

    for name, sql in (("step_accuracy", STEP_ACCURACY_SQL), ("lock_in", LOCK_IN_SQL), ("flips", FLIPS_SQL),
                      ("solved_per_step (filmstrips read by steps_solved.py)", STEPS_SQL)):
        print(f"-- {name}\n{sql};")
    print(json.dumps(plot_steps(source, out), indent=1, default=str))


def _ensemble(source: str, out: Path):
    from cos_ray.training.ensemble_table import ENSEMBLE_SQL, markdown, plot_ensemble

    print(f"-- runs (solved: ensemble_table.py reads each video's route)\n{ENSEMBLE_SQL};")
    answer = plot_ensemble(source, out)
    print(json.dumps(answer, indent=1, default=str))
    for metric, table in answer["tables"].items():
        print(markdown(table, metric))


def _store_figure(module: str, plot: str, queries: tuple[str, ...]):
    """A KIND drawn by `module.plot(STORE, OUT)`: prints `module`'s `queries` (SQL constants) and the answer."""

    def draw(source: str, out: Path):
        from importlib import import_module

        from cos_ray.training.figures_common import print_queries

        mod = import_module(f"cos_ray.training.{module}")
        answer = getattr(mod, plot)(source, out)
        print_queries({name.lower(): getattr(mod, name) for name in queries}, answer)

    return draw


KINDS = {
    "loss": lambda source, out: print(plot_loss(Path(source), out)),
    "steps": _steps,
    "ensemble": _ensemble,
    "vae": lambda source, out: print(plot_vae(source, out)),
    "noise": _store_figure("figures_noise", "plot_noise", ("NOISE_SQL",)),
    "cka": _store_figure("figures_cka", "plot_cka", ("CKA_CURVES_SQL", "CKA_FINAL_SQL")),
    "energy": _store_figure("figures_energy", "plot_energy", ("ENERGY_SQL", "ENERGY_BY_STEP_SQL", "MAPS_SQL")),
    "energy-maps": _store_figure("figures_energy", "plot_energy_maps", ("MAPS_SQL",)),
    "swap": _store_figure("figures_swap", "plot_swap", ("SWAP_SQL", "RUNS_SQL")),
}


def main(argv=None) -> int:
    from cos_ray.errors import run_reporting_errors

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 3 or argv[0] not in KINDS:
        print(__doc__, file=sys.stderr)
        return 2
    kind, source, out = argv
    return run_reporting_errors(lambda: KINDS[kind](source, Path(out)))


if __name__ == "__main__":
    raise SystemExit(main())
