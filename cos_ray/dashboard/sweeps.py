"""The sweeps list: each sweep's status and progress, with its runs counted in DuckDB.

`done`/`failed`/`units` come from the sweep's own row (rewritten as it progresses); the run counts come from the
runs table, so a sweep that is still running shows the units written so far.
"""

from __future__ import annotations

import pyarrow as pa


def sweeps_table(connection) -> pa.Table:
    """One row per sweep, newest first: name, status, progress (0-1), done, failed, units, runs, ok runs, mean score."""
    if "sweeps" not in connection.tables:
        return pa.table({})
    return connection.query("""
        WITH counts AS (
            SELECT sweep_id, count(*) AS runs, count(*) FILTER (WHERE status = 'ok') AS ok_runs,
                   avg(score) AS mean_score
            FROM runs GROUP BY sweep_id)
        SELECT s.sweep_id, s.name, s.status,
               CASE WHEN s.units > 0 THEN (coalesce(s.done, 0) + coalesce(s.failed, 0)) / s.units ELSE 0 END
                   AS progress,
               s.done, s.failed, s.units, coalesce(c.runs, 0) AS runs, coalesce(c.ok_runs, 0) AS ok_runs,
               c.mean_score, s.model, s.started_at, s.finished_at, s.source, s.host
        FROM sweeps s LEFT JOIN counts c USING (sweep_id)
        ORDER BY s.started_at DESC NULLS LAST, s.sweep_id""")


def store_summary(connection) -> dict:
    """Headline counts for the page header: sweeps, runs, step rows (one cheap aggregate each)."""
    return {table: connection.count(table) for table in ("sweeps", "runs", "steps")}
