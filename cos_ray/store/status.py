"""Resume: which units a store already holds finished, and which failed (those are retried)."""

from __future__ import annotations

from cos_ray.store.location import Store
from cos_ray.store.query import run_sql


def unit_status(store: Store) -> dict[str, str]:
    """unit_id -> 'ok' (every member finished) or 'failed' (some member failed)."""
    if not store.exists():
        return {}
    table = run_sql(store, "SELECT unit_id, bool_and(status = 'ok') AS ok FROM runs GROUP BY unit_id")
    return {uid: "ok" if ok else "failed" for uid, ok in zip(table.column("unit_id").to_pylist(),
                                                            table.column("ok").to_pylist())}


def finished_units(store: Store) -> set[str]:
    """Units to skip on resubmission."""
    return {uid for uid, status in unit_status(store).items() if status == "ok"}


def failed_units(store: Store) -> set[str]:
    """Units that ran and failed: a resubmission runs them again, and their new files replace the old."""
    return {uid for uid, status in unit_status(store).items() if status == "failed"}
