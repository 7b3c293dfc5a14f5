"""Atomic writes: a reader sees a whole file or none, and a rewritten unit replaces its file in one step.

Local filesystems: write `.tmp-<uuid>-<name>` in the same folder, then rename over the final name (POSIX rename is
atomic and replaces). Object stores (s3://, gs://): one object written in one upload, which becomes visible only
when complete - no temporary name needed (a copy would not be atomic anyway).
"""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cos_ray.store.location import Store
from cos_ray.store.schema import to_table


def write_atomic(store: Store, path: str, write) -> str:
    """Call `write(sink_path)` to produce the file, then publish it at `path` atomically."""
    folder, _, name = path.rpartition("/")
    store.fs.create_dir(folder, recursive=True)
    if not store.is_local:
        write(path)
        return path
    temporary = f"{folder}/.tmp-{uuid.uuid4().hex}-{name}"
    try:
        write(temporary)
        store.fs.move(temporary, path)
    except BaseException:
        try:
            store.fs.delete_file(temporary)
        except (FileNotFoundError, OSError):
            pass
        raise
    return path


def write_parquet(store: Store, path: str, table: pa.Table, metadata: dict | None = None) -> str:
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    return write_atomic(store, path, lambda sink: pq.write_table(table, sink, filesystem=store.fs,
                                                                 compression="zstd"))


def write_unit(store: Store, unit_id: str, runs, steps=None, layers=None) -> None:
    """A finished (or failed) unit: its steps and layers files first, then its runs file - whose presence marks the
    unit done.

    `runs`/`steps`/`layers`: lists of row dicts (see `rows`) or pyarrow tables; core columns are cast, extras kept.
    The steps file is written even when empty, so that a retried unit's file replaces the rows of its earlier
    attempt. The layers file (probe rows) is written when the unit has some, or to empty an earlier attempt's.
    """
    write_parquet(store, store.part_path("steps", unit_id), to_table("steps", steps if steps is not None else []))
    layers_path = store.part_path("layers", unit_id)
    if _has_rows(layers) or store.fs.get_file_info(layers_path).type == pafs.FileType.File:
        write_parquet(store, layers_path, to_table("layers", layers if layers is not None else []))
    write_parquet(store, store.part_path("runs", unit_id), to_table("runs", runs))


def _has_rows(rows) -> bool:
    if rows is None:
        return False
    return rows.num_rows > 0 if isinstance(rows, pa.Table) else len(rows) > 0


def write_sweep(store: Store, row: dict) -> None:
    """The sweep's row (rewritten as it progresses: running -> done / failed / interrupted)."""
    write_parquet(store, store.part_path("sweeps", row["sweep_id"]), to_table("sweeps", [row]))


def write_media(store: Store, relative: str, data: bytes) -> str:
    """A media file (video, filmstrip) at a store-relative path; returns the path rows should reference."""
    def put(sink: str) -> None:
        with store.fs.open_output_stream(sink) as handle:
            handle.write(data)

    write_atomic(store, store.path(relative), put)
    return relative
