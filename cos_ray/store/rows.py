"""Row builders for one unit: what the sweep driver writes when a unit finishes or fails.

`unit` is duck-typed (the store knows nothing of specs): it needs `unit_id`, `seeds`, `method`, `params`, `model`,
`settings` (with `as_dict()`), and `task` with `task_id` and `family` - `cos_ray.spec.unit.Unit` has them.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone


def now() -> datetime:
    return datetime.now(timezone.utc)


def _json(value) -> str | None:
    return None if value is None else json.dumps(value, sort_keys=True, default=str)


def run_row(unit, member: int, sweep_id: str, **fields) -> dict:
    """The identity columns of member `member` of `unit`, plus any outcome columns given (score, status, ...)."""
    settings = unit.settings.as_dict() if hasattr(unit.settings, "as_dict") else unit.settings
    row = {
        "sweep_id": sweep_id,
        "unit_id": unit.unit_id,
        "run_id": f"{unit.unit_id}-{member}",
        "member": member,
        "task_id": unit.task.task_id,
        "task_family": unit.task.family,
        "seed": unit.seeds[member],
        "method": unit.method,
        "params": _json(unit.params),
        "model": unit.model,
        "settings": _json(settings),
        "status": "ok",
    }
    if isinstance(fields.get("scores"), dict):
        fields["scores"] = _json(fields["scores"])
    row.update(fields)
    return row


def failed_rows(unit, sweep_id: str, error: BaseException | str, **fields) -> list[dict]:
    """One `failed` row per member: the unit is retried on the next submission."""
    message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return [run_row(unit, member, sweep_id, status="failed", error=message, **fields)
            for member in range(len(unit.seeds))]


def step_rows(run_id: str, unit_id: str, records: list[dict], scores: dict[int, float] | None = None) -> list[dict]:
    """The engine's per-step records (step, timestep, sigma, expert, x0_mean, x0_std, x0_change) of one run."""
    scores = scores or {}
    return [{"run_id": run_id, "unit_id": unit_id, **{k: v for k, v in record.items() if not k.startswith("_")},
             "score": scores.get(record["step"])} for record in records]


def sweep_row(sweep_id: str, name: str, source: str, spec: dict, model: str, unit_ids: list[str], status: str,
              done: int = 0, failed: int = 0, started_at: datetime | None = None,
              finished_at: datetime | None = None) -> dict:
    """The sweeps table's row; rewrite it (same sweep_id) as the sweep progresses."""
    import socket

    from cos_ray import __version__

    return {"sweep_id": sweep_id, "name": name, "source": source, "spec": _json(spec), "cos_ray_version": __version__,
            "model": model, "units": len(unit_ids), "unit_ids": list(unit_ids), "done": done, "failed": failed,
            "status": status, "started_at": started_at or now(), "finished_at": finished_at,
            "host": socket.gethostname()}
