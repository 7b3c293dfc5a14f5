"""The ground truth of a sweep's generated tasks, drawn again from their seeds: their routes and grids are what the
`solved` verdict judges answers against (a sweep keeps only task ids, not the generator's metadata)."""

from __future__ import annotations

import json

import numpy as np


def generated_samples(reader) -> dict:
    """{task_id: GeneratedSample} for every task of the reader's sweeps that came from `tasks: {generate: ...}`.

    Sample i of `generate: {family, n, seed, params}` is `family.generate(default_rng([seed, i]))`, the task id
    `{split}/{family}/{i:05d}` (cos_ray.spec.tasks): the same frames, route and grid as the sweep saw."""
    from cos_ray.tasks.families import get_family
    from cos_ray.tasks.folder import SPLITS
    from cos_ray.tasks.generation import family_params

    samples = {}
    for sweep in reader.rows("SELECT spec FROM sweeps"):
        spec = json.loads(sweep["spec"]) if sweep["spec"] else {}
        tasks = spec.get("tasks") if isinstance(spec, dict) else None  # a folder (str), a list, or {generate: ...}
        generate = tasks.get("generate") if isinstance(tasks, dict) else None
        if not isinstance(generate, dict):
            continue
        family, params = generate["family"], family_params(generate["family"], **(generate.get("params") or {}))
        split, seed = generate.get("split") or SPLITS[0], int(generate.get("seed", 0))
        for i in range(int(generate.get("n", 10))):
            samples[f"{split}/{family}/{i:05d}"] = get_family(family).generate(np.random.default_rng([seed, i]), params)
    return samples


def solved_video(video, sample, score: float | None = None) -> bool:
    """The verdict on `video` `# (frames, H, W, 3)` uint8 for `sample`'s task: `maze_route.judge`'s on a raw video
    (score None), `maze_route.stored_run_solved` with the run's stored score on a store's mp4."""
    from cos_ray.figures.maze_route import judge, stored_run_solved

    if score is None:
        return judge(video, sample.frames[0], sample.frames[-1], sample.meta)["solved"]
    return stored_run_solved(score, video[-1], sample.meta)
