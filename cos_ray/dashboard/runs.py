"""The runs table, filtered and paginated in DuckDB: a page of rows and the filtered set's aggregates.

Only one page (LIMIT/OFFSET) and one aggregate row leave DuckDB, so a store of 10^5 runs pages as fast as a small one.
"""

from __future__ import annotations

import pyarrow as pa

from cos_ray.dashboard.compare import SCORE_KINDS
from cos_ray.dashboard.filters import RunFilter

COLUMNS = ("run_id", "sweep_id", "task_id", "task_family", "method", "params", "seed", "member", "score",
           "score_overall", "lock_in_step", "status", "error", "duration_s", "worker", "device", "finished_at",
           "video", "filmstrip")
SORTABLE = ("run_id", "task_id", "method", "seed", "score", "score_overall", "lock_in_step", "duration_s",
            "finished_at")
OVERALL = SCORE_KINDS["score_overall"]


def runs_summary(connection, where: RunFilter) -> dict:
    """{"runs", "ok", "failed", "mean_score", "mean_overall", "tasks", "units"} over the filtered runs."""
    clause, values = where.where()
    row = connection.query(f"""
        SELECT count(*) AS runs, count(*) FILTER (WHERE status = 'ok') AS ok,
               count(*) FILTER (WHERE status = 'failed') AS failed, avg(score) AS mean_score,
               avg({OVERALL}) AS mean_overall, count(DISTINCT task_id) AS tasks, count(DISTINCT unit_id) AS units
        FROM runs WHERE {clause}""", values).to_pylist()[0]
    return row


def runs_page(connection, where: RunFilter, page: int = 0, page_size: int = 50, order: str = "run_id",
              descending: bool = False) -> pa.Table:
    """Page `page` (from 0) of the filtered runs, `page_size` rows, ordered by `order` (one of SORTABLE)."""
    if order not in SORTABLE:
        raise ValueError(f"order: expected one of {', '.join(SORTABLE)}, got {order!r}")
    clause, values = where.where()
    direction = "DESC" if descending else "ASC"
    stored = ", ".join(column for column in COLUMNS if column != "score_overall")
    return connection.query(f"""
        SELECT * FROM (SELECT {stored}, {OVERALL} AS score_overall FROM runs WHERE {clause})
        ORDER BY {order} {direction} NULLS LAST, run_id
        LIMIT ? OFFSET ?""", [*values, int(page_size), int(page) * int(page_size)]).select(list(COLUMNS))


def pages(total: int, page_size: int) -> int:
    return max(1, -(-total // page_size))
