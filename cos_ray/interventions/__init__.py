"""Interventions on the denoising loop: cross-seed operators (the ensemble mean), noise at a step or frame, swaps.

Each method has one validated config (`configs.py`: defaults, bounds, the canonical dict a unit id hashes) and an
`apply_xxx(run, config)` that installs hooks for one run (diffusers' recipe). Like the engine, nothing here knows of
Ray: a `SeedGroup` decides whether the seeds are local or remote.
"""
