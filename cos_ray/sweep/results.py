"""A finished unit as store rows: each member's video and filmstrip as media, its scores, its per-step records.

Scoring happens on the driver (numpy, OpenCV, scikit-image; no torch): the workers stay free for the next unit.
A task without a final frame or a built-in scorer (`cos_ray.tasks.vbvr_ids`) is still stored in full - video,
filmstrips, per-step records - with null scores, never invented ones, and a `score_reason` saying why.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from cos_ray.store.location import Store
from cos_ray.store.rows import run_row, step_rows
from cos_ray.store.write import write_media


def task_references(task_input, family: str | None):
    """The scorer's references for a task, or None when the task cannot be scored (no family or final frame)."""
    from cos_ray.tasks.score import references

    if family is None or task_input.final_frame_path is None:
        return None
    return references(task_input, family)


def score_reason(task_input, family: str | None) -> str | None:
    """Why a task's runs carry null scores (the runs' `score_reason`); None when a built-in scorer scores them."""
    from cos_ray.tasks.folder import FINAL_FRAME
    from cos_ray.tasks.vbvr_ids import no_scorer_reason

    if family is None:
        return no_scorer_reason(task_input.task, task_input.task_id)
    if task_input.final_frame_path is None:
        return f"no {FINAL_FRAME} in {task_input.task_id}: nothing to score against"
    return None


def unit_results(store: Store, outcome, sweep_id: str, fps: int,
                 provenance: dict | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """(runs rows, steps rows, layers rows) for a finished unit's `UnitOutcome` (cos_ray.cluster.outcome), after
    writing its members' media to the store.

    `provenance`: the columns the sweep's runs share (`cos_ray.provenance.sweep_provenance`)."""
    from cos_ray.provenance import run_provenance
    from cos_ray.spec.forks import companion_passes, passes_of_records
    from cos_ray.tasks.trajectory_scores import score_trajectory

    unit = outcome.unit
    task_input = unit.task.load()
    refs = task_references(task_input, unit.task.family)
    reason = score_reason(task_input, unit.task.family)
    started, finished, duration = outcome.started, outcome.finished, outcome.seconds
    runs, steps, layers = [], [], []
    members = outcome.members
    explored, commits = exploration_columns(members, refs)
    companions = companion_passes(unit) if getattr(unit, "program", None) is not None else 0
    for member_index, member in enumerate(members):
        run_id = f"{unit.unit_id}-{member_index}"
        media = write_member_media(store, unit.unit_id, member_index, member, fps)
        stopped = getattr(member, "stopped_at", None)  # a search's pruned candidate: no final video to score
        if refs is None:
            scored = None
        else:
            scored = score_trajectory(member, refs) if stopped is None else score_decoded_steps(member, refs)
        worker = outcome.worker_of(member_index)
        runs.append(run_row(
            unit, member_index, sweep_id,
            score=None if scored is None else scored["score"],
            score_overall=None if scored is None else scored["score_overall"],
            scores=None if scored is None else scored["dimensions"],
            lock_in_step=None if scored is None else scored["first_stable_step"],
            flips=None if scored is None else scored["flips"],
            score_reason=reason if stopped is None else f"pruned by the search after step {stopped}: no final video",
            commit_step=commits[member_index],
            duration_s=duration, worker=worker.address if worker is not None else "?:?",
            device=worker.device if worker is not None else None, started_at=started, finished_at=finished, **media,
            **run_provenance(unit, worker, provenance or {}),
            forward_passes=passes_of_records(member.steps, unit.settings) + companions, stop_step=stopped,
            **({"status": "pruned"} if stopped is not None else {}),
        ))
        step_scores = {} if scored is None else {step: pair[0] for step, pair in scored["step_scores"].items()}
        member_steps = step_rows(run_id, unit.unit_id, member.steps, step_scores)
        for row in member_steps:
            row.update(explored[member_index].get(row["step"], {}))
        steps.extend(member_steps)
        layers.extend(layer_rows(run_id, unit.unit_id, getattr(member, "probes", None) or {},
                                 (getattr(unit, "probes", None) or {}).get("sensitivity")))
    layers.extend(ensemble_answer_rows(unit, outcome.members))
    layers.extend(search_rows(unit, outcome.members))
    return runs, steps, layers


def score_decoded_steps(member, refs) -> dict:
    """A pruned candidate's scores: its decoded x̂0 steps only (no final video: the run scores stay null)."""
    from cos_ray.tasks.score import score_steps

    result = {"score": None, "score_overall": None, "dimensions": None, "step_scores": {},
              "first_stable_step": None, "flips": None}
    if member.filmstrip is not None and member.filmstrip_steps:
        per_step = score_steps(member.filmstrip, refs)
        result["step_scores"] = {step: (s.task_specific, s.overall) for step, s in zip(member.filmstrip_steps, per_step)}
    return result


def search_rows(unit, members: list) -> list[dict]:
    """For a search unit, `layers` rows of kind `search` (each candidate's verifier score at the selection step in
    `value`, the verifier in `layer`, its rank in `layer_index`: 0 is the best; kept or pruned: `runs.status`) and the `consensus` row naming its answer: the kept candidate, or of several
    kept the verifier's pick of their final x̂0 (`cos_ray.probes.search`; its judgement rows at the last step)."""
    from cos_ray.probes.consensus import KIND_CONSENSUS

    judged = [(index, (getattr(member, "probes", None) or {}).get("search") or []) for index, member in
              enumerate(members)]
    if not any(rows for _, rows in judged):
        return []
    rows = []
    for index, member_rows in judged:
        for row in member_rows:
            rows.append({"run_id": f"{unit.unit_id}-{index}", "unit_id": unit.unit_id, "step": int(row["step"]),
                         "kind": "search", "layer": row["verifier"], "layer_index": int(row["rank"]),
                         "expert": None, "value": float(row["score"])})
    kept = [index for index, member in enumerate(members) if getattr(member, "stopped_at", None) is None]
    last = max(len(members[index].steps) for index in kept) - 1
    answer = kept[0] if len(kept) == 1 else next(  # of several: the verifier's pick of their final x̂0
        index for index, member_rows in judged if any(row["step"] == last and row["kept"] for row in member_rows))
    rows.append({"run_id": f"{unit.unit_id}-{answer}", "unit_id": unit.unit_id, "step": last,
                 "kind": KIND_CONSENSUS, "layer": "latents", "layer_index": None, "expert": None, "value": 0.0})
    return rows


def exploration_columns(members: list, refs) -> tuple[list[dict[int, dict]], list[int | None]]:
    """Per member {step: exploration columns of its steps row} and its commit_step (`cos_ray.probes.exploration`):
    x0_to_final from its kept x̂0, x0_spread across the unit's members, candidates where the family reads routes."""
    from cos_ray.probes.exploration import (
        candidate_columns, commit_step, route_answers, spread_by_step, to_final_by_step,
    )

    traces = [getattr(member, "x0_latents", None) or {} for member in members]
    spread = spread_by_step(traces)
    columns, commits = [], []
    for member, trace in zip(members, traces):
        final = getattr(member, "final_latent", None)
        by_step: dict[int, dict] = {}
        for step, distance in (to_final_by_step(trace, final) if final is not None else {}).items():
            by_step.setdefault(step, {})["x0_to_final"] = distance
        for step, value in spread.items():
            by_step.setdefault(step, {})["x0_spread"] = value
        candidates = member_candidates(member, refs)
        for step, values in candidate_columns(candidates).items():
            by_step.setdefault(step, {}).update(values)
        columns.append(by_step)
        commits.append(commit_step(*route_answers(candidates)) if candidates else None)
    return columns, commits


def member_candidates(member, refs) -> dict[int, list | None]:
    """{decoded step: candidate routes of its x̂0} for a path family's task with a grid; {} otherwise."""
    from cos_ray.tasks.routes import FAMILIES, read_candidates
    from cos_ray.tasks.scorers.frames import prepare

    if refs is None or refs.family not in FAMILIES or getattr(member, "filmstrip", None) is None:
        return {}
    size = refs.first.shape[:2]
    return {int(step): read_candidates(prepare(row, size), refs.family, refs.meta)
            for step, row in zip(member.filmstrip_steps, member.filmstrip)}


def ensemble_answer_rows(unit, members: list) -> list[dict]:
    """For an ensemble unit, the `layers` rows that name its answer (`cos_ray.probes.consensus`); none otherwise."""
    if unit.method != "ensemble" or len(members) < 2:
        return []
    from cos_ray.probes.consensus import consensus_rows

    run_ids = [f"{unit.unit_id}-{index}" for index in range(len(members))]
    last = len(members[0].steps) - 1
    return consensus_rows(run_ids, unit.unit_id, last, [member.final_latent for member in members])


def layer_rows(run_id: str, unit_id: str, probes: dict, state: str | None = None) -> list[dict]:
    """A member's probe rows (`MemberResult.probes`) as rows of the store's `layers` table (see its schema);
    `state`: what the sensitivity probe compared (`latents` or a block such as `high.blocks.20`)."""
    import numpy as np

    from cos_ray.engine.hook_points import LATENTS, HookPoint

    rows = []
    for row in probes.get("energy", ()):
        expert, layer = row["expert"], int(row["layer"])
        point = HookPoint(expert or None, layer)
        energy_map = np.asarray(row["map"], dtype=np.float32)  # (frames, h', w')
        rows.append({
            "run_id": run_id, "unit_id": unit_id, "step": int(row["step"]), "kind": "energy",
            "layer": point.name, "layer_index": layer,
            "expert": expert or None, "value": float(row["energy_mean"]),
            "frame_means": [float(value) for value in row["frame_means"]], "fg_bg_ratio": row["fg_bg_ratio"],
            "grid": [int(value) for value in row["grid"]], "map_shape": list(energy_map.shape),
            "map": energy_map.ravel().tolist(),
        })
    state = str(state or LATENTS)
    point = None if state == LATENTS else HookPoint.parse(state)
    expert, index = (None, None) if point is None else (point.expert, point.layer)
    for row in probes.get("sensitivity", ()):
        rows.append({
            "run_id": run_id, "unit_id": unit_id, "step": int(row["step"]), "kind": "cka", "layer": state,
            "layer_index": index, "expert": expert,
            "value": float(row["cka_dissimilarity"]),
        })
    return rows


def write_member_media(store: Store, unit_id: str, member_index: int, member, fps: int) -> dict:
    """`{"video": path, "filmstrip": path or None}`: store-relative, under media/{unit_id}/member-{k}/."""
    from cos_ray.media import filmstrip_grid, write_video

    folder = f"media/{unit_id}/member-{member_index}"
    paths = {"video": None, "filmstrip": None}
    if member.video is not None:  # None: a search's pruned candidate (it never reached the end)
        with tempfile.TemporaryDirectory(prefix="cos-ray-media-") as staging:
            local = write_video(Path(staging) / "video.mp4", member.video, fps)
            paths["video"] = write_media(store, f"{folder}/video.mp4", local.read_bytes())
    if member.filmstrip is not None and len(member.filmstrip_steps):
        from PIL import Image

        png = io.BytesIO()
        Image.fromarray(filmstrip_grid(member.filmstrip)).save(png, format="PNG")  # (steps*h, frames*w, 3)
        paths["filmstrip"] = write_media(store, f"{folder}/filmstrip.png", png.getvalue())
    return paths
