"""Interventions on the denoising loop: cross-seed operators (the ensemble mean), and later noise and swaps.

Each is a validated `XxxConfig` dataclass and an `apply_xxx(run, config)` that installs hooks for one run (diffusers'
recipe). Like the engine, nothing here knows of Ray: a `SeedGroup` decides whether the seeds are local or remote.
"""
