"""Fig. 5 analogue: the per-token activation energy of every block - by layer, and whether it sits on the answer.

The store's own foreground/background ratio (`layers.fg_bg_ratio`) needs tokens lying mostly on the task's
foreground mask; at 64x64 (4x4 tokens, thin paths) none does, so it is null. Here one token is one maze cell, and the
route's cells are known from the generator: `route_ratio` is the mean energy of the tokens on the ground-truth
route's cells over that of the other cells, in the latent frames that carry the drawn path (1 and on; frame 0 is the
input frame). 1 = no preference for the answer's cells.

  python -m cos_ray.training.card energy STORE OUT.png        energy, route ratio by layer; energy by layer x step
  python -m cos_ray.training.card energy-maps STORE OUT.png   one maze's maps at a few layers x steps
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cos_ray.training.figures_common import generated_samples, pyplot, rows, save

ENERGY_SQL = """select l.layer_index, avg(l.value) as energy, avg(l.fg_bg_ratio) as fg_bg, count(*) as maps
from layers l join runs r using (run_id) where r.method = 'baseline' and l.kind = 'energy' group by 1 order by 1"""
ENERGY_BY_STEP_SQL = """select l.layer_index, l.step, avg(l.value) as energy
from layers l join runs r using (run_id) where r.method = 'baseline' and l.kind = 'energy'
group by 1, 2 order by 1, 2"""
MAPS_SQL = """select r.task_id, r.seed, l.layer_index, l.step, l.map, l.map_shape
from layers l join runs r using (run_id) where r.method = 'baseline' and l.kind = 'energy'"""
MAP_LAYERS, MAP_STEPS = (0, 10, 20, 30, 39), (0, 4, 9)


def route_tokens(meta: dict, shape) -> np.ndarray:
    """`# (h, w)` bool: tokens of a `(frames, h, w)` map whose centre lies in a cell of the ground-truth route."""
    _, h, w = shape
    grid, size = meta["grid"], meta["params"]["size"]
    route = {tuple(rc) for rc in meta["route"]}
    mask = np.zeros((h, w), dtype=bool)
    for i in range(h):
        for j in range(w):
            r = int(((i + 0.5) * size / h - grid["origin"]) // grid["cell"])
            c = int(((j + 0.5) * size / w - grid["origin"]) // grid["cell"])
            mask[i, j] = (r, c) in route
    return mask


def route_ratio(energy_map: np.ndarray, on_route: np.ndarray) -> float | None:
    """Mean energy on the route's tokens / off them, over latent frames 1 and on. `energy_map` `# (frames, h, w)`."""
    later = energy_map[1:] if len(energy_map) > 1 else energy_map  # (frames - 1, h, w)
    if on_route.all() or not on_route.any():
        return None
    return float(later[:, on_route].mean() / later[:, ~on_route].mean())


def energy_tables(store_uri: str) -> dict:
    samples = generated_samples(store_uri)
    by_layer = {r["layer_index"]: r for r in rows(store_uri, ENERGY_SQL)}
    ratios: dict = {}  # {layer: {task: [ratio per map]}}
    for row in rows(store_uri, MAPS_SQL):
        m = np.reshape(np.asarray(row["map"], dtype=np.float64), row["map_shape"])  # (frames, h', w')
        ratio = route_ratio(m, route_tokens(samples[row["task_id"]].meta, row["map_shape"]))
        if ratio is not None:
            ratios.setdefault(row["layer_index"], {}).setdefault(row["task_id"], []).append(ratio)
    for layer, row in by_layer.items():
        per_task = [np.mean(v) for v in ratios.get(layer, {}).values()]  # one value per maze (its steps averaged)
        row["route_ratio"] = float(np.mean([x for v in ratios[layer].values() for x in v])) if per_task else None
        row["route_ratio_task_min"] = float(min(per_task)) if per_task else None
        row["route_ratio_task_max"] = float(max(per_task)) if per_task else None
    steps: dict = {}
    for row in rows(store_uri, ENERGY_BY_STEP_SQL):
        steps.setdefault(row["layer_index"], {})[row["step"]] = round(row["energy"], 4)
    return {"by_layer": list(by_layer.values()), "by_layer_and_step": steps}


def plot_energy(store_uri: str, out: Path) -> dict:
    plt = pyplot()
    answer = energy_tables(store_uri)
    layers = [r["layer_index"] for r in answer["by_layer"]]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    axes[0].plot(layers, [r["energy"] for r in answer["by_layer"]], marker=".")
    axes[0].axvspan(19.5, 29.5, color="0.9", label="paper's middle layers 20-29")
    axes[0].set(title="mean token energy (L2 over channels)", xlabel="layer (block)")
    axes[0].legend(fontsize=7)
    axes[1].plot(layers, [r["route_ratio"] for r in answer["by_layer"]], marker=".", color="C2", label="mean")
    axes[1].fill_between(layers, [r["route_ratio_task_min"] for r in answer["by_layer"]],
                         [r["route_ratio_task_max"] for r in answer["by_layer"]], color="C2", alpha=0.2,
                         label="range over mazes")
    axes[1].legend(fontsize=7)
    axes[1].axhline(1.0, color="0.5", lw=0.8)
    axes[1].axvspan(19.5, 29.5, color="0.9")
    axes[1].set(title="energy on route cells / off route (frames 1+)", xlabel="layer (block)")
    grid = answer["by_layer_and_step"]
    steps = sorted({s for per in grid.values() for s in per})
    heat = np.array([[grid[layer].get(s, np.nan) for s in steps] for layer in sorted(grid)])  # (layers, steps)
    image = axes[2].imshow(heat.T, aspect="auto", origin="lower", cmap="magma")
    axes[2].set(title="mean energy by layer and step", xlabel="layer (block)", ylabel="denoising step")
    fig.colorbar(image, ax=axes[2], fraction=0.046)
    save(fig, out)
    return answer


def plot_energy_maps(store_uri: str, out: Path, layers=MAP_LAYERS, steps=MAP_STEPS) -> dict:
    """The first task's maps (lowest seed): rows = layers, columns = steps, each map its latent frames side by side."""
    plt = pyplot()
    samples = generated_samples(store_uri)
    found = rows(store_uri, MAPS_SQL)
    task = min(r["task_id"] for r in found)
    seed = min(r["seed"] for r in found if r["task_id"] == task)
    maps = {(r["layer_index"], r["step"]): np.reshape(r["map"], r["map_shape"]) for r in found
            if r["task_id"] == task and r["seed"] == seed}
    layers = [layer for layer in layers if any(k[0] == layer for k in maps)]
    steps = [s for s in steps if any(k[1] == s for k in maps)]
    sample = samples[task]
    fig, axes = plt.subplots(len(layers), len(steps) + 1, figsize=(2.4 * len(steps) + 1.2, 1.05 * len(layers) + 0.5),
                             squeeze=False, gridspec_kw={"width_ratios": [1] + [3] * len(steps)})
    for i, layer in enumerate(layers):
        if i == 0:
            axes[i][0].imshow(sample.frames[-1])  # (H, W, 3)
        else:
            axes[i][0].axis("off")
        axes[i][1].set_ylabel(f"layer {layer}", fontsize=8)
        for j, step in enumerate(steps):
            m = maps[(layer, step)]  # (frames, h', w')
            gap = np.full((m.shape[1], 1), np.nan)
            strip = np.concatenate([x for f in m for x in (f, gap)][:-1], axis=1)  # (h', frames * (w' + 1) - 1)
            axes[i][j + 1].imshow(strip, cmap="magma")
            if i == 0:
                axes[i][j + 1].set_title(f"step {step} (frames 0-{len(m) - 1})", fontsize=8)
    axes[0][0].set_title("ground truth", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    save(fig, out)
    return {"task": task, "seed": seed, "layers": layers, "steps": steps,
            "route_cells": sample.meta["route"]}
