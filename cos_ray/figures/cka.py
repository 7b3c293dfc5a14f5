"""Fig. 3c: how far a perturbed trajectory's latents drift from the clean run's (linear CKA dissimilarity, 0 =
identical) at every step, one curve per noised step s or noised latent frame f, and where each ends.

`cka_curves` is the dashboard's Probes view's table; `figure` draws it for the noise methods, with the final answer's
verdict per noised position beside the last step's dissimilarity. Store: jobs/paper/fig3c-cka-sensitivity*.yaml.
"""

from __future__ import annotations

import json

import pyarrow as pa

from cos_ray.figures.figure import Drawn, Unsupported, pairs
from cos_ray.figures.presence import NOISE, has_layers
from cos_ray.figures.run_filter import RunFilter


def cka_curves(connection, where: RunFilter) -> pa.Table:
    """Per (method, params, layer compared, step): perturbed runs and the mean CKA dissimilarity to the clean run."""
    if not has_layers(connection):
        return pa.table({})
    clause, values = where.where("r")
    return connection.query(f"""
        SELECT r.method, coalesce(r.params, '{{}}') AS params, l.layer, l.step, count(*) AS runs,
               avg(l.value) AS mean
        FROM layers l JOIN runs r USING (run_id)
        WHERE {clause} AND l.kind = 'cka' AND l.value IS NOT NULL
        GROUP BY ALL ORDER BY 1, 2, 3, 4""", values)


def figure(reader, where: RunFilter, verdict) -> Drawn:
    from cos_ray.figures.noise import judged_shares

    curves = [r for r in cka_curves(reader, where).to_pylist() if r["method"] in NOISE]
    if not curves:
        raise Unsupported("no CKA rows of noise runs (probes: {sensitivity: latents} with noise_at_step/frame)")
    for row in curves:
        row["position"] = json.loads(row["params"]).get(NOISE[row["method"]])
    shares = judged_shares(reader, where, verdict)
    final = []
    for (method, position, layer), rows in pairs(curves, lambda r: (r["method"], r["position"], r["layer"])).items():
        last = max(rows, key=lambda r: r["step"])
        final.append({"method": method, "position": position, "layer": layer, "last_step": last["step"],
                      "final_dissimilarity": last["mean"], "runs": last["runs"],
                      **shares.get((method, position), {})})
    table = [{k: v for k, v in r.items() if k != "params"} for r in curves]

    def plot(plt):
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), sharey=True)
        for ax, method, name in ((axes[0], "noise_at_step", "s"), (axes[1], "noise_at_frame", "f")):
            mine = pairs([r for r in table if r["method"] == method], lambda r: (r["position"], r["layer"]))
            cmap = plt.get_cmap("viridis", max(2, len(mine)))
            for i, ((at, layer), rows) in enumerate(sorted(mine.items(), key=lambda kv: str(kv[0]))):
                shown = [r for r in rows if method != "noise_at_step" or r["step"] >= at]  # 0 before the noise
                ax.plot([r["step"] for r in shown], [r["mean"] for r in shown], marker=".", color=cmap(i),
                        label=f"{name} = {at}" + (f" ({layer})" if layer != "latents" else ""))
            ax.set_title(f"{method}: 1 - CKA(latents, clean run's)", fontsize=9)
            ax.set(xlabel="denoising step", ylim=(-0.02, 1.02))
            if mine:
                ax.legend(fontsize=6, ncol=2, loc="lower left")
        axes[0].set_ylabel("dissimilarity")
        for method, marker in (("noise_at_step", "o"), ("noise_at_frame", "s")):
            mine = sorted((r for r in final if r["method"] == method), key=lambda r: r["position"])
            axes[2].plot([r["position"] for r in mine], [r["final_dissimilarity"] for r in mine], marker=marker,
                         label=f"{method}: dissimilarity")
            axes[2].plot([r["position"] for r in mine], [r.get("share") for r in mine], marker=marker, ls=":",
                         label=f"{method}: right (verdict)")
        axes[2].set_title("at the last step, by where the noise hit", fontsize=9)
        axes[2].set(xlabel="noised step s / latent frame f")
        axes[2].legend(fontsize=6)
        return fig

    return Drawn("fig3c", "Fig. 3c: CKA sensitivity after noise", verdict.label, {"": table, "final": final},
                 f"{sum(r['runs'] for r in final)} noised runs with CKA rows", plot)
