"""The runs filter every view shares: sweep, task family, method, status and method parameters, as a SQL WHERE.

Values travel as bound parameters, never pasted into SQL. Method parameters live in the `params` JSON column; a
filter on one is `json_extract(params, '$."key"')` compared as JSON text (`"update"`, `2`), so that 2 and "2" stay
apart. Keys filtered together are ANDed, values of one key ORed.
"""

from __future__ import annotations

from cos_ray.figures.run_filter import RunFilter, json_path, setting_label, shown  # noqa: F401 - views import here


def filter_options(connection) -> dict:
    """What the filters can choose from: {"sweeps": [(sweep_id, label)], "families", "methods", "statuses",
    "params": {key: [json text, ...]}} - all from small DuckDB aggregates."""
    def distinct(column: str) -> list:
        rows = connection.query(f"SELECT DISTINCT {column} AS v FROM runs WHERE {column} IS NOT NULL ORDER BY 1")
        return rows.column("v").to_pylist()

    sweeps = []
    if "sweeps" in connection.tables:
        rows = connection.query("SELECT sweep_id, name FROM sweeps ORDER BY started_at DESC NULLS LAST, sweep_id")
        sweeps = [(row["sweep_id"], f"{row['name']} ({row['sweep_id']})") for row in rows.to_pylist()]
    rows = connection.query(
        "SELECT DISTINCT j.key AS key, CAST(j.value AS VARCHAR) AS value "
        "FROM (SELECT DISTINCT params FROM runs WHERE params IS NOT NULL) p, json_each(p.params) j ORDER BY 1, 2")
    params: dict[str, list[str]] = {}
    for row in rows.to_pylist():
        params.setdefault(row["key"], []).append(row["value"])
    return {"sweeps": sweeps, "families": distinct("task_family"), "methods": distinct("method"),
            "statuses": distinct("status"), "params": params}
