"""Sweep specs: a YAML file naming a model, tasks, sampler overrides, seeds, methods and probes, with grids.

Read in this order: `problems` (errors collected with their field path), `fields` (the typed dataclass walker every
section uses), the sections (`model`, `tasks`, `sampler`, `methods`, `probes`, `sweep`), `grid` (cartesian
expansion of `{grid: [...]}` nodes), `load` (YAML file -> validated variants), `unit` and `expand` (deterministic
units of work), `plan` (the dry-run summary), `schema` (JSON Schema generated from the dataclasses).
Nothing here imports torch, diffusers or ray: specs are validated in a fraction of a second before anything starts.
"""
