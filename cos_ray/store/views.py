"""DuckDB views `sweeps`, `runs`, `steps`, `layers` over the store's Delta tables, each pinned to one version, and
`answers` over runs and layers (one row per unit: its answer beside the baseline on the same seeds).

Each view scans the data files of the table version current when the view was made, as listed by its log: a commit
or a compaction during a query cannot change its answer. Local stores are read by DuckDB's own Parquet reader
(`read_parquet([...], union_by_name = true)`: multi-threaded, 2.6x faster than through pyarrow on 5·10^6 rows),
remote ones through pyarrow datasets (`tables.dataset`; DuckDB's httpfs cannot be fetched here). A table with no commit yet is an empty relation with every core column and its type.
"""

from __future__ import annotations

from cos_ray.store.location import Store
from cos_ray.store.schema import TABLES, to_table
from cos_ray.store.tables import fs_path, dataset, open_table, plain


# `answers`: one row per unit - the unit's answer and the baseline on the same task and seeds, so that methods are
# compared like with like (the README's headline query). A baseline's or a probe's answer is its run; an ensemble's
# is its consensus member (the member whose final x̂0 is nearest the members' mean: `layers` rows of kind
# `consensus`; members' own rows stay in `runs`); a search's is its kept candidate (of several: the verifier's pick
# at the end). `baseline_mean` averages the ok baseline runs of the same task, model and settings over the unit's
# seeds; `baseline_runs` counts them (a complete pairing: = len(seeds)).
ANSWERS = """
CREATE OR REPLACE VIEW answers AS
WITH picked AS (
    SELECT * FROM runs
    WHERE method IS NULL OR method NOT IN ('ensemble', 'search')
       OR run_id IN (SELECT run_id FROM layers WHERE kind = 'consensus')),
base AS (
    SELECT task_id, model, settings, seed, avg(score) AS score FROM runs
    WHERE method = 'baseline' AND status = 'ok' GROUP BY ALL)
SELECT p.sweep_id, p.unit_id, p.run_id, p.task_id, p.method, p.params, p.seeds, p.status, p.score,
       avg(b.score) AS baseline_mean, count(b.score) AS baseline_runs
FROM picked p CROSS JOIN unnest(p.seeds) AS member(seed)
LEFT JOIN base b ON b.task_id = p.task_id AND b.model = p.model AND b.settings = p.settings AND b.seed = member.seed
GROUP BY p.sweep_id, p.unit_id, p.run_id, p.task_id, p.method, p.params, p.seeds, p.status, p.score
"""
DERIVED = {"answers": ("runs", "layers")}  # views over the tables: created when every table they read is


def tables_in(sql: str) -> list[str]:
    """The store tables a query names, with those its derived views read (opening a table reads its log: open only
    those needed)."""
    import re

    named = {table for table in TABLES if re.search(rf"\b{table}\b", sql, re.IGNORECASE)}
    for view, needs in DERIVED.items():
        if re.search(rf"\b{view}\b", sql, re.IGNORECASE):
            named.update(needs)
    return [table for table in TABLES if table in named] or list(TABLES)


def register_views(connection, store: Store, tables=None) -> dict[str, int | None]:
    """Create the views (all, or `tables`) on `connection`; returns the table version each view reads (None: no
    table yet)."""
    versions = {}
    for table in tables or TABLES:
        delta = open_table(store, table)
        relation = f"_{table}_delta"
        if delta is None:
            connection.register(relation, to_table(table, []))
            versions[table] = None
        elif store.is_local and plain(delta):
            connection.register(relation, to_table(table, []))  # every core column, with its type
            paths = [fs_path(uri) for uri in delta.file_uris()]
            versions[table] = delta.version()
            if paths:
                files = "[" + ", ".join("'" + path.replace("'", "''") + "'" for path in paths) + "]"
                relation = (f"(SELECT * FROM {relation} UNION ALL BY NAME "
                            f"SELECT * FROM read_parquet({files}, union_by_name = true))")
        else:
            connection.register(relation, dataset(store, delta, views=True))
            versions[table] = delta.version()
        connection.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {relation}")
    if all(table in versions for table in DERIVED["answers"]):
        connection.execute(ANSWERS)
    return versions
