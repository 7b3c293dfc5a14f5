"""The ensemble's answer, named: each member's own video, and the consensus - the member whose final x̂0 is nearest
the members' mean.

An ensemble unit yields one video per member; under `stream` merge the members share one velocity during the merged
steps and then diverge, so "the ensemble's score" is ambiguous. cos-ray keeps every member's row (per-member scores)
and names one of them the consensus: the member minimising ||x̂0_i − mean_j x̂0_j|| over the final x̂0 (which equals
the final latent exactly). Its rows in the store's `layers` table say so (kind `x0_to_mean` for every member, kind
`consensus` for the chosen one), so a query or the Compare view can show either answer and say which. numpy only:
this runs on the sweep driver.
"""

from __future__ import annotations

KIND_DISTANCE = "x0_to_mean"  # every member: relative distance of its final x̂0 to the members' mean
KIND_CONSENSUS = "consensus"  # the member nearest the mean (one row per ensemble unit)


def consensus(final_x0s) -> tuple[int, list[float]]:
    """(index of the member nearest the mean, each member's relative distance ||x_i − mean|| / ||mean||).

    final_x0s: one array per member, `# (channels, frames, h, w)`. Ties go to the lowest member index."""
    import numpy as np

    stacked = np.stack([np.asarray(x, dtype=np.float64) for x in final_x0s])  # (members, channels, frames, h, w)
    if stacked.shape[0] < 2:
        raise ValueError(f"a consensus needs at least 2 members, got {stacked.shape[0]}")
    mean = stacked.mean(axis=0)
    scale = max(float(np.linalg.norm(mean)), 1e-12)
    distances = [float(np.linalg.norm(member - mean)) / scale for member in stacked]
    return int(np.argmin(distances)), distances


def consensus_rows(run_ids: list[str], unit_id: str, step: int, final_x0s) -> list[dict]:
    """`layers` rows naming the ensemble's answer: `x0_to_mean` per member, `consensus` for the chosen member."""
    chosen, distances = consensus(final_x0s)
    base = {"unit_id": unit_id, "step": int(step), "layer": "latents", "layer_index": None, "expert": None}
    rows = [{**base, "run_id": run_id, "kind": KIND_DISTANCE, "value": distance}
            for run_id, distance in zip(run_ids, distances)]
    rows.append({**base, "run_id": run_ids[chosen], "kind": KIND_CONSENSUS, "value": distances[chosen]})
    return rows
