"""The results store: Delta tables (Parquet + a transaction log, delta-rs) under a local path or s3:// gs:// az://.

Read in this order: `schema` (tables, their core columns and keys), `location` (root, table URIs, media paths),
`tables` (open / create a Delta table; commits that lose a race rerun), `write` (a unit's rows merged on their key:
each run id exactly once), `rows` (row builders), `views` (DuckDB views pinned to one table version), `retry` (the one
read retry policy), `query` (`cos-ray sql`), `status` (done-ness for resume), `compact` (optimize + vacuum),
`damage` (unreadable files named, set aside), `migrate` (the pre-Delta format converted once), `sql_guard` (the
SELECT-only lock of the dashboard's SQL box). Knows nothing of models, Ray or specs.
"""
