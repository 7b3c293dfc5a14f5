"""How a figure judges an answer right, named in its output: the task score at its threshold (`score`), VBVR-EvalKit's
task score where the store has its table (`evalkit`), or a family's stricter reader (`solved`: the maze route,
`solved_verdict.py`). A verdict judges finished runs and, where it can, the decoded x̂0 at each recorded step.

This module knows no task family, so the figure modules (and the dashboard through them) never import one: the
`solved` verdict is built by whoever asks for it (`cos-ray figures --verdict solved`) and handed to them."""

from __future__ import annotations

SCORE_THRESHOLD = 0.9  # every built-in family's threshold (cos_ray.tasks.families); VBVR-Bench scorers' too
EVALKIT_PASS = 1.0     # EvalKit has no pass threshold; its top score = every rule met (sweep/evalkit_agreement.py)


class Verdict:
    """`final(runs)` -> {run_id: True | False | None (cannot judge)} for rows with run_id, task_id, score, video;
    `per_step(steps)` -> [True | False] for one run's step rows (step, score, filmstrip), or None."""

    name = "score"
    label = f"task score >= {SCORE_THRESHOLD}"
    step_label = f"x̂0's task score >= {SCORE_THRESHOLD}"

    def final(self, runs: list[dict]) -> dict:
        return {r["run_id"]: None if r["score"] is None else r["score"] >= SCORE_THRESHOLD for r in runs}

    def per_step(self, steps: list[dict]) -> list[bool] | None:
        return [s["score"] >= SCORE_THRESHOLD for s in steps]

    def whose_answer(self, video, run: dict, source_task: str) -> str | None:
        """'a' | 'b' | 'neither' for a swapped run's `video` (None: this verdict cannot read B's answer)."""
        return None

    def meta(self, task_id: str) -> dict | None:
        """The task's ground truth (route, grid) when this verdict knows it."""
        return None


class ScoreVerdict(Verdict):
    pass


class EvalKitVerdict(Verdict):
    """EvalKit's task-specific score (its `evalkit` table, `cos-ray score --evalkit`) at its top: every rule met."""

    name = "evalkit"
    label = f"VBVR-EvalKit's task score >= {EVALKIT_PASS}"
    step_label = f"no per-step EvalKit score: x̂0's task score >= {SCORE_THRESHOLD}"

    def __init__(self, reader):
        if "evalkit" not in reader.tables or not reader.count("evalkit"):
            raise ValueError("the store has no EvalKit scores (`cos-ray score SWEEP --evalkit`)")
        self.scores = {r["run_id"]: r["s"] for r in reader.rows(
            "SELECT run_id, max(score_task_specific) AS s FROM evalkit GROUP BY 1")}

    def final(self, runs: list[dict]) -> dict:
        out = {}
        for r in runs:
            s = self.scores.get(r["run_id"])
            out[r["run_id"]] = None if s is None else s >= EVALKIT_PASS
        return out
