"""Which runs a figure or a view reads: sweep, task family, method, status and method parameters, as a SQL WHERE
(the dashboard's filters and `cos-ray figures SWEEP...` share it), and a setting's name as people read it.

Values travel as bound parameters, never pasted into SQL. Method parameters live in the `params` JSON column; a
filter on one is `json_extract(params, '$."key"')` compared as JSON text (`"update"`, `2`), so that 2 and "2" stay
apart. Keys filtered together are ANDed, values of one key ORed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field


def json_path(key: str) -> str:
    """A JSON path naming one top-level key, quoted so any key is safe."""
    return '$."' + key.replace('"', '\\"') + '"'


@dataclass(frozen=True)
class RunFilter:
    sweeps: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    params: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())  # ((key, (json text, ...)), ...)

    def where(self, alias: str = "", methods: bool = True) -> tuple[str, list]:
        """(`a AND b ...` or `TRUE`, bound values) over the runs view aliased `alias`. `methods=False` leaves out
        the method and parameter filters (the baseline side of a comparison)."""
        prefix = f"{alias}." if alias else ""
        clauses, values = [], []

        def among(column: str, chosen) -> None:
            if chosen:
                clauses.append(f"{prefix}{column} IN ({', '.join('?' * len(chosen))})")
                values.extend(chosen)

        among("sweep_id", self.sweeps)
        among("task_family", self.families)
        among("status", self.statuses)
        if methods:
            among("method", self.methods)
            for key, chosen in self.params:
                if chosen:
                    clauses.append(f"CAST(json_extract({prefix}params, ?) AS VARCHAR) "
                                   f"IN ({', '.join('?' * len(chosen))})")
                    values.extend([json_path(key), *chosen])
        return (" AND ".join(clauses) or "TRUE"), values


def shown(value: str) -> str:
    """A JSON text as a person reads it: `"update"` -> `update`, `2` -> `2`."""
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return str(value)
    return decoded if isinstance(decoded, str) else json.dumps(decoded)


def setting_label(method: str, params: str | None) -> str:
    """`ensemble (merge=update, size=2)`: a method with its parameters, for legends and tables."""
    try:
        decoded = json.loads(params) if params else {}
    except ValueError:
        decoded = {}
    if not isinstance(decoded, dict) or not decoded:
        return str(method)
    inner = ", ".join(f"{key}={shown(json.dumps(value))}" for key, value in sorted(decoded.items()))
    return f"{method} ({inner})"
