"""Resume: which units the store holds finished (read from the runs table's log), and which failed (rerun).

A unit is done exactly when its runs rows are committed with status ok. Before a resume trusts that, every table
is checked (`cos_ray.store.damage`): damaged files are set aside and the units whose rows they held are no longer
done, so they run again.
"""

from __future__ import annotations

from cos_ray.store.location import Store
from cos_ray.store.query import run_sql


def unit_status(store: Store) -> dict[str, str]:
    """unit_id -> 'ok' (every member finished, or was pruned by its search) or 'failed' (some member failed)."""
    if not store.exists() or not store.has_table("runs"):
        return {}
    table = run_sql(store, "SELECT unit_id, bool_and(status IN ('ok', 'pruned')) AS ok FROM runs GROUP BY unit_id")
    return {uid: "ok" if ok else "failed" for uid, ok in zip(table.column("unit_id").to_pylist(),
                                                            table.column("ok").to_pylist())}


def finished_units(store: Store) -> set[str]:
    """Units to skip on resubmission."""
    return {uid for uid, status in unit_status(store).items() if status == "ok"}


def failed_units(store: Store) -> set[str]:
    """Units that ran and failed: a resubmission runs them again, and their new rows replace the old."""
    return {uid for uid, status in unit_status(store).items() if status == "failed"}


def resume_status(store: Store) -> tuple[set[str], list[str]]:
    """(finished units, what was set aside): damaged files set aside first, so their units are not finished."""
    from cos_ray.store.damage import check_store, set_aside

    if not store.exists():
        return set(), []
    damages = check_store(store)
    notes = [damage.describe() for damage in damages]
    if damages:
        notes += set_aside(store, damages)
    return finished_units(store), notes
