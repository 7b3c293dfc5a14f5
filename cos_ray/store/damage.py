"""Damage found, named, never trusted: which of a store's log or data files cannot be read, and what they held.

`check_store` reads every log entry after the newest checkpoint (and that checkpoint), and every data file of each
table's current version, and lists each unreadable one with its table, version and what is lost (row counts and
unit ids from the log's statistics), then counts each readable table's duplicated keys (`duplicates`: each key must
be in a table once; a double compaction once broke that). `damaged_error` turns a failed read into one error
naming them. `set_aside` (`cos-ray store check --repair`, and every resume) moves the damaged files under
`_damaged/` and commits their removal, so the tables are readable again and the units whose rows were lost are no longer done - the next
submission reruns them instead of trusting them; a table's duplicated keys are rewritten to one row per key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow.fs as pafs

from cos_ray.errors import CosRayError
from cos_ray.store.location import DAMAGED, LOG, Store
from cos_ray.store.schema import TABLE_SPECS, TABLES

LOG_FILE = re.compile(r"^(?P<version>\d{20})\.(?P<kind>json|checkpoint\.parquet|checkpoint\.\d+\.\d+\.parquet|crc)$")


class DamagedStore(CosRayError):
    """Some of the store's files cannot be read: the message names each, with its table and version."""


@dataclass(frozen=True)
class Damage:
    table: str
    version: int | None  # the log version that added the file (data) or the broken log entry's version (log)
    file: str            # store-relative path
    kind: str            # data | missing | log | duplicate
    problem: str
    lost: str            # what cannot be read because of it
    units: tuple[str, str] | None = None  # (min, max) unit id of the lost rows, from the log's statistics

    def describe(self) -> str:
        version = "" if self.version is None else f" version {self.version}"
        if self.kind == "duplicate":
            return f"table {self.table}{version}: {self.problem}; {self.lost}"
        return f"table {self.table}{version}: {self.file} is unreadable ({self.problem}); lost: {self.lost}"


def _log_files(store: Store, table: str) -> dict[int, list[pafs.FileInfo]]:
    infos = store.fs.get_file_info(pafs.FileSelector(store.path(table, LOG), allow_not_found=True))
    files: dict[int, list] = {}
    for info in infos:
        match = LOG_FILE.match(info.base_name)
        if match and info.type == pafs.FileType.File:
            files.setdefault(int(match.group("version")), []).append(info)
    return files


def _read(store: Store, path: str) -> bytes:
    with store.fs.open_input_stream(path) as handle:
        return handle.read()


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def _units_of(adds: list[dict]) -> tuple[str, str] | None:
    lows, highs = [], []
    for add in adds:
        stats = add.get("stats")
        stats = json.loads(stats) if isinstance(stats, str) else stats or {}
        low, high = (stats.get("minValues") or {}).get("unit_id"), (stats.get("maxValues") or {}).get("unit_id")
        if low is None or high is None:
            return None
        lows.append(low)
        highs.append(high)
    return (min(lows), max(highs)) if lows else None


def _describe_units(units: tuple[str, str] | None) -> str:
    if units is None:
        return "unknown units"
    return f"unit {units[0]}" if units[0] == units[1] else f"units {units[0]} .. {units[1]}"


def check_log(store: Store, table: str) -> list[Damage]:
    """The first unreadable entry of the table's log (after its newest readable checkpoint), if any."""
    import pyarrow.parquet as pq

    files = _log_files(store, table)
    if not files:
        return []
    relative = f"{table}/{LOG}"
    start = 0
    last = store.path(table, LOG, "_last_checkpoint")
    if store.fs.get_file_info(last).type == pafs.FileType.File:
        try:
            start = int(json.loads(_read(store, last))["version"])
        except (ValueError, KeyError, TypeError) as err:
            return [Damage(table, None, f"{relative}/_last_checkpoint", "log", _first_line(err),
                           "the pointer to the newest checkpoint")]
        checkpoints = [i for i in files.get(start, []) if "checkpoint" in i.base_name]
        for info in checkpoints:
            try:
                with store.fs.open_input_file(info.path) as handle:
                    pq.read_table(handle)
            except Exception as err:  # noqa: BLE001 - any failure to read is damage
                return [Damage(table, start, f"{relative}/{info.base_name}", "log", _first_line(err),
                               f"the table's state at version {start} and every later commit")]
    versions = sorted(v for v, infos in files.items() if any(i.base_name.endswith(".json") for i in infos))
    expected = start if start == 0 else start + 1
    for version in [v for v in versions if v >= expected]:
        name = f"{version:020d}.json"
        if version != expected:
            return [Damage(table, expected, f"{relative}/{expected:020d}.json", "log", "missing",
                           f"commit {expected} and the {len([v for v in versions if v > expected])} later commit(s)")]
        try:
            for line in _read(store, store.path(table, LOG, name)).decode().splitlines():
                if line.strip():
                    json.loads(line)
        except (ValueError, UnicodeDecodeError) as err:
            later = [v for v in versions if v > version]
            adds = [a for v in later for a in _adds_in(store, table, v)]
            lost = f"commit {version} (unreadable) and {len(later)} later commit(s)"
            if adds:
                lost += f" adding {sum(_records(a) for a in adds)} row(s) of {_describe_units(_units_of(adds))}"
            return [Damage(table, version, f"{relative}/{name}", "log", _first_line(err), lost)]
        expected += 1
    return []


def _adds_in(store: Store, table: str, version: int) -> list[dict]:
    try:
        lines = _read(store, store.path(table, LOG, f"{version:020d}.json")).decode().splitlines()
        return [json.loads(line)["add"] for line in lines if line.strip() and "add" in json.loads(line)]
    except (ValueError, OSError):
        return []


def _records(add: dict) -> int:
    stats = add.get("stats")
    stats = json.loads(stats) if isinstance(stats, str) else stats or {}
    return int(stats.get("numRecords") or 0)


def check_data(store: Store, table: str) -> list[Damage]:
    """Every data file of the table's current version that cannot be read in full."""
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    delta = DeltaTable(store.table_uri(table), storage_options=store.storage_options)
    version = delta.version()
    damages = []
    from cos_ray.store.tables import add_actions

    for add in add_actions(delta):
        path = add["path"]
        units = (add.get("min.unit_id"), add.get("max.unit_id"))
        units = units if None not in units else None
        lost = f"{add.get('num_records')} row(s) of {_describe_units(units)}"
        try:
            with store.fs.open_input_file(store.path(table, path)) as handle:
                pq.read_table(handle)
        except FileNotFoundError:
            damages.append(Damage(table, version, f"{table}/{path}", "missing", "missing", lost, units))
        except Exception as err:  # noqa: BLE001 - any failure to read is damage
            gone = store.fs.get_file_info(store.path(table, path)).type == pafs.FileType.NotFound
            kind = "missing" if gone else "data"
            damages.append(Damage(table, version, f"{table}/{path}", kind, _first_line(err), lost, units))
    return damages


def check_store(store: Store, tables=None, duplicates: bool = True) -> list[Damage]:
    """Every unreadable log entry and data file of the store's tables (all, or `tables`), and (`duplicates`) the
    duplicated keys of each table that reads."""
    damages = []
    for table in tables or TABLES:
        if not store.has_table(table):
            continue
        found = check_log(store, table) or check_data(store, table)
        damages.extend(found)
        if duplicates and not found:
            damages.extend(check_duplicates(store, table))
    return damages


def check_duplicates(store: Store, table: str) -> list[Damage]:
    """The table's keys held by more than one row, as one Damage (kind `duplicate`)."""
    from cos_ray.store.duplicates import duplicate_keys

    found = duplicate_keys(store, table)
    if found is None:
        return []
    key = ", ".join(found.key)
    return [Damage(table, found.version, table, "duplicate",
                   f"{found.keys} key(s) ({key}) held by more than one row ({found.rows} rows for them, "
                   f"{found.rows - found.keys} extra)",
                   f"each key must be in the table once (`cos-ray store check --repair` keeps one row per key: the "
                   f"copy in the data file added last)")]


def damaged_error(store: Store, tables, err: BaseException) -> CosRayError:
    """The error to raise for a read of `tables` that failed with `err`: DamagedStore naming every unreadable file,
    or (nothing found damaged) a plain error with the reader's message."""
    damages = check_store(store, tables, duplicates=False)
    if damages:
        return DamagedStore(f"store {store.uri} is damaged: " + "; ".join(d.describe() for d in damages)
                            + f" (list everything: `cos-ray store check --out {store.uri}`; a resubmission sets "
                              f"the damaged files aside and reruns the lost units)")
    return CosRayError(f"store {store.uri}: reading {', '.join(tables)} failed: {_first_line(err)}")


def set_aside(store: Store, damages: list[Damage]) -> list[str]:
    """Move the damaged files under `_damaged/`, commit their removal, and un-finish the units that lost rows.

    A damaged log entry at version v: entries v and later (and checkpoints from v on) are moved aside, so the table
    reads as of version v-1; their units' rows are gone, so those units are no longer done. A damaged data file:
    moved aside and removed from the table (delta-rs `repair`). Units whose steps or layers were in a damaged file
    lose their runs rows too, so that a resume reruns them whole. Duplicated keys: one row per key kept
    (`duplicates.keep_one_per_key`). Returns what was done, one line each.
    """
    from deltalake import DeltaTable

    from cos_ray.store.duplicates import keep_one_per_key

    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    done, repaired, lost_units = [], set(), {}
    for damage in damages:
        if damage.kind == "duplicate":
            done.append(keep_one_per_key(store, damage.table))
            continue
        target = store.path(DAMAGED, stamp, damage.file)
        store.fs.create_dir(target.rpartition("/")[0], recursive=True)
        if damage.kind == "log":
            for version, infos in sorted(_log_files(store, damage.table).items()):
                if damage.version is None or version >= damage.version:
                    for info in infos:
                        store.fs.move(info.path, store.path(DAMAGED, stamp, damage.table, LOG, info.base_name))
            pointer = store.path(damage.table, LOG, "_last_checkpoint")
            if store.fs.get_file_info(pointer).type == pafs.FileType.File:
                store.fs.move(pointer, store.path(DAMAGED, stamp, damage.table, LOG, "_last_checkpoint"))
            done.append(f"{damage.table}: log entries from version {damage.version} set aside under "
                        f"{DAMAGED}/{stamp}/")
            continue
        if damage.kind == "data":
            store.fs.move(store.path(damage.file), target)
        repaired.add(damage.table)
        if damage.units is not None and TABLE_SPECS[damage.table].scope == "unit_id" and damage.table != "runs":
            lost_units.setdefault(damage.table, []).append(damage.units)
        done.append(f"{damage.table}: {damage.file} set aside ({damage.lost})")
    for table in sorted(repaired):
        DeltaTable(store.table_uri(table), storage_options=store.storage_options).repair(dry_run=False)
    for table, ranges in lost_units.items():
        done.extend(_unfinish(store, table, ranges))
    return done


def _unfinish(store: Store, table: str, ranges: list[tuple[str, str]]) -> list[str]:
    """Delete the runs rows of units in `ranges` that no longer have any row in `table` (their rows were lost)."""
    import duckdb

    from cos_ray.store.tables import committing, open_table, quote
    from cos_ray.store.views import register_views

    connection = duckdb.connect(":memory:")
    try:
        register_views(connection, store, ["runs", table])
        where = " OR ".join(f"r.unit_id BETWEEN {quote(low)} AND {quote(high)}" for low, high in ranges)
        units = [row[0] for row in connection.execute(
            f"SELECT DISTINCT r.unit_id FROM runs r WHERE ({where}) AND r.status = 'ok' AND r.unit_id NOT IN "
            f"(SELECT unit_id FROM {table})").fetchall()]
    finally:
        connection.close()
    if not units:
        return []
    predicate = "unit_id IN (" + ", ".join(quote(u) for u in units) + ")"
    committing(lambda: open_table(store, "runs").delete(predicate), "removing runs rows of units that lost rows")
    return [f"runs: {len(units)} unit(s) whose {table} rows were lost marked not done ({', '.join(units[:5])}"
            f"{', ...' if len(units) > 5 else ''})"]
