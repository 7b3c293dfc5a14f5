"""The store's tables and their core columns: fixed names and types that every writer and reader agrees on.

Method parameters, settings and score details are JSON strings (`params`, `settings`, `scores`), so that adding a
method or a score never changes a table's schema. Columns added later still read from older rows: a commit with a new
column evolves the Delta table's schema (`merge_schema`), and older rows read it as null.

Adding a table is one entry in `TABLE_SPECS`: its schema, the columns that key one row (each key is committed
exactly once: `cos_ray.store.write.commit_rows` merges on it), and the column that scopes a unit's rows (or None).
For example an `evalkit` table (one row per run, task, split):

    EVALKIT = pa.schema([("run_id", pa.string()), ("task", pa.string()), ("split", pa.string()),
                         ("score_task_specific", pa.float64()), ("score_weighted", pa.float64()),
                         ("dimensions", pa.string()), ("evalkit_version", pa.string())])
    TABLE_SPECS["evalkit"] = TableSpec(EVALKIT, key=("run_id", "task", "split"), scope=None)

and write it with `commit_rows(store, "evalkit", rows)`; `cos-ray sql`, the dashboard, `compact` and `store check`
then know it without any other change.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TIME = pa.timestamp("us", tz="UTC")

SWEEPS = pa.schema([
    ("sweep_id", pa.string()),       # hash of the sweep's name and unit ids: a resubmission keeps it
    ("name", pa.string()),
    ("source", pa.string()),         # the spec file
    ("spec", pa.string()),           # the spec as JSON (grids unexpanded)
    ("cos_ray_version", pa.string()),
    ("model", pa.string()),
    ("units", pa.int64()),
    ("unit_ids", pa.list_(pa.string())),
    ("done", pa.int64()),
    ("failed", pa.int64()),
    ("status", pa.string()),         # running | done | failed | interrupted
    ("started_at", TIME),
    ("finished_at", TIME),
    ("host", pa.string()),
])

RUNS = pa.schema([
    ("sweep_id", pa.string()),
    ("unit_id", pa.string()),
    ("run_id", pa.string()),         # {unit_id}-{member}
    ("member", pa.int32()),          # index in the unit (0 for a baseline)
    ("task_id", pa.string()),
    ("task_family", pa.string()),
    ("seed", pa.int64()),
    ("method", pa.string()),
    ("params", pa.string()),         # JSON: the method's parameters as written in the spec
    ("model", pa.string()),
    ("settings", pa.string()),       # JSON: sampler settings after defaults
    ("score", pa.float64()),         # task-specific 0-1 score of the final video (null: no scorer)
    ("score_overall", pa.float64()), # VBVR's weighted 5-dimension score of the final video (null: no scorer)
    ("scores", pa.string()),         # JSON: per-dimension scores
    ("lock_in_step", pa.int32()),    # first step from which the answer stays correct (null: never / not scored)
    ("flips", pa.int32()),           # times correctness flipped along the decoded steps (self-correction)
    ("commit_step", pa.int32()),     # first step from which the answer (its candidate routes) no longer changes
    #                                  (null: not decoded / no route reader; cos_ray.probes.exploration)
    ("score_reason", pa.string()),   # why the scores are null (no built-in scorer: `cos-ray score --evalkit`)
    ("status", pa.string()),         # ok | failed | pruned (a search's candidate not continued: see stop_step)
    ("error", pa.string()),
    ("duration_s", pa.float64()),
    ("worker", pa.string()),
    ("device", pa.string()),
    ("started_at", TIME),
    ("finished_at", TIME),
    ("video", pa.string()),          # store-relative media paths (media/{unit_id}/member-{k}/...)
    ("filmstrip", pa.string()),
    # provenance (cos_ray.provenance): what made the row, for tracing and grouping
    ("model_identity", pa.string()), # JSON: preset and key, or checkpoint path and hash; LoRA hashes
    ("seeds", pa.list_(pa.int64())), # the unit's member seeds
    ("layout", pa.string()),         # seeds per worker, e.g. "2+1"
    ("dtype", pa.string()),
    ("cos_ray_version", pa.string()),
    ("cos_ray_commit", pa.string()), # git commit (+dirty), null outside a checkout
    ("spec_hash", pa.string()),      # hash of the spec as written
    ("torch_version", pa.string()),
    ("diffusers_version", pa.string()),
    ("ray_version", pa.string()),
    ("transformers_version", pa.string()),
    # cost (null in stores written before these columns): transformer forward passes this run's trajectory used
    # (CFG's two passes counted, companion runs of a swap or CKA included; a forked run counted as if run alone),
    # and the last step a search's pruned candidate ran (null: it ran to the end)
    ("forward_passes", pa.int64()),
    ("stop_step", pa.int32()),
])

STEPS = pa.schema([
    ("run_id", pa.string()),
    ("unit_id", pa.string()),
    ("step", pa.int32()),
    ("timestep", pa.float64()),
    ("sigma", pa.float64()),
    ("expert", pa.string()),         # high | low (A14B) or "" (one transformer)
    ("x0_mean", pa.float64()),       # x̂0 statistics (null where x̂0 was not recorded)
    ("x0_std", pa.float64()),
    ("x0_change", pa.float64()),     # ||x̂0_s - x̂0_prev|| / ||x̂0_s||
    ("score", pa.float64()),         # task-specific score of the decoded x̂0 (null where not decoded / no scorer)
    # exploration (cos_ray.probes.exploration; null where not recorded - and in stores written before them)
    ("x0_spread", pa.float64()),     # mean pairwise RMS difference of the unit's members' x̂0 (units of >= 2 members)
    ("x0_to_final", pa.float64()),   # RMS difference between this x̂0 and the run's own final latent
    ("candidates", pa.int32()),      # candidate routes drawn in the decoded x̂0 (maze, grid_path)
    ("answer_in_candidates", pa.bool_()),  # whether the run's final routes are among them
])

# The Chain-of-Steps probes, one row per run, step, probe kind and layer (written only by units that run probes):
# - kind `energy`: activation energy of block `layer` (cond branch) - the per-token L2 norm over channels on the
#   (frame, h, w) token grid; `value` is its mean, `frame_means` its mean per latent frame, `fg_bg_ratio` the mean on
#   the task's foreground_mask.png over the mean elsewhere, `map` the map downsampled (longest side <= max_side),
#   row-major with shape `map_shape`.
# - kind `cka`: sensitivity - `value` is the linear CKA dissimilarity (1 - CKA, 0 = identical) between this perturbed
#   run's state at `step` and the clean run's with the same seed; `layer` is the state compared: `latents` (the
#   latent x_s fed to the model) or a block (`high.blocks.20`).
LAYERS = pa.schema([
    ("run_id", pa.string()),
    ("unit_id", pa.string()),
    ("step", pa.int32()),
    ("kind", pa.string()),           # energy | cka | x0_to_mean | consensus | search (a search's verifier score
    #                                  of a candidate at the selection step: `layer` the verifier, `layer_index` rank)
    ("layer", pa.string()),          # hook point name (high.blocks.20, low.blocks.20) or latents
    ("layer_index", pa.int32()),     # the block's index (null for latents)
    ("expert", pa.string()),         # high | low (null for latents)
    ("value", pa.float64()),         # energy: mean energy; cka: CKA dissimilarity vs the clean run
    ("frame_means", pa.list_(pa.float64())),  # energy: mean per latent frame
    ("fg_bg_ratio", pa.float64()),   # energy: foreground / background mean (null: no foreground_mask.png)
    ("grid", pa.list_(pa.int32())),  # energy: token grid (frames, h, w) of the block's output
    ("map_shape", pa.list_(pa.int32())),  # energy: (frames, h', w') of `map`
    ("map", pa.list_(pa.float32())),  # energy: the downsampled map, flattened row-major
])


# VBVR-EvalKit's scores of a run's video (`cos-ray score --evalkit` / `--evalkit-results`): one row per run, task and
# split, joined to `runs` on run_id. `split` is EvalKit's (In_Domain / Out_of_Domain); `dimensions` its JSON.
EVALKIT = pa.schema([
    ("run_id", pa.string()),
    ("sweep_id", pa.string()),
    ("unit_id", pa.string()),
    ("task", pa.string()),           # the VBVR task folder (O-39_maze_data-generator)
    ("split", pa.string()),          # In_Domain | Out_of_Domain
    ("sample", pa.string()),         # the sample folder (00000)
    ("score_task_specific", pa.float64()),  # the task's rule-based score (run_evaluation.py's)
    ("score_weighted", pa.float64()),       # the 5-dimension weighted score (evaluate.py's; null if not computed)
    ("dimensions", pa.string()),     # JSON: EvalKit's dimensions
    ("evalkit_version", pa.string()),  # e.g. "vbvr-bench 0.1.0 @ <commit>" (null: not known for an import)
    ("source", pa.string()),         # the imported JSON, or vbvr_bench.VBVRBench.evaluate
    ("video_path", pa.string()),     # the video EvalKit scored (its path there)
    ("error", pa.string()),          # EvalKit's error for this video, if any
    ("scored_at", TIME),
])


@dataclass(frozen=True)
class TableSpec:
    """One Delta table of the store: its core schema, its row key, and the column grouping a unit's rows."""

    schema: pa.Schema
    key: tuple[str, ...]        # a row's identity: committed at most once (merge on these columns)
    scope: str | None = "unit_id"  # a commit replaces / skips a whole unit's rows by this column (None: row by row)
    volatile: tuple[str, ...] = ()  # columns that differ between a resumed sweep and an uninterrupted one

    def __post_init__(self):
        missing = [name for name in (*self.key, *([self.scope] if self.scope else [])) if name not in self.schema.names]
        if missing:
            raise ValueError(f"table key/scope columns {missing} are not in its schema")


TABLE_SPECS: dict[str, TableSpec] = {
    "sweeps": TableSpec(SWEEPS, key=("sweep_id",), scope=None,
                        volatile=("status", "started_at", "finished_at", "done", "failed", "host")),
    "runs": TableSpec(RUNS, key=("run_id",),
                      volatile=("sweep_id", "duration_s", "worker", "device", "started_at", "finished_at")),
    "steps": TableSpec(STEPS, key=("run_id", "step")),
    "layers": TableSpec(LAYERS, key=("run_id", "step", "kind", "layer")),
    "evalkit": TableSpec(EVALKIT, key=("run_id", "task", "split"), scope=None, volatile=("scored_at",)),
}

TABLES = {name: spec.schema for name, spec in TABLE_SPECS.items()}
KEYS = {name: spec.scope or spec.key[0] for name, spec in TABLE_SPECS.items()}  # the column grouping a commit's rows

# Columns that differ between an interrupted-and-resumed sweep and an uninterrupted one.
VOLATILE = {name: spec.volatile for name, spec in TABLE_SPECS.items()}


def to_table(name: str, rows) -> pa.Table:
    """Rows (a list of dicts or a pyarrow Table) as a table with the core columns first, cast to their types.

    Missing core columns become nulls; extra columns are kept (a commit adds them to the table's schema); an extra
    column with no value in any row (Arrow type null, which Delta cannot store) becomes a string column.
    """
    schema = TABLES[name]
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pylist(list(rows))
    columns, fields = [], []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        else:
            columns.append(pa.nulls(table.num_rows, field.type))
        fields.append(field)
    for name_ in table.column_names:
        if name_ not in schema.names:
            column, field = table.column(name_), table.schema.field(name_)
            if pa.types.is_null(field.type):
                column, field = column.cast(pa.string()), field.with_type(pa.string())
            columns.append(column)
            fields.append(field)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))
