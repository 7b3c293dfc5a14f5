"""Fig. 3c analogue: how far a perturbed trajectory's latents drift from the clean run's (linear CKA dissimilarity,
0 = identical) at every step, one curve per noised step s or noised latent frame f, and where each ends.

  python -m cos_ray.training.card cka STORE OUT.png      (a store of jobs/paper/fig3c-cka-sensitivity-*.yaml)
"""

from __future__ import annotations

from pathlib import Path

from cos_ray.training.figures_common import pyplot, rows, save

_AT = "coalesce(json_extract_string(r.params, '$.step'), json_extract_string(r.params, '$.frame'))::int"
CKA_CURVES_SQL = f"""select r.method, {_AT} as noised_at, l.step, avg(l.value) as dissimilarity, count(*) as runs
from layers l join runs r using (run_id)
where l.kind = 'cka' and r.method in ('noise_at_step', 'noise_at_frame') group by 1, 2, 3 order by 1, 2, 3"""
CKA_FINAL_SQL = f"""select r.method, {_AT} as noised_at, avg(l.value) as final_dissimilarity,
  avg(r.score) as score, count(*) as runs
from layers l join runs r using (run_id)
where l.kind = 'cka' and r.method in ('noise_at_step', 'noise_at_frame')
  and l.step = json_extract_string(r.settings, '$.steps')::int - 1 group by 1, 2 order by 1, 2"""


def cka_tables(store_uri: str) -> dict:
    """{curves: {method: {noised_at: [dissimilarity by step]}}, final: {method: [{noised_at, final_dissimilarity,
    score, runs}]}}."""
    curves: dict = {"noise_at_step": {}, "noise_at_frame": {}}
    for row in rows(store_uri, CKA_CURVES_SQL):
        curves[row["method"]].setdefault(row["noised_at"], []).append(round(row["dissimilarity"], 4))
    final: dict = {"noise_at_step": [], "noise_at_frame": []}
    for row in rows(store_uri, CKA_FINAL_SQL):
        final[row.pop("method")].append(row)
    return {"curves": curves, "final": final}


def plot_cka(store_uri: str, out: Path) -> dict:
    plt = pyplot()
    answer = cka_tables(store_uri)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), sharey=True)
    for ax, method, name in ((axes[0], "noise_at_step", "s"), (axes[1], "noise_at_frame", "f")):
        curves = answer["curves"][method]
        cmap = plt.get_cmap("viridis", max(2, len(curves)))
        for i, (at, values) in enumerate(sorted(curves.items())):
            first = at if method == "noise_at_step" else 0  # 0 exactly before the noised step: not drawn
            ax.plot(range(first, len(values)), values[first:], marker=".", color=cmap(i), label=f"{name} = {at}")
        ax.set_title(f"{method}: 1 - CKA(latents, clean run's)", fontsize=9)
        ax.set(xlabel="denoising step", ylim=(-0.02, 1.02))
        ax.legend(fontsize=6, ncol=2, loc="lower left")
    axes[0].set_ylabel("dissimilarity")
    for method, marker in (("noise_at_step", "o"), ("noise_at_frame", "s")):
        final = answer["final"][method]
        axes[2].plot([r["noised_at"] for r in final], [r["final_dissimilarity"] for r in final], marker=marker,
                     label=f"{method} (x = {'s' if method == 'noise_at_step' else 'f'})")
    axes[2].set_title("at the last step, by where the noise hit", fontsize=9)
    axes[2].set(xlabel="noised step s / latent frame f")
    axes[2].legend(fontsize=7)
    save(fig, out)
    return answer
