"""Score one trajectory: its final video, and every step whose x̂0 was decoded (the Chain-of-Steps curve).

Takes the engine's member result by duck typing (`video`, `filmstrip`, `filmstrip_steps`), so the tasks package
stays free of the engine; returns plain dicts, ready for rows.
"""

from __future__ import annotations

from cos_ray.tasks.families import get_family
from cos_ray.tasks.score import References, score_steps, score_video
from cos_ray.tasks.steps import chain_of_steps


def score_trajectory(member, refs: References) -> dict:
    """{'score', 'score_overall', 'dimensions', 'step_scores': {step: (task_specific, overall)},
    'first_stable_step', 'flips'} (the last two None when no step was decoded)."""
    final = score_video(member.video, refs)
    result = {"score": final.task_specific, "score_overall": final.overall, "dimensions": dict(final.dimensions),
              "step_scores": {}, "first_stable_step": None, "flips": None}
    if member.filmstrip is None or not member.filmstrip_steps:
        return result
    per_step = score_steps(member.filmstrip, refs)
    result["step_scores"] = {step: (s.task_specific, s.overall) for step, s in zip(member.filmstrip_steps, per_step)}
    outcome = chain_of_steps(member.filmstrip_steps, [s.task_specific for s in per_step],
                             threshold=get_family(refs.family).threshold)
    result["first_stable_step"], result["flips"] = outcome.first_stable_step, outcome.flips
    return result
