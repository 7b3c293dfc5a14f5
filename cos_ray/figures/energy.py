"""Fig. 5: the per-token activation energy of every block - by layer and step, and whether it sits on the answer.

`energy_heatmap`, `energy_per_frame`, `energy_steps` are the dashboard's Probes view's tables. `figure` draws the
baseline runs' energy by layer (with, where the verdict knows the tasks' routes, `route_ratio`: the mean energy of
the tokens on the ground-truth route's cells over that of the other cells, in the latent frames that carry the drawn
path - 1 and on; frame 0 is the input frame; 1 = no preference for the answer's cells). The store's own
`layers.fg_bg_ratio` needs tokens lying mostly on a foreground mask; at 64x64 (4x4 tokens, thin paths) none does.
`maps_figure` shows one task's maps at a few layers x steps. Store: jobs/paper/fig5-energy*.yaml.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

from cos_ray.figures.figure import Drawn, Unsupported
from cos_ray.figures.presence import has_layers
from cos_ray.figures.run_filter import RunFilter

MAP_LAYERS, MAP_STEPS = (0, 10, 20, 30, 39), (0, 4, 9)


def _runs(where: RunFilter, run_id: str | None) -> tuple[str, list]:
    """The runs a figure averages over: one run when named, else the filter's (SQL on `runs r`, bound values)."""
    return ("r.run_id = ?", [run_id]) if run_id is not None else where.where("r")


def energy_heatmap(connection, where: RunFilter, run_id: str | None = None) -> pa.Table:
    """Mean activation energy per (layer index, step), over the filtered runs or over one run."""
    if not has_layers(connection):
        return pa.table({})
    clause, values = _runs(where, run_id)
    return connection.query(f"""
        SELECT l.layer_index AS layer, l.step, count(*) AS rows, avg(l.value) AS energy
        FROM layers l JOIN runs r USING (run_id)
        WHERE {clause} AND l.kind = 'energy' AND l.layer_index IS NOT NULL
        GROUP BY ALL ORDER BY 1, 2""", values)


def energy_per_frame(connection, where: RunFilter, step: int, run_id: str | None = None) -> pa.Table:
    """Mean activation energy per (layer index, latent frame) at one step."""
    if not has_layers(connection):
        return pa.table({})
    clause, values = _runs(where, run_id)
    return connection.query(f"""
        WITH frames AS (
            SELECT l.layer_index AS layer, generate_subscripts(l.frame_means, 1) - 1 AS frame,
                   unnest(l.frame_means) AS energy
            FROM layers l JOIN runs r USING (run_id)
            WHERE {clause} AND l.kind = 'energy' AND l.step = ? AND l.layer_index IS NOT NULL)
        SELECT layer, frame, avg(energy) AS energy FROM frames GROUP BY ALL ORDER BY 1, 2""", [*values, int(step)])


def energy_steps(connection, where: RunFilter) -> list[int]:
    """The steps that have energy rows (the per-frame map's step picker)."""
    if not has_layers(connection):
        return []
    clause, values = where.where("r")
    return connection.query(f"""
        SELECT DISTINCT l.step FROM layers l JOIN runs r USING (run_id)
        WHERE {clause} AND l.kind = 'energy' ORDER BY 1""", values).column("step").to_pylist()


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


MAPS_SQL = """SELECT r.task_id, r.seed, l.layer_index, l.step, l.map, l.map_shape
FROM layers l JOIN runs r USING (run_id) WHERE {clause} AND l.kind = 'energy' AND l.map IS NOT NULL"""


def _baselines(where: RunFilter) -> RunFilter:
    return dataclasses.replace(where, methods=("baseline",))


def energy_by_layer(reader, where: RunFilter, verdict) -> list[dict]:
    """Per layer: maps, mean energy, and the route ratio (mean over maps; min and max of the per-task means) where
    `verdict.meta` knows the tasks' routes."""
    clause, values = where.where("r")
    table = reader.rows(f"""SELECT l.layer_index AS layer, count(*) AS maps, avg(l.value) AS energy
        FROM layers l JOIN runs r USING (run_id) WHERE {clause} AND l.kind = 'energy' AND l.layer_index IS NOT NULL
        GROUP BY 1 ORDER BY 1""", values)
    ratios: dict = {}  # {layer: {task: [ratio per map]}}
    if any(verdict.meta(r["task_id"]) for r in reader.rows(f"SELECT DISTINCT task_id FROM runs r WHERE {clause}",
                                                           values)):
        for row in reader.rows(MAPS_SQL.format(clause=clause), values):
            meta = verdict.meta(row["task_id"])
            m = np.reshape(np.asarray(row["map"], dtype=np.float64), row["map_shape"])  # (frames, h', w')
            ratio = route_ratio(m, route_tokens(meta, row["map_shape"])) if meta else None
            if ratio is not None:
                ratios.setdefault(row["layer_index"], {}).setdefault(row["task_id"], []).append(ratio)
    for row in table:
        per_task = [np.mean(v) for v in ratios.get(row["layer"], {}).values()]  # one per task (its maps averaged)
        row["route_ratio"] = float(np.mean([x for v in ratios[row["layer"]].values() for x in v])) if per_task else None
        row["route_ratio_task_min"] = float(min(per_task)) if per_task else None
        row["route_ratio_task_max"] = float(max(per_task)) if per_task else None
    return table


def figure(reader, where: RunFilter, verdict) -> Drawn:
    where = _baselines(where)
    table = energy_by_layer(reader, where, verdict)
    if not table:
        raise Unsupported("no energy rows of baseline runs (probes: {energy: ...})")
    heat = energy_heatmap(reader, where).to_pylist()
    routed = any(r["route_ratio"] is not None for r in table)

    def plot(plt):
        layers = [r["layer"] for r in table]
        fig, axes = plt.subplots(1, 3 if routed else 2, figsize=(12 if routed else 8, 3.3))
        axes[0].plot(layers, [r["energy"] for r in table], marker=".")
        axes[0].axvspan(19.5, 29.5, color="0.9", label="paper's middle layers 20-29")
        axes[0].set(title="mean token energy (L2 over channels)", xlabel="layer (block)")
        axes[0].legend(fontsize=7)
        if routed:
            ax = axes[1]
            ax.plot(layers, [r["route_ratio"] for r in table], marker=".", color="C2", label="mean")
            ax.fill_between(layers, [r["route_ratio_task_min"] for r in table],
                            [r["route_ratio_task_max"] for r in table], color="C2", alpha=0.2, label="range over tasks")
            ax.legend(fontsize=7)
            ax.axhline(1.0, color="0.5", lw=0.8)
            ax.axvspan(19.5, 29.5, color="0.9")
            ax.set(title="energy on route cells / off route (frames 1+)", xlabel="layer (block)")
        grid: dict = {}
        for r in heat:
            grid.setdefault(r["layer"], {})[r["step"]] = r["energy"]
        steps = sorted({s for per in grid.values() for s in per})
        cells = np.array([[grid[layer].get(s, np.nan) for s in steps] for layer in sorted(grid)])  # (layers, steps)
        image = axes[-1].imshow(cells.T, aspect="auto", origin="lower", cmap="magma",
                                extent=(-0.5, len(grid) - 0.5, -0.5, len(steps) - 0.5))
        axes[-1].set_xticks(range(len(grid)), sorted(grid), fontsize=7)
        axes[-1].set_yticks(range(len(steps)), steps, fontsize=7)
        axes[-1].set(title="mean energy by layer and step", xlabel="layer (block)", ylabel="denoising step")
        fig.colorbar(image, ax=axes[-1], fraction=0.046)
        return fig

    notes = [] if routed else ["route ratio: the verdict knows no routes (a `solved` verdict on generated mazes)"]
    return Drawn("fig5", "Fig. 5: activation energy by layer", verdict.label if routed else "not judged",
                 {"": table, "by_layer_and_step": heat}, f"{sum(r['maps'] for r in table)} baseline energy maps",
                 plot, notes=notes)


def maps_figure(reader, where: RunFilter, verdict, layers=MAP_LAYERS, steps=MAP_STEPS) -> Drawn:
    """The first task's maps (lowest seed): rows = layers, columns = steps, each map its latent frames side by side."""
    clause, values = _baselines(where).where("r")
    found = reader.rows(MAPS_SQL.format(clause=clause), values)
    if not found:
        raise Unsupported("no energy maps of baseline runs (probes: {energy: ...})")
    task = min(r["task_id"] for r in found)
    seed = min(r["seed"] for r in found if r["task_id"] == task)
    maps = {(r["layer_index"], r["step"]): np.reshape(r["map"], r["map_shape"]) for r in found
            if r["task_id"] == task and r["seed"] == seed}
    layers = [layer for layer in layers if any(k[0] == layer for k in maps)] or sorted({k[0] for k in maps})[:5]
    steps = [s for s in steps if any(k[1] == s for k in maps)] or sorted({k[1] for k in maps})[:3]
    table = [{"task_id": task, "seed": seed, "layer": layer, "step": step, "frame": f, "row": i, "column": j,
              "energy": float(maps[(layer, step)][f, i, j])}
             for layer in layers for step in steps if (layer, step) in maps
             for f in range(maps[(layer, step)].shape[0]) for i in range(maps[(layer, step)].shape[1])
             for j in range(maps[(layer, step)].shape[2])]

    def plot(plt):
        fig, axes = plt.subplots(len(layers), len(steps), figsize=(2.4 * len(steps) + 0.5, 1.05 * len(layers) + 0.5),
                                 squeeze=False)
        for i, layer in enumerate(layers):
            axes[i][0].set_ylabel(f"layer {layer}", fontsize=8)
            for j, step in enumerate(steps):
                if (layer, step) not in maps:
                    continue
                m = maps[(layer, step)]  # (frames, h', w')
                gap = np.full((m.shape[1], 1), np.nan)
                strip = np.concatenate([x for f in m for x in (f, gap)][:-1], axis=1)  # (h', frames * (w' + 1) - 1)
                axes[i][j].imshow(strip, cmap="magma")
                if i == 0:
                    axes[i][j].set_title(f"step {step} (frames 0-{len(m) - 1})", fontsize=8)
        for ax in axes.flat:
            ax.set_xticks([])
            ax.set_yticks([])
        return fig

    return Drawn("fig5-maps", f"Fig. 5: energy maps of {task}, seed {seed}", "not judged", {"": table},
                 f"1 run ({task}, seed {seed})", plot)
