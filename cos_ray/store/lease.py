"""A lease on one named activity of a store (compacting a table), taken by a conflict-checked Delta commit.

delta-rs 1.6 lets two `optimize.compact()` commits that read the same version both succeed: both remove the same
small files and each adds its own compacted copy, doubling every row (measured: 24 rows for 12 run ids). So
compactions are serialized: a compactor first merges its claim into the `_leases` Delta table - two claims at once
conflict in the log and only one commits - and compacts only while it holds the lease. A lease expires (a killed
compactor never blocks the store for long) and works wherever the store's commits are safe (local, S3 with a
locking provider, GCS, Azure).
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

import pyarrow as pa

from cos_ray.store.location import Store

LEASES = "_leases"
SCHEMA = pa.schema([("name", pa.string()), ("holder", pa.string()), ("expires_us", pa.int64())])


def _now_us() -> int:
    return int(time.time() * 1e6)


def _table(store: Store):
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError, DeltaError

    uri = store.table_uri_of(LEASES)
    try:
        return DeltaTable(uri, storage_options=store.storage_options)
    except DeltaError:
        try:
            DeltaTable.create(uri, schema=SCHEMA, mode="ignore", storage_options=store.storage_options)
        except (CommitFailedError, DeltaError):
            pass  # created by another process meanwhile
        return DeltaTable(uri, storage_options=store.storage_options)


def _claim(store: Store, name: str, holder: str, ttl_s: float) -> bool:
    """One attempt: take the lease if it is free or expired; whether `holder` holds it afterwards."""
    from deltalake.exceptions import CommitFailedError

    from cos_ray.store.tables import quote

    now = _now_us()
    claim = pa.table({"name": [name], "holder": [holder], "expires_us": [now + int(ttl_s * 1e6)]}, schema=SCHEMA)
    try:
        (_table(store).merge(claim, f"t.name = s.name AND t.name = {quote(name)}", source_alias="s", target_alias="t")
         .when_matched_update_all(predicate=f"t.expires_us < {now} OR t.holder = {quote(holder)}")
         .when_not_matched_insert_all().execute())
    except CommitFailedError:
        return False  # another claim committed first
    rows = [row for row in _table(store).to_pyarrow_dataset().to_table().to_pylist() if row["name"] == name]
    return len(rows) == 1 and rows[0]["holder"] == holder


def _release(store: Store, name: str, holder: str) -> None:
    from cos_ray.store.tables import committing, quote

    def release():
        _table(store).update(updates={"expires_us": "0"},
                             predicate=f"name = {quote(name)} AND holder = {quote(holder)}")

    committing(release, f"releasing the {name} lease")


@contextmanager
def lease(store: Store, name: str, wait_s: float = 300.0, ttl_s: float = 600.0):
    """Hold the store's lease `name` inside the block (waiting up to `wait_s` for another holder); yields whether
    it was taken (False: another holder kept it past `wait_s`)."""
    holder = uuid.uuid4().hex
    deadline = time.monotonic() + wait_s
    taken = _claim(store, name, holder, ttl_s)
    while not taken and time.monotonic() < deadline:
        time.sleep(0.2)
        taken = _claim(store, name, holder, ttl_s)
    try:
        yield taken
    finally:
        if taken:
            _release(store, name, holder)
