"""The `solved` verdict: the task score at the family's threshold AND the drawn path is the ground-truth route
(`maze_route`), read from each run's stored video (final answers) or its lossless x̂0 filmstrip (per step), against
the tasks drawn again from the sweep's generator spec (`ground_truth`). Only for generated route tasks (mazes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cos_ray.figures.verdicts import Verdict


class SolvedVerdict(Verdict):
    name = "solved"
    label = "solved: task score >= threshold AND the drawn path is the route (maze reader)"
    step_label = "x̂0 solved: score >= threshold AND the route (read from the filmstrip)"

    def __init__(self, reader, where=None):
        from cos_ray.figures.ground_truth import generated_samples

        self.root = Path(reader.uri)
        self.samples = {k: s for k, s in generated_samples(reader).items() if "route" in s.meta}
        clause, values = where.where() if where is not None else ("TRUE", [])
        tasks = {r["task_id"] for r in reader.rows(f"SELECT DISTINCT task_id FROM runs WHERE {clause}", values)}
        if not self.samples or not tasks <= set(self.samples):
            raise ValueError("its tasks are not all generated route tasks (tasks: {generate: {family: maze}}); "
                             "the maze reader needs their routes")

    def video(self, relative: str) -> np.ndarray:
        from cos_ray.media import read_video

        return read_video(self.root / relative)  # (frames, H, W, 3) uint8

    def final(self, runs: list[dict]) -> dict:
        from cos_ray.figures.maze_route import stored_run_solved

        out = {}
        for r in runs:
            if r["score"] is None or not r.get("video"):
                out[r["run_id"]] = None
                continue
            meta = self.samples[r["task_id"]].meta
            out[r["run_id"]] = stored_run_solved(r["score"], self.video(r["video"])[-1], meta)
        return out

    def per_step(self, steps: list[dict]) -> list[bool] | None:
        from PIL import Image

        from cos_ray.figures.chain_of_steps import last_frames
        from cos_ray.figures.maze_route import stored_run_solved

        if not steps[0].get("filmstrip"):
            return None
        sample = self.samples[steps[0]["task_id"]]
        strip = np.asarray(Image.open(self.root / steps[0]["filmstrip"]).convert("RGB"))
        tiles = last_frames(strip, len(steps), sample.frames.shape[1:3])  # (steps, H, W, 3)
        return [stored_run_solved(s["score"], tile, sample.meta) for s, tile in zip(steps, tiles)]

    def whose_answer(self, video, run: dict, source_task: str) -> str | None:
        return whose_answer(video, self.samples[run["task_id"]], self.samples.get(source_task), run["score"])

    def meta(self, task_id: str) -> dict | None:
        sample = self.samples.get(task_id)
        return sample.meta if sample else None


def whose_answer(video, a, b, score: float | None = None) -> str:
    """'a' when `video` `# (frames, H, W, 3)` uint8 solves A's maze, 'b' when its last frame's orange covers exactly
    B's route cells (on A's board; cells under either run's start/goal markers left out), else 'neither'. `a`, `b`:
    the generator's samples (B may be None). `score`: the run's stored score when `video` is the store's mp4 (the
    mp4 moves the score; `ground_truth.solved_video`), None to score the raw video."""
    from cos_ray.figures.ground_truth import solved_video
    from cos_ray.figures.maze_route import drawn_cells

    if solved_video(video, a, score):
        return "a"
    if b is None:
        return "neither"
    ends = {tuple(a.meta["start"]), tuple(a.meta["goal"]), tuple(b.meta["start"]), tuple(b.meta["goal"])}
    route_b = {tuple(rc) for rc in b.meta["route"]}
    if a.meta["grid"] == b.meta["grid"] and drawn_cells(video[-1], a.meta["grid"]) - ends == route_b - ends:
        return "b"
    return "neither"
