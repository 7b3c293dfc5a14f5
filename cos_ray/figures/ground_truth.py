"""What every probe figure of the model card shares: matplotlib, a store's rows as dicts, the generated tasks of the
sweep that wrote the store, drawn again from their seeds (their routes and grids are the ground truth the figures
judge answers against; a sweep keeps only task ids, not the generator's metadata), and the verdict on a stored video."""

from __future__ import annotations

import json
from pathlib import Path

from cos_ray.errors import UsageError


def pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("the card's figures need matplotlib: pip install 'cos-ray[train]'") from None
    return plt


def rows(store_uri: str, sql: str) -> list[dict]:
    """The query's answer over the store at `store_uri`, one dict per row (an empty store is an error)."""
    from cos_ray.store.location import Store
    from cos_ray.store.query import run_sql

    return run_sql(Store(store_uri), sql, require_results=True, timeout_s=300).to_pylist()


def save(fig, out: Path, dpi: int = 90) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    pyplot().close(fig)
    return out


def generated_samples(store_uri: str) -> dict:
    """{task_id: GeneratedSample} for every task of the store's sweeps that came from `tasks: {generate: ...}`.

    Sample i of `generate: {family, n, seed, params}` is `family.generate(default_rng([seed, i]))`, the task id
    `{split}/{family}/{i:05d}` (cos_ray.spec.tasks): the same frames, route and grid as the sweep saw."""
    import numpy as np

    from cos_ray.tasks.families import get_family
    from cos_ray.tasks.folder import SPLITS
    from cos_ray.tasks.generation import family_params

    samples = {}
    for sweep in rows(store_uri, "select spec from sweeps"):
        generate = (json.loads(sweep["spec"]).get("tasks") or {}).get("generate") if sweep["spec"] else None
        if not isinstance(generate, dict):
            continue
        family, params = generate["family"], family_params(generate["family"], **(generate.get("params") or {}))
        split, seed = generate.get("split") or SPLITS[0], int(generate.get("seed", 0))
        for i in range(int(generate.get("n", 10))):
            samples[f"{split}/{family}/{i:05d}"] = get_family(family).generate(np.random.default_rng([seed, i]), params)
    if not samples:
        raise UsageError(f"{store_uri}: no sweep there generated its tasks (tasks: {{generate: ...}}); the figure "
                         f"needs the generator's routes")
    return samples


def solved_video(video, sample, score: float | None = None) -> bool:
    """The verdict on `video` `# (frames, H, W, 3)` uint8 for `sample`'s task: `solved.judge`'s on a raw video
    (score None), `solved.stored_run_solved` with the run's stored score on a store's mp4."""
    from cos_ray.training.solved import judge, stored_run_solved

    if score is None:
        return judge(video, sample.frames[0], sample.frames[-1], sample.meta)["solved"]
    return stored_run_solved(score, video[-1], sample.meta)


def print_queries(queries: dict, answer: dict) -> None:
    """The SQL each figure runs, then its answer as JSON (what the card quotes)."""
    for name, sql in queries.items():
        print(f"-- {name}\n{sql};")
    print(json.dumps(answer, indent=1, default=str))
