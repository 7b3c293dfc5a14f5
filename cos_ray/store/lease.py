"""A lease on one named activity of a store (compacting a table), taken by a conflict-checked Delta commit.

delta-rs 1.6 lets two `optimize.compact()` commits that read the same version both succeed: both remove the same
small files and each adds its own compacted copy, doubling every row (measured: 24 rows for 12 run ids). So
compactions are serialized: a compactor first merges its claim into the `_leases` Delta table - two claims at once
conflict in the log and only one commits - and compacts only while it holds the lease. A lease expires (a killed
compactor never blocks the store for long) and works wherever the store's commits are safe (local, S3 with a
locking provider, GCS, Azure).

A lease alone cannot stop a holder that was paused (SIGSTOP, a swapped-out VM) past its duration and then resumes
mid-work: a newer holder has taken over meanwhile. So a held lease is renewed by a thread while its holder works
(`ttl_s / 3`), and carries a fencing token - the `_leases` table's version of the claim, larger for every later
claim - that the holder checks against the store right before it commits (`fence`: the token is written into the
compacted table itself, so a stale holder's commit conflicts in the log).
"""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

import pyarrow as pa

from cos_ray.errors import CosRayError
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


class LostLease(CosRayError):
    """This holder's lease expired or was taken over while it worked (it was paused or slowed past the lease's
    duration): it must not commit; the newer holder does the work."""


@dataclass
class Lease:
    """One holder's lease on `name`: truthy when taken. `token` (the fencing token) is the `_leases` table's version
    that holds this claim: every later claim of any holder commits a later version, so a larger token is newer."""

    store: Store
    name: str
    holder: str
    ttl_s: float
    token: int | None = None
    lost: threading.Event = field(default_factory=threading.Event)  # set by a renewal that found it gone

    def __bool__(self) -> bool:
        return self.token is not None

    def lost_error(self, what: str, newer: int | None = None) -> LostLease:
        by = f"was taken over by a newer holder (fencing token {newer} > this one's {self.token})" \
            if newer is not None else f"expired or was taken over (fencing token {self.token})"
        return LostLease(f"{what}: this process's lease {self.name} {by}: it was paused or slowed past the lease's "
                         f"{self.ttl_s:g} s, so it committed nothing; the lease's newer holder does the work")

    def check(self, what: str) -> None:
        """Raise LostLease unless this holder still holds the lease (every renewal found it, and the `_leases` row
        names this holder and has not expired)."""
        row = _row(self.store, self.name)
        if self.lost.is_set() or row is None or row["holder"] != self.holder or row["expires_us"] < _now_us():
            raise self.lost_error(what)


def _row(store: Store, name: str, table=None) -> dict | None:
    table = table if table is not None else _table(store)
    rows = [row for row in table.to_pyarrow_dataset().to_table().to_pylist() if row["name"] == name]
    return rows[0] if len(rows) == 1 else None


def _claim(store: Store, name: str, holder: str, ttl_s: float) -> int | None:
    """One attempt: take the lease if it is free or expired; the fencing token if `holder` holds it afterwards.

    The token is the version read back: a later claim by another holder needs this one expired first, so it
    commits a later version than this read (were it earlier, the row read here would name that holder)."""
    from deltalake.exceptions import CommitFailedError

    from cos_ray.store.tables import quote

    now = _now_us()
    claim = pa.table({"name": [name], "holder": [holder], "expires_us": [now + int(ttl_s * 1e6)]}, schema=SCHEMA)
    try:
        (_table(store).merge(claim, f"t.name = s.name AND t.name = {quote(name)}", source_alias="s", target_alias="t")
         .when_matched_update_all(predicate=f"t.expires_us < {now} OR t.holder = {quote(holder)}")
         .when_not_matched_insert_all().execute())
    except CommitFailedError:
        return None  # another claim committed first
    table = _table(store)
    row = _row(store, name, table)
    return table.version() if row is not None and row["holder"] == holder else None


def _renew(held: Lease) -> bool:
    """Extend the lease by its duration if `held` still holds it unexpired; whether it did."""
    from cos_ray.store.tables import committing, quote

    def renew() -> dict:
        now = _now_us()
        return _table(held.store).update(
            updates={"expires_us": str(now + int(held.ttl_s * 1e6))},
            predicate=f"name = {quote(held.name)} AND holder = {quote(held.holder)} AND expires_us >= {now}")

    return int(committing(renew, f"renewing the {held.name} lease").get("num_updated_rows", 0)) == 1


def _keep_renewed(held: Lease, stop: threading.Event) -> None:
    """The renewal thread: every third of the lease's duration, until `stop` or the lease is found lost."""
    while not stop.wait(held.ttl_s / 3):
        try:
            if not _renew(held):
                held.lost.set()
                return
        except Exception:  # noqa: BLE001 - a failed renewal is retried next time; `Lease.check` sees an expiry
            pass


def _release(store: Store, name: str, holder: str) -> None:
    from cos_ray.store.tables import committing, quote

    def release():
        _table(store).update(updates={"expires_us": "0"},
                             predicate=f"name = {quote(name)} AND holder = {quote(holder)}")

    committing(release, f"releasing the {name} lease")


@contextmanager
def lease(store: Store, name: str, wait_s: float = 300.0, ttl_s: float = 600.0):
    """Hold the store's lease `name` inside the block (waiting up to `wait_s` for another holder), renewed every
    `ttl_s / 3` while the block runs; yields the `Lease` (falsy: another holder kept it past `wait_s`)."""
    held = Lease(store, name, uuid.uuid4().hex, ttl_s)
    deadline = time.monotonic() + wait_s
    held.token = _claim(store, name, held.holder, ttl_s)
    while not held and time.monotonic() < deadline:
        time.sleep(0.2)
        held.token = _claim(store, name, held.holder, ttl_s)
    stop = threading.Event()
    renewer = threading.Thread(target=_keep_renewed, args=(held, stop), name=f"lease {name}", daemon=True)
    if held:
        renewer.start()
    try:
        yield held
    finally:
        stop.set()
        if held:
            renewer.join(timeout=60)
            _release(store, name, held.holder)
