"""Migration: a store written before the Delta tables (one Parquet file per unit, compacted files naming in their
footer the compacted files they supersede) converted once into Delta tables, in place.

Each legacy table's live rows are read as its readers read them - small files win over compacted rows of the same
unit, superseded compacted files are ignored - then committed as the Delta table's first version, and only then are
the legacy files moved under `_legacy/{table}/`. Media stay where they are (rows name them store-relative). An
interrupted migration is finished by running it again: a table already converted is not converted twice.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from cos_ray.errors import UsageError
from cos_ray.store.location import Store
from cos_ray.store.schema import KEYS, TABLES, to_table

LEGACY = "_legacy"
PART = re.compile(r"^part-(?P<key>[A-Za-z0-9_.=-]+)\.parquet$")
COMPACT = re.compile(r"^compact-[0-9a-f]+\.parquet$")
SUPERSEDES = b"cos_ray.supersedes"


@dataclass(frozen=True)
class Migration:
    table: str
    files: int  # legacy files read
    rows: int   # rows committed


def _legacy_files(store: Store, table: str) -> tuple[dict[str, str], list[str]]:
    """(small files by key, compacted files) of a legacy table folder."""
    infos = store.fs.get_file_info(pafs.FileSelector(store.path(table), allow_not_found=True))
    parts, compacted = {}, []
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File:
            continue
        match = PART.match(info.base_name)
        if match and not re.match(r"^part-\d{5}-[0-9a-f-]{36}", info.base_name):  # not a Delta data file
            parts[match.group("key")] = info.path
        elif COMPACT.match(info.base_name):
            compacted.append(info.path)
    return parts, compacted


def _read(store: Store, path: str) -> pa.Table:
    try:
        with store.fs.open_input_file(path) as handle:
            return pq.read_table(handle)
    except Exception as err:  # noqa: BLE001 - named, the migration stops before writing anything
        raise UsageError(f"migrating {store.uri}: {path} is unreadable ({str(err).splitlines()[0]}); move it out of "
                         f"the store (its unit will be rerun) and migrate again") from None


def legacy_rows(store: Store, table: str) -> tuple[pa.Table, list[str]]:
    """A legacy table's live rows (each once) and every legacy file of it."""
    parts, compacted = _legacy_files(store, table)
    superseded = set()
    for path in compacted:
        with store.fs.open_input_file(path) as handle:
            superseded |= set(json.loads((pq.read_metadata(handle).metadata or {}).get(SUPERSEDES, b"[]")))
    live = [p for p in compacted if p.rsplit("/", 1)[-1] not in superseded]
    key = KEYS[table]
    pieces = [to_table(table, _read(store, path)) for path in parts.values()]
    for path in live:
        rows = to_table(table, _read(store, path))
        keep = pc.invert(pc.is_in(rows.column(key), pa.array(list(parts), pa.string())))
        pieces.append(rows.filter(keep))
    pieces = pieces or [to_table(table, [])]
    return pa.concat_tables(pieces, promote_options="permissive"), list(parts.values()) + compacted


def migrate_store(store: Store) -> list[Migration]:
    """Convert every legacy table of the store (tables already in Delta are left alone)."""
    from deltalake import write_deltalake

    if not store.exists():
        raise UsageError(f"store {store.uri}: no such store")
    done = []
    for table in TABLES:
        parts, compacted = _legacy_files(store, table)
        if not parts and not compacted:
            continue
        rows, files = legacy_rows(store, table)
        if not store.has_table(table):
            write_deltalake(store.table_uri(table), rows, mode="error", schema_mode="merge",
                            storage_options=store.storage_options)
            committed = rows.num_rows
        else:  # an interrupted migration: the table was committed, the legacy files not yet moved
            committed = 0
        store.fs.create_dir(store.path(LEGACY, table), recursive=True)
        for path in files:
            store.fs.move(path, store.path(LEGACY, table, path.rsplit("/", 1)[-1]))
        done.append(Migration(table, len(files), committed))
    return done
