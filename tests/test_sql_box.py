"""The dashboard's SQL box refuses everything but SELECT, and reads nothing outside the store."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cos_ray.store.sql_guard import ReadOnlySQL, RefusedQuery


@pytest.fixture()
def box(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    pq.write_table(pa.table({"method": ["baseline", "ensemble", "ensemble"], "score": [0.5, 0.7, 0.9]}),
                   store / "runs.parquet")
    (tmp_path / "secret.csv").write_text("password\nhunter2\n")

    def register(connection):
        connection.execute(f"CREATE VIEW runs AS SELECT * FROM read_parquet('{store}/*.parquet')")

    return ReadOnlySQL(register, [str(store)]), store, tmp_path


def test_select_over_the_store_works(box):
    sql, _, _ = box
    table = sql.query("SELECT method, avg(score) AS mean FROM runs GROUP BY 1 ORDER BY 1")
    assert table.to_pylist() == [{"method": "baseline", "mean": 0.5}, {"method": "ensemble", "mean": 0.8}]


@pytest.mark.parametrize(
    "query",
    [
        "COPY runs TO '{store}/copy.csv'",
        "COPY (SELECT 1) TO '{tmp}/elsewhere.csv'",
        "ATTACH '{tmp}/other.db'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "CREATE TABLE t AS SELECT 1",
        "DROP VIEW runs",
        "SET enable_external_access = true",
        "INSERT INTO runs VALUES ('x', 1)",
        "SELECT 1; DELETE FROM runs",
        "PRAGMA version",
        "EXPORT DATABASE '{tmp}/dump'",
    ],
)
def test_non_select_statements_are_refused(box, query):
    sql, store, tmp = box
    with pytest.raises(RefusedQuery, match="SELECT statements only"):
        sql.query(query.format(store=store, tmp=tmp))
    assert sorted(p.name for p in store.iterdir()) == ["runs.parquet"]
    assert sql.query("SELECT count(*) AS n FROM runs").to_pylist() == [{"n": 3}]


def test_reads_of_other_files_are_refused(box):
    sql, _, tmp = box
    for query in (f"SELECT * FROM read_csv('{tmp}/secret.csv')", f"SELECT * FROM '{tmp}/secret.csv'",
                  "SELECT * FROM read_text('/etc/passwd')"):
        with pytest.raises(RefusedQuery, match="query failed: .*(Permission|disabled)"):
            sql.query(query)


def test_empty_and_broken_queries_are_clear(box):
    sql, _, _ = box
    with pytest.raises(RefusedQuery, match="empty"):
        sql.query("  ")
    with pytest.raises(RefusedQuery, match="could not parse"):
        sql.query("SELEC 1")
