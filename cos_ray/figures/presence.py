"""Which probes a store's runs have: perturbations are methods in the runs table (`noise_at_step` with
`params.step`, `noise_at_frame` with `params.frame`, `swap` with `params.layer`); energy and CKA rows live in the
`layers` table (kind `energy` | `cka`). Reference methods (`baseline`, `first_frame`, `ground_truth`) give the levels
a perturbed score is read against. A store written before the probes reads as "no probes"."""

from __future__ import annotations

from cos_ray.figures.run_filter import RunFilter

NOISE = {"noise_at_step": "step", "noise_at_frame": "frame"}  # method -> the parameter it is swept over
SWAP = ("swap", "layer")
REFERENCES = ("baseline", "first_frame", "ground_truth")
LAYER_COLUMNS = {"run_id", "kind", "step", "layer", "layer_index", "value", "frame_means"}


def has_layers(connection) -> bool:
    return LAYER_COLUMNS <= connection.columns("layers")


def presence(connection, where: RunFilter) -> dict:
    """Which probes the filtered runs have: {"noise": [methods], "swap": bool, "cka": bool, "energy": bool,
    "references": [methods]}."""
    clause, values = where.where()
    methods = set(connection.query(f"SELECT DISTINCT method FROM runs WHERE {clause}", values)
                  .column("method").to_pylist())
    kinds = set()
    if has_layers(connection):
        layer_clause, layer_values = where.where("r")
        kinds = set(connection.query(f"""
            SELECT DISTINCT l.kind FROM layers l JOIN runs r USING (run_id) WHERE {layer_clause}""", layer_values)
            .column("kind").to_pylist())
    return {"noise": [method for method in NOISE if method in methods], "swap": SWAP[0] in methods,
            "cka": "cka" in kinds, "energy": "energy" in kinds,
            "references": [method for method in REFERENCES if method in methods]}


def any_probe(found: dict) -> bool:
    return bool(found["noise"] or found["swap"] or found["cka"] or found["energy"])
