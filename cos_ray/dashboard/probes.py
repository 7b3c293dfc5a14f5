"""The paper's probes as small tables: scores under noise at a step vs at a frame, CKA sensitivity curves, layer
activation energy (layers × steps, and per frame at a step), and latent-swap outcomes by layer.

Perturbations are methods in the runs table (`noise_at_step` with `params.step`, `noise_at_frame` with
`params.frame`, `swap` with `params.layer`); energy and CKA rows live in the `layers` table (kind `energy` | `cka`).
Reference methods (`baseline`, `first_frame`, `ground_truth`) give the levels a perturbed score is read against.
Every function checks that its table and columns exist, so a store written before the probes reads as "no probes".
"""

from __future__ import annotations

import pyarrow as pa

from cos_ray.dashboard.compare import SCORE_KINDS
from cos_ray.figures.intervals import bounded_interval
from cos_ray.dashboard.filters import RunFilter

NOISE = {"noise_at_step": "step", "noise_at_frame": "frame"}  # method -> the parameter it is swept over
SWAP = ("swap", "layer")
REFERENCES = ("baseline", "first_frame", "ground_truth")
LAYER_COLUMNS = {"run_id", "kind", "step", "layer", "layer_index", "value", "frame_means"}


def _has_layers(connection) -> bool:
    return LAYER_COLUMNS <= connection.columns("layers")


def presence(connection, where: RunFilter) -> dict:
    """Which probes the filtered runs have: {"noise": [methods], "swap": bool, "cka": bool, "energy": bool,
    "references": [methods]}."""
    clause, values = where.where()
    methods = set(connection.query(f"SELECT DISTINCT method FROM runs WHERE {clause}", values)
                  .column("method").to_pylist())
    kinds = set()
    if _has_layers(connection):
        layer_clause, layer_values = where.where("r")
        kinds = set(connection.query(f"""
            SELECT DISTINCT l.kind FROM layers l JOIN runs r USING (run_id) WHERE {layer_clause}""", layer_values)
            .column("kind").to_pylist())
    return {"noise": [method for method in NOISE if method in methods], "swap": SWAP[0] in methods,
            "cka": "cka" in kinds, "energy": "energy" in kinds,
            "references": [method for method in REFERENCES if method in methods]}


def any_probe(found: dict) -> bool:
    return bool(found["noise"] or found["swap"] or found["cka"] or found["energy"])


def _by_parameter(connection, where: RunFilter, methods: dict[str, str], kind: str) -> pa.Table:
    """Per (method, position = the method's swept parameter): runs, mean score and its 95% interval (inside [0, 1])."""
    expr = SCORE_KINDS[kind]
    clause, values = where.where()
    cases = " ".join(f"WHEN '{method}' THEN TRY_CAST(json_extract_string(params, '$.{key}') AS INTEGER)"
                     for method, key in methods.items())
    rows = connection.query(f"""
        SELECT method, CASE method {cases} END AS position, count(*) AS runs, avg({expr}) AS mean,
               stddev_samp({expr}) AS sd
        FROM runs WHERE ({clause}) AND method IN ({', '.join('?' * len(methods))}) AND {expr} IS NOT NULL
        GROUP BY ALL ORDER BY 1, 2""", [*values, *methods]).to_pylist()
    for row in rows:
        row["ci_low"], row["ci_high"] = bounded_interval(row["mean"], row.pop("sd"), row["runs"])
    columns = ("method", "position", "runs", "mean", "ci_low", "ci_high")
    return pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.float64()) for c in columns})


def noise_outcomes(connection, where: RunFilter, kind: str = "score") -> pa.Table:
    """Scores under noise: `noise_at_step` by step and `noise_at_frame` by (latent) frame."""
    return _by_parameter(connection, where, NOISE, kind)


def swap_outcomes(connection, where: RunFilter, kind: str = "score") -> pa.Table:
    """Latent-swap outcome by the layer swapped: run A's mean score after taking run B's layer, next to the
    baselines of A (same task and seed) and of B (`params.source_task`, same seed) - which answer did A keep?"""
    expr = SCORE_KINDS[kind]
    clause, values = where.where()
    base_clause, base_values = where.where(methods=False)
    rows = connection.query(f"""
        WITH s AS (SELECT TRY_CAST(json_extract_string(params, '$.{SWAP[1]}') AS INTEGER) AS position, task_id,
                          json_extract_string(params, '$.source_task') AS source_task, seed,
                          coalesce(model, '') AS model, coalesce(settings, '') AS settings, {expr} AS v
                   FROM runs WHERE ({clause}) AND method = '{SWAP[0]}' AND {expr} IS NOT NULL),
        base AS (SELECT task_id, seed, coalesce(model, '') AS model, coalesce(settings, '') AS settings,
                        avg({expr}) AS v
                 FROM runs WHERE ({base_clause}) AND method = 'baseline' AND {expr} IS NOT NULL GROUP BY ALL)
        SELECT '{SWAP[0]}' AS method, s.position, count(*) AS runs, avg(s.v) AS mean, stddev_samp(s.v) AS sd,
               avg(a.v) AS a_alone, avg(b.v) AS b_alone
        FROM s LEFT JOIN base a ON a.task_id = s.task_id AND a.seed = s.seed AND a.model = s.model
                                   AND a.settings = s.settings
               LEFT JOIN base b ON b.task_id = s.source_task AND b.seed = s.seed AND b.model = s.model
                                   AND b.settings = s.settings
        GROUP BY ALL ORDER BY 2""", [*values, *base_values]).to_pylist()
    for row in rows:
        row["ci_low"], row["ci_high"] = bounded_interval(row["mean"], row.pop("sd"), row["runs"])
    columns = ("method", "position", "runs", "mean", "a_alone", "b_alone", "ci_low", "ci_high")
    return pa.Table.from_pylist(rows) if rows else pa.table({c: pa.array([], pa.float64()) for c in columns})


def reference_levels(connection, where: RunFilter, kind: str = "score") -> pa.Table:
    """Mean score of the reference methods (baseline, first_frame, ground_truth) among the filtered runs."""
    expr = SCORE_KINDS[kind]
    clause, values = where.where(methods=False)
    return connection.query(f"""
        SELECT method, count(*) AS runs, avg({expr}) AS mean FROM runs
        WHERE ({clause}) AND method IN ({', '.join('?' * len(REFERENCES))}) AND {expr} IS NOT NULL
        GROUP BY 1 ORDER BY 1""", [*values, *REFERENCES])


def cka_curves(connection, where: RunFilter) -> pa.Table:
    """Per (method, params, layer compared, step): perturbed runs and the mean CKA dissimilarity to the clean run."""
    if not _has_layers(connection):
        return pa.table({})
    clause, values = where.where("r")
    return connection.query(f"""
        SELECT r.method, coalesce(r.params, '{{}}') AS params, l.layer, l.step, count(*) AS runs,
               avg(l.value) AS mean
        FROM layers l JOIN runs r USING (run_id)
        WHERE {clause} AND l.kind = 'cka' AND l.value IS NOT NULL
        GROUP BY ALL ORDER BY 1, 2, 3, 4""", values)


def energy_heatmap(connection, where: RunFilter, run_id: str | None = None) -> pa.Table:
    """Mean activation energy per (layer index, step), over the filtered runs or over one run."""
    if not _has_layers(connection):
        return pa.table({})
    clause, values = where.where("r")
    if run_id is not None:
        clause, values = "r.run_id = ?", [run_id]
    return connection.query(f"""
        SELECT l.layer_index AS layer, l.step, count(*) AS rows, avg(l.value) AS energy
        FROM layers l JOIN runs r USING (run_id)
        WHERE {clause} AND l.kind = 'energy' AND l.layer_index IS NOT NULL
        GROUP BY ALL ORDER BY 1, 2""", values)


def energy_per_frame(connection, where: RunFilter, step: int, run_id: str | None = None) -> pa.Table:
    """Mean activation energy per (layer index, latent frame) at one step."""
    if not _has_layers(connection):
        return pa.table({})
    clause, values = where.where("r")
    if run_id is not None:
        clause, values = "r.run_id = ?", [run_id]
    return connection.query(f"""
        WITH frames AS (
            SELECT l.layer_index AS layer, generate_subscripts(l.frame_means, 1) - 1 AS frame,
                   unnest(l.frame_means) AS energy
            FROM layers l JOIN runs r USING (run_id)
            WHERE {clause} AND l.kind = 'energy' AND l.step = ? AND l.layer_index IS NOT NULL)
        SELECT layer, frame, avg(energy) AS energy FROM frames GROUP BY ALL ORDER BY 1, 2""", [*values, int(step)])


def energy_steps(connection, where: RunFilter) -> list[int]:
    """The steps that have energy rows (the per-frame map's step picker)."""
    if not _has_layers(connection):
        return []
    clause, values = where.where("r")
    return connection.query(f"""
        SELECT DISTINCT l.step FROM layers l JOIN runs r USING (run_id)
        WHERE {clause} AND l.kind = 'energy' ORDER BY 1""", values).column("step").to_pylist()
