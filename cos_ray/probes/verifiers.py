"""The search's verifiers: a score per candidate from its x̂0 at the selection step (higher: more worth continuing).

- `task`: the task family's own scorer (`cos_ray.tasks.score`) on the decoded x̂0, against the task's final frame.
  It knows the answer: a process reward with privileged information, an upper bound on what a verifier could do,
  not a method usable on tasks without a reference.
- `consensus`: no task knowledge. The candidates' x̂0 latents are compared with each other; a candidate's score is
  minus its mean relative distance to the others, so the medoid ranks first (the candidate most others agree with).
- `evalkit`: VBVR-EvalKit's rule-based scorer of the task (where `vbvr_bench` is installed) on the decoded x̂0.

Scores are gathered over the seed group, so every worker of a group holding some candidates ranks all of them.
"""

from __future__ import annotations

from cos_ray.errors import InputError, UsageError


def ranking(scores: list[float], tiebreak: list[int] | None = None) -> list[int]:
    """Member indices, best first (higher score first; ties: the lower `tiebreak[member]`, default the lower member)."""
    order = tiebreak or list(range(len(scores)))
    return sorted(range(len(scores)), key=lambda index: (-scores[index], order[index]))


def tiebreak_order(task_id: str, members: int) -> list[int]:
    """Each member's place among tied scores: a permutation fixed by the task id (the same on every worker).

    A task verifier often ties at an early step (x̂0 still blank: every candidate scores the same). Sending ties to
    the lower member would answer with the same seed on every task - and one seed's noise is shared by all tasks, so
    its luck would carry into every tied pick, which the baseline's mean over seeds does not have."""
    import zlib

    import numpy as np

    return [int(place) for place in np.random.default_rng(zlib.crc32(task_id.encode())).permutation(members)]


def make_verifier(config, task):
    """The verifier `config.verifier` names, its references read once for the task."""
    if config.verifier == "task":
        return TaskVerifier(task, config.field)
    if config.verifier == "consensus":
        return ConsensusVerifier()
    if config.verifier == "evalkit":
        return EvalKitVerifier(task, config.field)
    raise UsageError(f"{config.field}.verifier: expected one of task, consensus, evalkit, got {config.verifier!r}")


DROPPED = float("-inf")  # the score of a candidate no longer running (never ranked among those judged)


def _gather_scores(local: list[float], group) -> list[float]:
    import torch

    return [float(value) for value in group.gather(torch.tensor(local, dtype=torch.float64))]


def _scored(latents, score) -> list[float]:
    """`score(latent)` of each local candidate still running; DROPPED for the others (latent None)."""
    return [DROPPED if latent is None else float(score(latent)) for latent in latents]


def decoded_video(model, latent):
    """x̂0 `# (channels, frames, h, w)` decoded whole: `# (frames, H, W, 3)` uint8."""
    from cos_ray.engine.records import decode_filmstrip

    return decode_filmstrip(model.pipe, latent[None], max_frames=1 << 20, max_side=1 << 20)[0]


class TaskVerifier:
    """The family's score of each candidate's decoded x̂0 (privileged: it reads the task's final frame)."""

    def __init__(self, task, field: str):
        from cos_ray.tasks.score import references

        family = getattr(task, "family", None)
        if family is None or getattr(task, "final_frame_path", None) is None:
            raise InputError(f"{field}.verifier: task needs a task with a built-in scorer and its final frame; "
                             f"task {task.task_id} has " + ("no scorer family" if family is None else "no final frame")
                             + " (use verifier: consensus)")
        self.refs = references(task, family)

    def scores(self, model, latents, group, alive=None) -> list[float]:
        """Every candidate's score, member order (`latents`: this process's, None for one no longer running)."""
        from cos_ray.tasks.score import score_video

        score = lambda latent: score_video(decoded_video(model, latent), self.refs).task_specific  # noqa: E731
        return _gather_scores(_scored(latents, score), group)


class ConsensusVerifier:
    """Minus each candidate's mean relative distance to the other candidates' x̂0 (the medoid scores highest)."""

    def __init__(self):
        self.values = None  # values of one x̂0 trace (the first selection has every candidate: each process has one)

    def scores(self, model, latents, group, alive=None) -> list[float]:
        """`alive`: the members still running (default: all); the others score DROPPED and count for no one."""
        import torch

        from cos_ray.engine.records import x0_trace

        traces = [None if latent is None else x0_trace(latent).flatten() for latent in latents]
        if self.values is None:
            self.values = next(trace for trace in traces if trace is not None).numel()
        local = torch.stack([torch.zeros(self.values) if trace is None else trace for trace in traces])
        every = group.gather(local).double()  # (candidates, values), float64 on CPU
        running = sorted(range(every.shape[0]) if alive is None else alive)
        chosen = every[running]  # (running, values)
        distances = torch.cdist(chosen[None], chosen[None])[0]  # (running, running)
        scale = chosen.norm(dim=1).mean().clamp_min(1e-12)
        mean = distances.sum(dim=1) / max(len(running) - 1, 1)
        scores = [DROPPED] * every.shape[0]
        for position, member in enumerate(running):
            scores[member] = float(-mean[position] / scale)
        return scores


class EvalKitVerifier:
    """VBVR-EvalKit's task-specific score of each candidate's decoded x̂0, through `vbvr_bench.VBVRBench`."""

    def __init__(self, task, field: str):
        try:
            import vbvr_bench  # noqa: F401
        except ImportError:
            raise UsageError(f"{field}.verifier: evalkit needs VBVR-EvalKit (Python package `vbvr_bench`), not "
                             "installed here; install it from github.com/Video-Reason/VBVR-EvalKit, or use verifier: "
                             "task or consensus") from None
        if getattr(task, "task", None) is None or getattr(task, "final_frame_path", None) is None:
            raise InputError(f"{field}.verifier: evalkit needs a VBVR task sample (task folder name and final "
                             f"frame); task {task.task_id} has none (use verifier: consensus)")
        self.task, self.field = task, field

    def scores(self, model, latents, group, alive=None) -> list[float]:
        return _gather_scores(_scored(latents, lambda latent: self._score(decoded_video(model, latent))), group)

    def _score(self, video) -> float:
        """EvalKit's score of one video of this task: exported as EvalKit reads it, evaluated, read back."""
        import contextlib
        import sys
        import tempfile
        from pathlib import Path

        import vbvr_bench

        from cos_ray.media import write_video
        from cos_ray.tasks.export import export_evalkit, export_ground_truth

        with tempfile.TemporaryDirectory(prefix="cos-ray-search-evalkit-") as work:
            root = Path(work)
            split = self.task.split or "In-Domain_50"
            local = write_video(root / "x0.mp4", video.astype("float32") / 255.0, 16)
            sample = Path(self.task.image_path).parent
            videos = export_evalkit([("search", 0, split, self.task.task, "00000", local)], root / "out")[0]
            gt = export_ground_truth([(split, self.task.task, "00000", sample)], root / "out")
            bench = vbvr_bench.VBVRBench(gt_base_path=str(gt), output_path=str(root / "results"), device="cpu")
            with contextlib.redirect_stdout(sys.stderr):  # EvalKit prints its progress
                results = bench.evaluate(str(videos), name="search", task_specific_only=True)
        samples = results.get("detailed") or results.get("samples") or []
        if not samples or samples[0].get("score") is None:
            raise InputError(f"{self.field}.verifier: EvalKit returned no score for task {self.task.task_id}")
        return float(samples[0]["score"])
