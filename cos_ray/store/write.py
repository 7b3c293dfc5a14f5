"""Committing rows: each row key at most once, a unit's rows as one commit per table, media before the rows.

Every commit is a Delta merge on the table's key (`schema.TABLE_SPECS`), conflict-checked by delta-rs: two drivers,
a retried job or a resumed sweep committing the same unit never add a second row for a key. A unit's steps and
layers are committed first, its runs last: a unit is done exactly when its runs rows are committed with status
`ok`, and once done, later commits of the same unit change nothing (the first finished attempt stays). A failed
unit's runs rows are replaced by its next attempt's. A unit's steps/layers commit replaces that unit's earlier rows
(rows its new attempt does not have are deleted in the same commit).
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.fs as pafs

from cos_ray.store.location import Store
from cos_ray.store.schema import TABLE_SPECS, to_table
from cos_ray.store.tables import committing, dataset, ensure_table, files_holding, open_table, quote

UNIT_ID = re.compile(r"^[A-Za-z0-9_.=-]+$")


def commit_rows(store: Store, table: str, rows, scope: str | None = None, keep_ok: bool = False) -> dict:
    """Merge `rows` into `table` on its key, in one commit; returns delta-rs's merge metrics.

    `scope`: the value of the table's scope column (a unit id) all rows share: the merge reads only that unit's
    files, and the unit's rows missing from `rows` are deleted. `keep_ok`: a matched row whose status is `ok` is
    kept as it is (runs: a finished run is never overwritten)."""
    spec = TABLE_SPECS[table]
    data = to_table(table, rows)
    on = " AND ".join(f"t.{column} = s.{column}" for column in spec.key)
    if scope is not None:
        on = f"t.{spec.scope} = {quote(scope)} AND {on}"

    def merge() -> dict:
        delta = ensure_table(store, table)
        merger = delta.merge(data, on, source_alias="s", target_alias="t", merge_schema=True)
        merger = merger.when_matched_update_all(predicate="t.status <> 'ok'" if keep_ok else None)
        merger = merger.when_not_matched_insert_all()
        if scope is not None and not keep_ok and _may_hold(delta, spec.scope, scope):
            merger = merger.when_not_matched_by_source_delete(predicate=f"t.{spec.scope} = {quote(scope)}")
        return merger.execute()

    return committing(merge, f"committing {len(data)} row(s) to {table}")


def _may_hold(delta, column: str, value: str) -> bool:
    """Whether some data file may hold rows with `column` = `value`, by the log's min/max statistics. Deleting a
    unit's stale rows costs 100-200 ms a commit: only a unit that may have rows (an earlier attempt) pays it."""
    return bool(files_holding(delta, column, value))


def unit_done(store: Store, unit_id: str) -> bool:
    """Whether the unit's runs rows are committed, every one with status ok."""
    delta = open_table(store, "runs")
    if delta is None:
        return False
    rows = dataset(store, delta, unit_id).to_table(columns=["unit_id", "status"])  # filtered after the scan
    values = [status for uid, status in zip(rows.column("unit_id").to_pylist(), rows.column("status").to_pylist())
              if uid == unit_id]
    return bool(values) and all(value == "ok" for value in values)


def write_unit(store: Store, unit_id: str, runs, steps=None, layers=None) -> bool:
    """A finished (or failed) unit: its steps and layers first, then its runs rows - whose commit marks it done.

    Returns False (and commits nothing) when the unit is already done: another driver, or an earlier attempt,
    committed it first. `runs`/`steps`/`layers`: lists of row dicts (see `rows`) or pyarrow tables.
    """
    if not UNIT_ID.match(unit_id):
        raise ValueError(f"unit id {unit_id!r}: letters, digits, _ . = - only")
    if unit_done(store, unit_id):
        return False
    commit_rows(store, "steps", steps if steps is not None else [], scope=unit_id)
    if _has_rows(layers) or store.has_table("layers"):
        commit_rows(store, "layers", layers if layers is not None else [], scope=unit_id)
    commit_rows(store, "runs", runs, scope=unit_id, keep_ok=True)
    return True


def _has_rows(rows) -> bool:
    if rows is None:
        return False
    return rows.num_rows > 0 if isinstance(rows, pa.Table) else len(rows) > 0


def write_sweep(store: Store, row: dict) -> None:
    """The sweep's row (rewritten as it progresses: running -> done / failed / interrupted)."""
    commit_rows(store, "sweeps", [row])


def write_atomic(store: Store, path: str, write) -> str:
    """Call `write(sink_path)` to produce the file, then publish it at `path` atomically (local: rename of a
    temporary file in the same folder; object stores: one upload, visible only when complete)."""
    import uuid

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


def write_media(store: Store, relative: str, data: bytes) -> str:
    """A media file (video, filmstrip) at a store-relative path, written before the rows naming it; returns the
    path rows should reference."""
    def put(sink: str) -> None:
        with store.fs.open_output_stream(sink) as handle:
            handle.write(data)

    write_atomic(store, store.path(relative), put)
    return relative


def media_exists(store: Store, relative: str) -> bool:
    return store.fs.get_file_info(store.path(relative)).type == pafs.FileType.File
