"""The results store: Parquet files under a local path or a pyarrow filesystem URI (s3://, gs://).

Read in this order: `schema` (tables and their core columns), `location` (URI -> filesystem, file names, listing),
`write` (one file per finished unit, atomically), `rows` (row builders for a unit's runs, steps and failures),
`views` (DuckDB views `sweeps`, `runs`, `steps` over the live files), `status` (finished / failed units, for resume),
`compact` (many small files -> one per table), `query` (`cos-ray sql`). Knows nothing of models, Ray or specs.
"""
